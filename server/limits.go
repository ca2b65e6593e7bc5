package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/relatedhq/related"
)

// Limits bound what one request may cost. The zero value of a field means
// its default (DefaultLimits).
type Limits struct {
	// MaxBodyBytes bounds a request body and a WebSocket message (413).
	MaxBodyBytes int64
	// MaxTokens bounds the lexer's work on one document.
	MaxTokens int
	// MaxDepth bounds field nesting (introspection fields aside, which
	// are bounded by MaxFields).
	MaxDepth int
	// MaxFields bounds the fields of a document with every fragment
	// spread expanded: it is what keeps fragment "bombs" and validation's
	// quadratic rules cheap.
	MaxFields int
	// MaxAliases bounds the aliases of a document (fragments expanded).
	MaxAliases int
	// MaxOperations bounds the operations of one document.
	MaxOperations int
	// MaxComplexity bounds an operation's cost: 1 per field, and a
	// connection's edges and nodes count once per item it may return
	// (first or last, 20 by default).
	MaxComplexity int
	// RatePerSecond and RateBurst are each key's token bucket. A negative
	// rate disables rate limiting.
	RatePerSecond float64
	RateBurst     int
	// AnonPerSecond and AnonBurst are each client address's bucket for
	// requests with a well-formed but unknown or revoked key, and for
	// WebSocket upgrades that bring their key in connection_init.
	AnonPerSecond float64
	AnonBurst     int
	// MaxSubscriptions bounds each key's open subscriptions.
	MaxSubscriptions int
	// OperationTimeout bounds a query or mutation's run time.
	OperationTimeout time.Duration
}

// DefaultLimits are the limits a zero Limits field stands for: generous
// for an agent desktop or an integration, small for an attacker.
var DefaultLimits = Limits{
	MaxBodyBytes:     1 << 20,
	MaxTokens:        20_000,
	MaxDepth:         12,
	MaxFields:        2_000,
	MaxAliases:       50,
	MaxOperations:    10,
	MaxComplexity:    5_000,
	RatePerSecond:    20,
	RateBurst:        60,
	AnonPerSecond:    10,
	AnonBurst:        100,
	MaxSubscriptions: 50,
	OperationTimeout: 15 * time.Second,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.MaxTokens, d.MaxTokens)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxFields, d.MaxFields)
	set(&l.MaxAliases, d.MaxAliases)
	set(&l.MaxOperations, d.MaxOperations)
	set(&l.MaxComplexity, d.MaxComplexity)
	set(&l.RateBurst, d.RateBurst)
	set(&l.AnonBurst, d.AnonBurst)
	set(&l.MaxSubscriptions, d.MaxSubscriptions)
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.RatePerSecond == 0 {
		l.RatePerSecond = d.RatePerSecond
	}
	if l.AnonPerSecond == 0 {
		l.AnonPerSecond = d.AnonPerSecond
	}
	if l.OperationTimeout == 0 {
		l.OperationTimeout = d.OperationTimeout
	}
	return l
}

// docStats is what the pre-check measures of a document.
type docStats struct {
	fields, aliases int64
	depth           int
}

// saturate keeps counts of hostile documents from overflowing.
const saturate = 1 << 40

func (a docStats) add(b docStats) docStats {
	return docStats{fields: min(a.fields+b.fields, saturate), aliases: min(a.aliases+b.aliases, saturate), depth: max(a.depth, b.depth)}
}

// measure parses query (without validating it) and measures it, with
// fragment spreads expanded by memoization so that a fragment used a
// million times costs one walk. It is linear in the document's size.
func measure(query string, maxTokens int) (docStats, int, error) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, maxTokens)
	if err != nil {
		return docStats{}, 0, err
	}
	m := measurer{doc: doc, memo: map[string]docStats{}, busy: map[string]bool{}}
	var total docStats
	for _, op := range doc.Operations {
		total = total.add(m.set(op.SelectionSet))
	}
	return total, len(doc.Operations), nil
}

type measurer struct {
	doc  *ast.QueryDocument
	memo map[string]docStats
	busy map[string]bool // fragments being walked: a cycle counts as nothing (validation rejects it)
}

