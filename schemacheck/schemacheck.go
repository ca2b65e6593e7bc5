// Package schemacheck holds the rules the public schema keeps, so tests
// can hold schema.graphqls to them: every element is documented, every
// mutation has the Relay shape (one input, a payload, clientMutationId on
// both), and a new version breaks no client written against an older one
// (Diff). It reads schemas with gqlparser, as gqlgen does.
package schemacheck

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
)

// Load parses and validates a schema's text, with GraphQL's built-in
// types and directives, as gqlgen does.
func Load(name, text string) (*ast.Schema, error) {
	s, err := gqlparser.LoadSchema(&ast.Source{Name: name, Input: text})
	if err != nil {
		return nil, fmt.Errorf("schemacheck: load %s: %w", name, err)
	}
	return s, nil
}

// Format prints s in gqlparser's canonical form (types and directives in
// name order, with their descriptions), leaving out what GraphQL itself
// defines: the text of a snapshot.
func Format(s *ast.Schema) []byte {
	var b bytes.Buffer
	formatter.NewFormatter(&b, formatter.WithIndent("  ")).FormatSchema(s)
	return b.Bytes()
}

// builtIn reports whether pos is in GraphQL's own definitions (the
// prelude), which the schema does not own.
func builtIn(pos *ast.Position) bool {
	return pos != nil && pos.Src != nil && pos.Src.BuiltIn
}

