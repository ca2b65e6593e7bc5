package related

import "context"

// Roles a viewer can have.
const (
	RoleAdmin   = "admin"   // everything of the tenant, including rules, links and keys
	RoleAgent   = "agent"   // read everything of the tenant, record and close interactions
	RolePartner = "partner" // read only
)

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
