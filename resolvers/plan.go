package resolvers

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/99designs/gqlgen/graphql"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/store"
)

// Compiled plans answer the registered operations agent desktops send
// most, recognized by their exact text (a persisted query's hash leads to
// the same text), without gqlgen's execution: the plan reads the store
// (store.OpenReader) and writes the JSON of the answer's data directly,
// exactly as gqlgen's execution would write it (the differential test in
// server/plan_test.go compares the two byte for byte over randomized
// data). Everything around execution still applies, since the server runs
// a plan in gqlgen's place inside the same pipeline: authentication, the
// query limits, the operation timeout, metrics and tracing.
//
// A plan answers only what it knows it answers alike. Anything else (an
// argument gqlgen would refuse, a value gqlgen would turn into an error,
// data a plan does not expect such as a merged-away profile, a store
// error) makes it decline before it has written anything, and the
// operation runs through gqlgen as any other.

// Plan is the compiled plan of one registered operation.
type Plan struct {
	// Name is the operation's name, for logs and spans.
	Name string
	run  func(ctx context.Context, vars map[string]any, dst []byte) ([]byte, error)
}

// errDecline is how a plan leaves an operation to gqlgen.
var errDecline = errors.New("resolvers: the plan declines")

// Append answers the operation with variables vars: it appends the JSON
// of the answer's data to dst, or reports false when the plan declines
// (the operation must then run through gqlgen). A declined run has sent at
// most the reads it had made; what it appended is to be dropped.
func (p *Plan) Append(ctx context.Context, vars map[string]any, dst []byte) ([]byte, bool) {
	out, err := p.run(ctx, vars, dst)
	if err != nil {
		return nil, false
	}
	return out, true
}

// panelRows recycles the rows a plan reads (a page of 20 is some 6 KB of
// row structs): the strings they held are cleared before reuse.
var panelRows = sync.Pool{New: func() any { return new(store.PanelRows) }}

func getRows() *store.PanelRows { return panelRows.Get().(*store.PanelRows) }

func putRows(r *store.PanelRows) {
	if cap(r.Rows) > store.MaxPageSize+1 {
		return
	}
	clear(r.Rows[:cap(r.Rows)])
	r.Rows = r.Rows[:0]
	panelRows.Put(r)
}

// PlanFor returns the compiled plan of the operation whose document is
// exactly query, or nil when it has none (or the store cannot serve one).
func (r *Resolver) PlanFor(query string) *Plan {
	or, ok := r.Store.(store.OpenReader)
	if !ok {
		return nil
	}
	if query == operation.OpenInteraction {
		return &Plan{Name: "Open", run: func(ctx context.Context, vars map[string]any, dst []byte) ([]byte, error) {
			return r.openInteraction(ctx, or, vars, dst)
		}}
	}
	return nil
}