func (m *measurer) set(ss ast.SelectionSet) docStats {
	var out docStats
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			child := m.set(s.SelectionSet)
			st := docStats{fields: 1 + child.fields, aliases: child.aliases, depth: 1 + child.depth}
			if s.Alias != "" && s.Alias != s.Name {
				st.aliases++
			}
			if strings.HasPrefix(s.Name, "__") && s.Name != "__typename" {
				st.depth = 1 // introspection: its own switch, bounded by MaxFields
			}
			out = out.add(st)
		case *ast.InlineFragment:
			out = out.add(m.set(s.SelectionSet))
		case *ast.FragmentSpread:
			out = out.add(m.fragment(s.Name))
		}
	}
	return out
}

func (m *measurer) fragment(name string) docStats {
	if st, ok := m.memo[name]; ok {
		return st
	}
	def := m.doc.Fragments.ForName(name)
	if def == nil || m.busy[name] {
		return docStats{}
	}
	m.busy[name] = true
	st := m.set(def.SelectionSet)
	delete(m.busy, name)
	m.memo[name] = st
	return st
}

// precheck is a gqlgen extension that measures every document before
// gqlgen validates it (validation has rules quadratic in a selection's
// size) and refuses those over the limits. Results are cached by the
// query's hash.
type precheck struct {
	limits Limits
	cache  *lru.LRU[*gqlerror.Error]
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*precheck)(nil)

func newPrecheck(l Limits) *precheck {
	return &precheck{limits: l, cache: lru.New[*gqlerror.Error](1000)}
}

// ExtensionName implements graphql.HandlerExtension.
func (p *precheck) ExtensionName() string { return "RelatedPrecheck" }

// Validate implements graphql.HandlerExtension.
func (p *precheck) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (p *precheck) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if raw.Query == "" {
		return nil // gqlgen reports the missing query
	}
	// Keyed by hash: a thousand distinct 1 MiB queries must not pin a
	// gigabyte of keys.
	sum := sha256.Sum256([]byte(raw.Query))
	key := string(sum[:])
	if err, ok := p.cache.Get(ctx, key); ok {
		return err
	}
	err := p.check(raw.Query)
	p.cache.Add(ctx, key, err)
	return err
}

func (p *precheck) check(query string) *gqlerror.Error {
	st, ops, err := measure(query, p.limits.MaxTokens)
	if err != nil {
		return nil // a syntax error: gqlgen's own parse reports it in full
	}
	l := p.limits
	switch {
	case ops > l.MaxOperations:
		return refusal(CodeTooManyOps, "the document holds %d operations; at most %d are allowed", ops, l.MaxOperations)
	case st.aliases > int64(l.MaxAliases):
		return refusal(CodeTooManyAliases, "the document uses %d aliases; at most %d are allowed", st.aliases, l.MaxAliases)
	case st.fields > int64(l.MaxFields):
		return refusal(CodeTooManyFields, "the document selects %d fields (fragments expanded); at most %d are allowed", st.fields, l.MaxFields)
	case st.depth > l.MaxDepth:
		return refusal(CodeTooDeep, "the document nests fields %d deep; at most %d is allowed", st.depth, l.MaxDepth)
	}
	return nil
}

// defaultPage is what a connection returns when neither first nor last
// is given (DESIGN.md section 3).
const defaultPage = 20

// complexity computes the cost of a validated operation: 1 per field, and
// the edges and nodes of a connection (a field whose type's name ends in
// "Connection") times the page size the arguments ask for. It is generic
// over the schema so that connection fields added later are costed
// without a table to keep up to date.
func complexity(op *ast.OperationDefinition, vars map[string]any) int64 {
	return selectionCost(op.SelectionSet, vars)
}

func selectionCost(ss ast.SelectionSet, vars map[string]any) int64 {
	var n int64
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			n = addSat(n, fieldCost(s, vars))
		case *ast.InlineFragment:
			n = addSat(n, selectionCost(s.SelectionSet, vars))
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n = addSat(n, selectionCost(s.Definition.SelectionSet, vars))
			}
		}
	}
	return n
}