// ownTypes returns the names of s's own types, sorted.
func ownTypes(s *ast.Schema) []string {
	var out []string
	for name, d := range s.Types {
		if !d.BuiltIn && !strings.HasPrefix(name, "__") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ownFields are d's fields less the introspection ones gqlparser adds to
// the query type.
func ownFields(d *ast.Definition) ast.FieldList {
	var out ast.FieldList
	for _, f := range d.Fields {
		if !strings.HasPrefix(f.Name, "__") {
			out = append(out, f)
		}
	}
	return out
}

// Undocumented lists every type, field, argument, enum value, input field
// and directive of s's own that has no description, as paths such as
// "Query.node(id:)". What a client sees in its IDE's hover and in
// generated code is the description: an element without one is unusable
// without reading the server's code.
func Undocumented(s *ast.Schema) []string {
	var out []string
	missing := func(desc, path string) {
		if strings.TrimSpace(desc) == "" {
			out = append(out, path)
		}
	}
	for _, name := range ownTypes(s) {
		d := s.Types[name]
		missing(d.Description, name)
		for _, f := range ownFields(d) {
			missing(f.Description, name+"."+f.Name)
			for _, a := range f.Arguments {
				missing(a.Description, name+"."+f.Name+"("+a.Name+":)")
			}
		}
		for _, v := range d.EnumValues {
			missing(v.Description, name+"."+v.Name)
		}
	}
	names := make([]string, 0, len(s.Directives))
	for name, d := range s.Directives {
		if !builtIn(d.Position) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		d := s.Directives[name]
		missing(d.Description, "@"+name)
		for _, a := range d.Arguments {
			missing(a.Description, "@"+name+"("+a.Name+":)")
		}
	}
	return out
}

// ClientMutationID is the field every mutation input and payload carries,
// as Relay's mutation convention has it.
const ClientMutationID = "clientMutationId"

// NotRelayShaped lists the mutations of s that break Relay's mutation
// convention, with what is wrong: each takes one argument, input, of a
// non-null input object type with an optional clientMutationId: String,
// and returns an object type (its payload) with clientMutationId: String,
// which echoes the input's.
func NotRelayShaped(s *ast.Schema) []string {
	if s.Mutation == nil {
		return nil
	}
	var out []string
	for _, f := range ownFields(s.Mutation) {
		bad := func(format string, args ...any) {
			out = append(out, "Mutation."+f.Name+": "+fmt.Sprintf(format, args...))
		}
		if len(f.Arguments) != 1 || f.Arguments[0].Name != "input" {
			bad("takes %d arguments; want one, input", len(f.Arguments))
		} else if a := f.Arguments[0]; !a.Type.NonNull || a.Type.Elem != nil {
			bad("input is %s; want a non-null input object", a.Type)
		} else if in := s.Types[a.Type.Name()]; in == nil || in.Kind != ast.InputObject {
			bad("input is %s; want an input object", a.Type)
		} else if c := in.Fields.ForName(ClientMutationID); c == nil {
			bad("%s has no %s: String", in.Name, ClientMutationID)
		} else if c.Type.String() != "String" {
			bad("%s.%s is %s; want String", in.Name, ClientMutationID, c.Type)
		}
		if p := s.Types[f.Type.Name()]; f.Type.Elem != nil || p == nil || p.Kind != ast.Object {
			bad("returns %s; want a payload object", f.Type)
		} else if c := p.Fields.ForName(ClientMutationID); c == nil {
			bad("%s has no %s: String", p.Name, ClientMutationID)
		} else if c.Type.String() != "String" {
			bad("%s.%s is %s; want String", p.Name, ClientMutationID, c.Type)
		}
	}
	return out
}

// Change is one difference between two versions of a schema.
type Change struct {
	// Path names the element: a type, "Type.field", "Type.field(arg:)",
	// "Enum.VALUE" or "@directive".
	Path string
	// Breaking reports a change that can break a client written against
	// the old version: a query that stops validating, a value it cannot
	// read, an input it can no longer send.
	Breaking bool
	// What says what changed, in words.
	What string
}

// String formats c for a test's failure message.
func (c Change) String() string {
	kind := "safe"
	if c.Breaking {
		kind = "BREAKING"
	}
	return fmt.Sprintf("%s: %s: %s", kind, c.Path, c.What)
}

// Diff lists the changes from old to new, in a stable order, each marked
// breaking or not. Breaking: a type, field, argument, input field, enum
// value, union member, interface or directive removed; a type's kind
// changed; an output field's type changed other than made non-null; an
// argument's or input field's type changed other than made nullable; a
// new required (non-null, without default) argument or input field.
// Descriptions and deprecations are not compared: Format's text is.
func Diff(old, new *ast.Schema) []Change {
	var d differ
	d.roots(old, new)
	for _, name := range ownTypes(old) {
		o, n := old.Types[name], new.Types[name]
		switch {
		case n == nil || n.BuiltIn:
			d.add(name, true, "type removed")
		case o.Kind != n.Kind:
			d.add(name, true, fmt.Sprintf("kind changed from %s to %s", o.Kind, n.Kind))
		default:
			d.definition(o, n)
		}
	}
	for _, name := range ownTypes(new) {
		if o := old.Types[name]; o == nil || o.BuiltIn {
			d.add(name, false, "type added")
		}
	}
	d.directives(old, new)
	return d.changes
}

type differ struct{ changes []Change }

func (d *differ) add(path string, breaking bool, what string) {
	d.changes = append(d.changes, Change{Path: path, Breaking: breaking, What: what})
}

// roots compares the operation types.
func (d *differ) roots(old, new *ast.Schema) {
	for _, r := range []struct {
		op       string
		old, new *ast.Definition
	}{{"query", old.Query, new.Query}, {"mutation", old.Mutation, new.Mutation}, {"subscription", old.Subscription, new.Subscription}} {
		switch {
		case r.old == nil && r.new != nil:
			d.add("schema."+r.op, false, "root type added: "+r.new.Name)
		case r.old != nil && r.new == nil:
			d.add("schema."+r.op, true, "root type removed")
		case r.old != nil && r.old.Name != r.new.Name:
			d.add("schema."+r.op, true, fmt.Sprintf("root type changed from %s to %s", r.old.Name, r.new.Name))
		}
	}
}

func (d *differ) definition(o, n *ast.Definition) {
	switch o.Kind {
	case ast.Object, ast.Interface:
		for _, of := range ownFields(o) {
			path := o.Name + "." + of.Name
			nf := n.Fields.ForName(of.Name)
			if nf == nil {
				what := "field removed"
				if of.Directives.ForName("deprecated") == nil {
					what += " without being deprecated first"
				}
				d.add(path, true, what)
				continue
			}
			d.typeChange(path, of.Type, nf.Type, safeOutput)
			d.arguments(path, of.Arguments, nf.Arguments)
		}
		for _, nf := range ownFields(n) {
			if o.Fields.ForName(nf.Name) == nil {
				d.add(o.Name+"."+nf.Name, false, "field added")
			}
		}
		d.members(o.Name, "interface", o.Interfaces, n.Interfaces)
	case ast.Union:
		d.members(o.Name, "union member", o.Types, n.Types)
	case ast.Enum:
		for _, ov := range o.EnumValues {
			if n.EnumValues.ForName(ov.Name) == nil {
				what := "enum value removed"
				if ov.Directives.ForName("deprecated") == nil {
					what += " without being deprecated first"
				}
				d.add(o.Name+"."+ov.Name, true, what)
			}
		}
		for _, nv := range n.EnumValues {
			if o.EnumValues.ForName(nv.Name) == nil {
				d.add(o.Name+"."+nv.Name, false, "enum value added (a client's exhaustive switch needs a default)")
			}
		}
	case ast.InputObject:
		for _, of := range o.Fields {
			path := o.Name + "." + of.Name
			nf := n.Fields.ForName(of.Name)
			if nf == nil {
				d.add(path, true, "input field removed")
				continue
			}
			d.typeChange(path, of.Type, nf.Type, safeInput)
		}
		for _, nf := range n.Fields {
			if o.Fields.ForName(nf.Name) == nil {
				d.added(o.Name+"."+nf.Name, "input field", nf.Type, nf.DefaultValue)
			}
		}
	}
}

// arguments compares the arguments of a field or directive at path.
func (d *differ) arguments(path string, old, new ast.ArgumentDefinitionList) {
	for _, oa := range old {
		p := path + "(" + oa.Name + ":)"
		na := new.ForName(oa.Name)
		if na == nil {
			d.add(p, true, "argument removed")
			continue
		}
		d.typeChange(p, oa.Type, na.Type, safeInput)
	}
	for _, na := range new {
		if old.ForName(na.Name) == nil {
			d.added(path+"("+na.Name+":)", "argument", na.Type, na.DefaultValue)
		}
	}
}

// added reports a new argument or input field: breaking when a client
// that does not know it must now send it.
func (d *differ) added(path, what string, t *ast.Type, def *ast.Value) {
	if t.NonNull && def == nil {
		d.add(path, true, "required "+what+" added ("+t.String()+" without a default)")
		return
	}
	d.add(path, false, "optional "+what+" added")
}

func (d *differ) typeChange(path string, o, n *ast.Type, safe func(o, n *ast.Type) bool) {
	if o.String() == n.String() {
		return
	}
	d.add(path, !safe(o, n), fmt.Sprintf("type changed from %s to %s", o, n))
}

// members compares the interfaces of a type or the members of a union.
func (d *differ) members(path, what string, old, new []string) {
	for _, m := range old {
		if !slices.Contains(new, m) {
			d.add(path, true, what+" "+m+" removed")
		}
	}
	for _, m := range new {
		if !slices.Contains(old, m) {
			d.add(path, false, what+" "+m+" added")
		}
	}
}

// directives compares the schema's own directives.
func (d *differ) directives(old, new *ast.Schema) {
	names := make([]string, 0, len(old.Directives))
	for name, od := range old.Directives {
		if !builtIn(od.Position) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		od, nd := old.Directives[name], new.Directives[name]
		if nd == nil {
			d.add("@"+name, true, "directive removed")
			continue
		}
		d.arguments("@"+name, od.Arguments, nd.Arguments)
		for _, loc := range od.Locations {
			if !slices.Contains(nd.Locations, loc) {
				d.add("@"+name, true, "location "+string(loc)+" removed")
			}
		}
	}
	for name, nd := range new.Directives {
		if old.Directives[name] == nil && !builtIn(nd.Position) {
			d.add("@"+name, false, "directive added")
		}
	}
}

// nullable returns t without its non-null mark.
func nullable(t *ast.Type) *ast.Type {
	c := *t
	c.NonNull = false
	return &c
}

// safeOutput reports whether a field of type o may become type n without
// breaking a client that reads it: the same type, or one that promises
// more (a nullable value made non-null, at any depth of a list).
func safeOutput(o, n *ast.Type) bool {
	if o.NonNull && !n.NonNull {
		return false
	}
	o, n = nullable(o), nullable(n)
	if o.Elem != nil {
		return n.Elem != nil && safeOutput(o.Elem, n.Elem)
	}
	return n.Elem == nil && o.NamedType == n.NamedType
}

// safeInput reports whether an argument or input field of type o may
// become type n without breaking a client that sends it: the same type,
// or one that accepts more (a non-null made nullable, at any depth).
func safeInput(o, n *ast.Type) bool {
	if !o.NonNull && n.NonNull {
		return false
	}
	o, n = nullable(o), nullable(n)
	if o.Elem != nil {
		return n.Elem != nil && safeInput(o.Elem, n.Elem)
	}
	return n.Elem == nil && o.NamedType == n.NamedType
}

// Breaking returns the breaking changes among changes.
func Breaking(changes []Change) []Change {
	var out []Change
	for _, c := range changes {
		if c.Breaking {
			out = append(out, c)
		}
	}
	return out
}