// openInteraction answers operation.OpenInteraction: what the resolvers of
// Query.interaction, Interaction.contact, lastMessage, profile and related
// do on a store.PanelReader, in the same reads.
func (r *Resolver) openInteraction(ctx context.Context, or store.OpenReader, vars map[string]any, dst []byte) ([]byte, error) {
	viewer, ok := related.ViewerFrom(ctx)
	if !ok {
		return nil, errDecline
	}
	// The arguments, as gqlgen reads them from the variables.
	gid, err := graphql.UnmarshalID(vars["id"])
	if err != nil {
		return nil, errDecline
	}
	var first *int
	if v, ok := vars["first"]; ok && v != nil {
		n, err := graphql.UnmarshalInt(v)
		if err != nil {
			return nil, errDecline
		}
		first = &n
	}
	pg, err := store.NewPage(first, nil, nil, nil)
	if err != nil {
		return nil, errDecline // an INVALID error on related: gqlgen's to write
	}
	start := len(dst)
	dst = append(dst, `{"interaction":`...)
	id, err := related.ParseTypedID(gid, related.NodeInteraction)
	if err != nil {
		return append(dst, "null}"...), nil
	}
	var v store.OpenView
	found, err := or.OpenView(ctx, viewer.Tenant, id, &v)
	if err != nil {
		return nil, err
	}
	if !found {
		return append(dst, "null}"...), nil
	}
	// The profile bar's profile, and the panel's scope (related.ChooseScope
	// without a requested scope). A profile id that names no stored profile
	// or one merged away is followed by the resolvers: not here.
	prof := &v.Profile
	if v.ProfileID != "" && (prof.ID != v.ProfileID || prof.MergedInto != "") {
		return nil, errDecline
	}
	q := store.RelatedQuery{ContactID: v.ContactID, Exclude: v.ID}
	scope := related.ChooseScope("", v.ProfileID != "" && prof.Contacts > 1)
	if scope == related.ScopeProfile {
		q = store.RelatedQuery{ProfileID: prof.ID, Exclude: v.ID}
	}
	rows := getRows()
	defer putRows(rows)
	if err := or.PanelRows(ctx, viewer.Tenant, q, pg, rows); err != nil {
		return nil, err
	}
	// Long last messages: the interaction keeps only their start, and the
	// resolvers show the whole message. One read for all of them.
	full, err := r.fullMessages(ctx, viewer.Tenant, &v, rows.Rows)
	if err != nil {
		return nil, err
	}

	var okEnum bool
	dst = append(dst, `{"id":`...)
	dst = appendGlobalID(dst, related.NodeInteraction, v.ID)
	dst = append(dst, `,"channel":`...)
	if dst, okEnum = appendEnum(dst, v.Channel); !okEnum {
		return nil, errDecline
	}
	dst = append(dst, `,"status":`...)
	if dst, okEnum = appendEnum(dst, v.Status); !okEnum {
		return nil, errDecline
	}
	closed := v.Status == string(related.StatusClosed)
	dst = append(dst, `,"closedState":`...)
	if dst, okEnum = appendClosedState(dst, closed, v.ClosedState); !okEnum {
		return nil, errDecline
	}
	dst = append(dst, `,"closedAt":`...)
	dst = appendClosedAt(dst, closed, v.ClosedAt)
	if v.CreatedAt == 0 {
		return nil, errDecline // a non-null field gqlgen would answer with an error
	}
	dst = append(dst, `,"createdAt":`...)
	dst = appendTime(dst, v.CreatedAt)
	dst = append(dst, `,"contact":{"id":`...)
	dst = appendGlobalID(dst, related.NodeContact, v.ContactID)
	dst = append(dst, `,"name":`...)
	dst = appendStringOrNull(dst, v.ContactName)
	dst = append(dst, `,"address":`...)
	dst = appendString(dst, v.ContactAddress)
	dst = append(dst, `},"queue":`...)
	dst = appendQueue(dst, v.QueueID, v.QueueName)
	dst = append(dst, `,"lastMessage":`...)
	if v.Last.ID == "" {
		dst = append(dst, "null"...)
	} else {
		m := v.Last
		if f, ok := full[m.ID]; ok && m.Partial {
			m = f
		}
		if m.SentAt == 0 {
			return nil, errDecline
		}
		dst = append(dst, `{"id":`...)
		dst = appendGlobalID(dst, related.NodeMessage, m.ID)
		dst = append(dst, `,"body":`...)
		dst = appendString(dst, m.Body)
		dst = append(dst, `,"sentAt":`...)
		dst = appendTime(dst, m.SentAt)
		dst = append(dst, `,"direction":`...)
		if dst, okEnum = appendEnum(dst, m.Direction); !okEnum {
			return nil, errDecline
		}
		dst = append(dst, `,"author":`...)
		dst = appendStringOrNull(dst, m.Author)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"profile":`...)
	if v.ProfileID == "" {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, `{"id":`...)
		dst = appendGlobalID(dst, related.NodeProfile, prof.ID)
		dst = append(dst, `,"name":`...)
		name := prof.CustomName
		if name == "" {
			name = prof.AutoName
		}
		dst = appendString(dst, name)
		dst = append(dst, `,"channels":`...)
		if !channelList(prof.Channels) {
			return nil, errDecline
		}
		dst = append(dst, prof.Channels...)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"related":{"scope":`...)
	dst, _ = appendEnum(dst, string(scope))
	dst = append(dst, `,"totalCount":`...)
	dst = strconv.AppendInt(dst, int64(rows.Total), 10)
	dst = append(dst, `,"pageInfo":{"hasNextPage":`...)
	dst = strconv.AppendBool(dst, rows.HasNextPage)
	dst = append(dst, `,"hasPreviousPage":`...)
	dst = strconv.AppendBool(dst, rows.HasPreviousPage)
	dst = append(dst, `,"startCursor":`...)
	if len(rows.Rows) == 0 {
		dst = append(dst, `null,"endCursor":null`...)
	} else {
		f, l := &rows.Rows[0], &rows.Rows[len(rows.Rows)-1]
		dst = appendCursor(dst, rowLastAt(f), f.ID)
		dst = append(dst, `,"endCursor":`...)
		dst = appendCursor(dst, rowLastAt(l), l.ID)
	}
	dst = append(dst, `},"edges":[`...)
	for i := range rows.Rows {
		row := &rows.Rows[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"cursor":`...)
		dst = appendCursor(dst, rowLastAt(row), row.ID)
		dst = append(dst, `,"node":{"id":`...)
		dst = appendGlobalID(dst, related.NodeInteraction, row.ID)
		dst = append(dst, `,"channel":`...)
		if dst, okEnum = appendEnum(dst, row.Channel); !okEnum {
			return nil, errDecline
		}
		dst = append(dst, `,"status":`...)
		if dst, okEnum = appendEnum(dst, row.Status); !okEnum {
			return nil, errDecline
		}
		closed := row.Status == string(related.StatusClosed)
		dst = append(dst, `,"closedState":`...)
		if dst, okEnum = appendClosedState(dst, closed, row.ClosedState); !okEnum {
			return nil, errDecline
		}
		dst = append(dst, `,"closedAt":`...)
		dst = appendClosedAt(dst, closed, row.ClosedAt)
		dst = append(dst, `,"contact":{"id":`...)
		dst = appendGlobalID(dst, related.NodeContact, row.ContactID)
		dst = append(dst, `,"name":`...)
		dst = appendStringOrNull(dst, row.ContactName)
		dst = append(dst, `},"queue":`...)
		dst = appendQueue(dst, row.QueueID, row.QueueName)
		dst = append(dst, `,"lastMessage":`...)
		if row.Last.ID == "" {
			dst = append(dst, "null}}"...)
			continue
		}
		m := row.Last
		if f, ok := full[m.ID]; ok && m.Partial {
			m = f
		}
		if m.SentAt == 0 {
			return nil, errDecline
		}
		dst = append(dst, `{"preview":`...)
		dst = appendPreview(dst, m.Body)
		dst = append(dst, `,"sentAt":`...)
		dst = appendTime(dst, m.SentAt)
		dst = append(dst, `,"direction":`...)
		if dst, okEnum = appendEnum(dst, m.Direction); !okEnum {
			return nil, errDecline
		}
		dst = append(dst, "}}}"...)
	}
	dst = append(dst, "]}}}"...)
	if !withinBudget(ctx, int64(len(dst)-start), loaded(&v, rows.Rows, full)) {
		return nil, errDecline
	}
	return dst, nil
}

// planBudgetMargin is how far within its response budget (Budget) a plan
// answers: gqlgen's execution counts the budget field by field, by an
// estimate of each field's bytes that is above the bytes the field takes
// (within twice for this operation's fields), and a plan must not answer
// where gqlgen would refuse. An answer within a quarter of what is left of
// the budget is one gqlgen answers too; nearer the limit, the plan
// declines and gqlgen decides, exactly.
const planBudgetMargin = 4

// withinBudget charges what a plan wrote and read to ctx's response
// budget, unless that comes near the budget's limits: then it reports
// false and charges nothing.
func withinBudget(ctx context.Context, written, read int64) bool {
	b := BudgetFrom(ctx)
	if b == nil {
		return true
	}
	if b.Exceeded() || written*planBudgetMargin > b.maxWritten-b.written.Load() || (b.loaded.Load()+read)*planBudgetMargin > b.maxLoaded {
		return false
	}
	b.written.Add(written)
	b.loaded.Add(read)
	return true
}

// loaded is the bytes of message bodies a plan read, as the resolvers
// count them: the kept copies of the interactions' last messages, and the
// whole messages read for the long ones.
func loaded(v *store.OpenView, rows []store.PanelRow, full map[string]store.OpenMessage) int64 {
	n := int64(len(v.Last.Body))
	for i := range rows {
		n += int64(len(rows[i].Last.Body))
	}
	for _, m := range full {
		n += int64(len(m.Body))
	}
	return n
}

// rowLastAt is the time a row sorts by (related.Interaction.LastAt): its
// last message's sent time, else its creation time. The cursor is made
// from the row as the store read it (the kept copy of a long message bears
// its sent time too).
func rowLastAt(r *store.PanelRow) int64 {
	if r.Last.ID != "" {
		return r.Last.SentAt
	}
	return r.CreatedAt
}

// fullMessages reads the whole messages whose start the interactions keep
// (the LastMessage resolver's batch), in one read; nil when there are none.
func (r *Resolver) fullMessages(ctx context.Context, tenant string, v *store.OpenView, rows []store.PanelRow) (map[string]store.OpenMessage, error) {
	var ids []string
	if v.Last.Partial && v.Last.ID != "" {
		ids = append(ids, v.Last.ID)
	}
	for i := range rows {
		if rows[i].Last.Partial && rows[i].Last.ID != "" {
			ids = append(ids, rows[i].Last.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	ms, err := r.Store.Messages(ctx, tenant, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.OpenMessage, len(ms))
	for _, m := range ms {
		if m == nil {
			continue
		}
		out[m.ID] = store.OpenMessage{ID: m.ID, Body: m.Body, Direction: string(m.Direction), Author: m.Author, SentAt: sentMS(m)}
	}
	return out, nil
}

// sentMS is m's sent time in stored milliseconds (0 for the zero time).
func sentMS(m *related.Message) int64 {
	if m.SentAt.IsZero() {
		return 0
	}
	return m.SentAt.UnixMilli()
}

// appendClosedState writes Interaction.closedState: the state while
// closed, else null (ClosedStateOrNil).
func appendClosedState(dst []byte, closed bool, state string) ([]byte, bool) {
	if !closed || state == "" {
		return append(dst, "null"...), true
	}
	return appendEnum(dst, state)
}

// appendClosedAt writes Interaction.closedAt (ClosedAtOrNil).
func appendClosedAt(dst []byte, closed bool, at int64) []byte {
	if !closed || at == 0 {
		return append(dst, "null"...)
	}
	return appendTime(dst, at)
}

// appendQueue writes Interaction.queue { id name } (QueueRef).
func appendQueue(dst []byte, id, name string) []byte {
	if id == "" {
		return append(dst, "null"...)
	}
	dst = append(dst, `{"id":`...)
	dst = appendGlobalID(dst, related.NodeQueue, id)
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, name)
	return append(dst, '}')
}

// channelList reports whether a profile's stored channels are a JSON
// array of enum names as json.Marshal writes it (no spaces, no escapes),
// which is then also exactly what gqlgen writes of the decoded list.
func channelList(s string) bool {
	if s == "[]" {
		return true
	}
	if len(s) < 4 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	for i := 1; ; {
		if s[i] != '"' {
			return false
		}
		i++
		start := i
		for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] == '_') {
			i++
		}
		if i == start || i >= len(s)-1 || s[i] != '"' {
			return false
		}
		i++ // past the closing quote: a comma, or the final bracket
		if i == len(s)-1 {
			return true
		}
		if s[i] != ',' || i+1 >= len(s)-1 {
			return false
		}
		i++
	}
}