func fieldCost(f *ast.Field, vars map[string]any) int64 {
	if f.Definition == nil || f.Definition.Type == nil || !strings.HasSuffix(f.Definition.Type.Name(), "Connection") {
		return addSat(1, selectionCost(f.SelectionSet, vars))
	}
	page := int64(defaultPage)
	args := f.ArgumentMap(vars)
	for _, name := range []string{"first", "last"} {
		if v, ok := args[name]; ok && v != nil {
			if n, ok := asInt(v); ok {
				page = n
				break
			}
		}
	}
	cost := int64(1)
	for _, sel := range f.SelectionSet {
		var c int64
		switch s := sel.(type) {
		case *ast.Field:
			c = fieldCost(s, vars)
			if s.Name == "edges" || s.Name == "nodes" {
				c = mulSat(c, page)
			}
		default:
			// Fragments on a connection: cost them as items, the worst case.
			c = mulSat(selectionCost(ast.SelectionSet{sel}, vars), page)
		}
		cost = addSat(cost, c)
	}
	return cost
}

// addSat and mulSat are the cost arithmetic: on operands in [0, saturate]
// they never overflow, and their results stay in [0, saturate]. A cost
// that wrapped around would turn an enormous query into a cheap one.
func addSat(a, b int64) int64 { return min(a+b, saturate) }

func mulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > saturate/b {
		return saturate
	}
	return min(a*b, saturate)
}

// asInt reads a page size argument as a count in [0, saturate]: negative
// sizes count as 0 and sizes past saturate (the validator refuses them
// anyway) as saturate, so no caller-chosen number can overflow the cost.
func asInt(v any) (int64, bool) {
	var f float64
	switch n := v.(type) {
	case int:
		return clampCount(int64(n)), true
	case int64:
		return clampCount(n), true
	case int32:
		return clampCount(int64(n)), true
	case float64:
		f = n
	case interface{ Float64() (float64, error) }: // json.Number
		x, err := n.Float64()
		if err != nil {
			return saturate, true // too long even for a float: as large as it gets
		}
		f = x
	default:
		return 0, false
	}
	switch {
	case f != f: // NaN
		return saturate, true
	case f <= 0:
		return 0, true
	case f >= saturate:
		return saturate, true
	}
	return int64(f), true
}

func clampCount(n int64) int64 { return max(0, min(n, saturate)) }

// operationGuard is the gqlgen extension that runs once an operation is
// parsed and validated, before anything executes: the role check of every
// root field and the complexity limit. Refusing here means a refused
// operation sends no database command and a mutation is refused whole,
// never half run.
type operationGuard struct {
	maxComplexity int
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = operationGuard{}

// ExtensionName implements graphql.HandlerExtension.
func (operationGuard) ExtensionName() string { return "RelatedOperationGuard" }

// Validate implements graphql.HandlerExtension.
func (operationGuard) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext implements graphql.OperationContextMutator.
func (g operationGuard) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil {
		return nil
	}
	v, ok := related.ViewerFrom(ctx)
	if !ok {
		return refusal(CodeUnauthenticated, "%s", errUnauthenticated.Error())
	}
	object := rootObject(rc.Operation.Operation)
	for _, name := range rootFields(rc.Operation.SelectionSet) {
		if !Allowed(v.Role, object, name) {
			markStatus(ctx, 403)
			return refusal(CodeForbidden, "the %s role may not run %s.%s", v.Role, object, name)
		}
	}
	if c := complexity(rc.Operation, rc.Variables); c > int64(g.maxComplexity) {
		return refusal(CodeTooComplex, "the operation costs %d; at most %d is allowed (ask for smaller pages with first/last, or fewer nested connections)", c, g.maxComplexity)
	}
	return nil
}

func rootObject(op ast.Operation) string {
	switch op {
	case ast.Mutation:
		return "Mutation"
	case ast.Subscription:
		return "Subscription"
	}
	return "Query"
}

// rootFields lists the names of a validated root selection's fields,
// fragments included, introspection's meta fields left out.
func rootFields(ss ast.SelectionSet) []string {
	var out []string
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			if !strings.HasPrefix(s.Name, "__") {
				out = append(out, s.Name)
			}
		case *ast.InlineFragment:
			out = append(out, rootFields(s.SelectionSet)...)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				out = append(out, rootFields(s.Definition.SelectionSet)...)
			}
		}
	}
	return out
}

