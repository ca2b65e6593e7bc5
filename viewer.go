package related

import "context"

// Roles a viewer can have.
const (
	RoleAdmin   = "admin"   // everything of the tenant, including rules, links and keys
	RoleAgent   = "agent"   // read everything of the tenant, record and close interactions
	RolePartner = "partner" // read only
	// RoleIntegration is a workflow's key: it records messages and sets
	// contact attributes, and may attest values; nothing else.
	RoleIntegration = "integration"
)

// Actor is who made a change, as history and provenance record it: an API
// key's name and role, or the gateway itself (Role "").
type Actor struct {
	Name string
	Role string
}

// System is the gateway acting on its own: rule linking, re-evaluation,
// migrations.
var System = Actor{Name: "rules"}

// String describes a for people: "Ann's desk (agent)".
func (a Actor) String() string {
	switch {
	case a.Role == "":
		return a.Name
	case a.Name == "":
		return a.Role
	}
	return a.Name + " (" + a.Role + ")"
}

// RoleOrNil is the role, or nil for the gateway itself (GraphQL's null).
func (a Actor) RoleOrNil() *string {
	if a.Role == "" {
		return nil
	}
	return &a.Role
}

// ActorFrom returns the actor of the viewer ctx carries, or System.
func ActorFrom(ctx context.Context) Actor {
	v, ok := ViewerFrom(ctx)
	if !ok {
		return System
	}
	name := v.Name
	if name == "" {
		name = v.Principal
	}
	return Actor{Name: name, Role: v.Role}
}

// Viewer is who a request acts for: the tenant whose data it may touch, its
// role, and the principal that preferences are kept under.
type Viewer struct {
	Tenant    string
	Role      string
	Name      string // a display name; may be empty
	Principal string // the stable id of the caller, such as its API key's id
}

type viewerKey struct{}

// WithViewer returns ctx carrying v.
func WithViewer(ctx context.Context, v Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// ViewerFrom returns the viewer ctx carries.
func ViewerFrom(ctx context.Context) (Viewer, bool) {
	v, ok := ctx.Value(viewerKey{}).(Viewer)
	return v, ok && v.Tenant != ""
}