// persisted is the allow-list mode: only operations registered in the
// registry run, by hash (the automatic persisted queries protocol's
// extensions.persistedQuery.sha256Hash) or by their exact text.
type persisted struct {
	ops map[string]string // sha256 hex -> query
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = persisted{}

// ExtensionName implements graphql.HandlerExtension.
func (persisted) ExtensionName() string { return "RelatedPersistedOnly" }

// Validate implements graphql.HandlerExtension.
func (persisted) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (p persisted) MutateOperationParameters(_ context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if raw.Query != "" {
		sum := sha256.Sum256([]byte(raw.Query))
		if _, ok := p.ops[hex.EncodeToString(sum[:])]; ok {
			return nil
		}
		return refusal(CodeNotPersisted, "this server runs registered operations only, and this one is not registered")
	}
	hash := persistedHash(raw.Extensions)
	q, ok := p.ops[strings.ToLower(hash)]
	if !ok {
		return refusal(CodeNotPersisted, "this server runs registered operations only: unknown operation hash")
	}
	raw.Query = q
	return nil
}

// persistedHash reads extensions.persistedQuery.sha256Hash.
func persistedHash(ext map[string]any) string {
	pq, _ := ext["persistedQuery"].(map[string]any)
	h, _ := pq["sha256Hash"].(string)
	return h
}

// subscriptions counts each key's open subscriptions.
type subscriptions struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// acquire takes a slot for principal until ctx ends; false when none is
// left.
func (s *subscriptions) acquire(ctx context.Context, principal string) bool {
	s.mu.Lock()
	if s.open[principal] >= s.max {
		s.mu.Unlock()
		return false
	}
	s.open[principal]++
	s.mu.Unlock()
	context.AfterFunc(ctx, func() {
		s.mu.Lock()
		if s.open[principal]--; s.open[principal] <= 0 {
			delete(s.open, principal)
		}
		s.mu.Unlock()
	})
	return true
}

// aroundOperations bounds every query and mutation by the operation
// timeout and every key's open subscriptions by the cap.
func (s *Server) aroundOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rc := graphql.GetOperationContext(ctx)
	if rc.Operation != nil && rc.Operation.Operation == ast.Subscription {
		v, _ := related.ViewerFrom(ctx)
		if !s.subs.acquire(ctx, v.Principal) {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{refusal(CodeTooManySubs,
				"this key has %d open subscriptions, the most allowed: close one first", s.subs.max)}})
		}
		return next(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, s.limits.OperationTimeout)
	h := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		r := h(ctx)
		cancel() // queries and mutations answer once
		return r
	}
}

// aroundRootFields repeats the role check at each root field: defence in
// depth should an operation reach execution by a path that skipped the
// operation guard.
func (s *Server) aroundRootFields(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	fc := graphql.GetRootFieldContext(ctx)
	if fc == nil || strings.HasPrefix(fc.Field.Name, "__") || !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	// fc.Object is not the root type (gqlgen fills in the field's name),
	// so the operation says which root this is.
	object := rootObject(graphql.GetOperationContext(ctx).Operation.Operation)
	v, ok := related.ViewerFrom(ctx)
	if !ok || !Allowed(v.Role, object, fc.Field.Name) {
		graphql.AddError(ctx, refusal(CodeForbidden, "the %s role may not run %s.%s", v.Role, object, fc.Field.Name))
		return graphql.Null
	}
	return next(ctx)
}

// statusKey carries a request's *statusOverride.
type statusKey struct{}

// statusOverride lets the GraphQL layer choose the HTTP status of a
// refusal gqlgen would answer with 200, such as 403 for FORBIDDEN.
type statusOverride struct {
	mu   sync.Mutex
	code int
}

func markStatus(ctx context.Context, code int) {
	if o, ok := ctx.Value(statusKey{}).(*statusOverride); ok {
		o.mu.Lock()
		o.code = code
		o.mu.Unlock()
	}
}

// String implements fmt.Stringer for logs.
func (o *statusOverride) String() string { return fmt.Sprint(o.get()) }

func (o *statusOverride) get() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.code
}
