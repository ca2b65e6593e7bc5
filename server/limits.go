package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
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
	// MaxConnections bounds each key's open WebSockets and event streams;
	// negative means no limit (load tests).
	MaxConnections int
	// MaxInFlight bounds each key's operations running at once: HTTP
	// requests (from the first byte of the body to the last of the
	// answer), WebSocket queries and mutations, and subscription events
	// being built (which wait for a slot rather than fail). Negative means
	// no limit (load tests).
	MaxInFlight int
	// MaxResponseBytes bounds the bytes of one response (one subscription
	// event's), counted while it is produced; the message bodies an
	// operation reads are bounded by twice that.
	MaxResponseBytes int64
	// BodyTimeout bounds the time a client may take to send a request
	// body (a slow body holds a connection).
	BodyTimeout time.Duration
	// OperationTimeout bounds a query or mutation's run time.
	OperationTimeout time.Duration
	// QueryCacheBytes bounds the parsed-query cache by the bytes its
	// documents keep (an estimate: parsedBytesPerNode per node).
	QueryCacheBytes int64
	// MaxBatch bounds the operations of one batched request (a JSON array
	// body); a negative value refuses batches.
	MaxBatch int
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
	RateBurst:        100,
	AnonPerSecond:    10,
	AnonBurst:        100,
	MaxSubscriptions: 50,
	MaxConnections:   20,
	MaxInFlight:      8,
	MaxResponseBytes: 4 << 20,
	BodyTimeout:      10 * time.Second,
	OperationTimeout: 15 * time.Second,
	QueryCacheBytes:  32 << 20,
	MaxBatch:         10,
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
	set(&l.MaxConnections, d.MaxConnections)
	set(&l.MaxInFlight, d.MaxInFlight)
	if l.MaxResponseBytes == 0 {
		l.MaxResponseBytes = d.MaxResponseBytes
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = d.BodyTimeout
	}
	set(&l.MaxBatch, d.MaxBatch)
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
	if l.QueryCacheBytes == 0 {
		l.QueryCacheBytes = d.QueryCacheBytes
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
	st, doc, err := measureDoc(query, maxTokens)
	if err != nil {
		return docStats{}, 0, err
	}
	return st, len(doc.Operations), nil
}

func measureDoc(query string, maxTokens int) (docStats, *ast.QueryDocument, error) {
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, maxTokens)
	if err != nil {
		return docStats{}, nil, err
	}
	m := measurer{doc: doc, memo: map[string]docStats{}, busy: map[string]bool{}}
	var total docStats
	for _, op := range doc.Operations {
		total = total.add(m.set(op.SelectionSet))
	}
	return total, doc, nil
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

// maxOverlapPairs bounds the work of validation's one quadratic rule
// (OverlappingFieldsCanBeMerged): every two fields that answer under the
// same response path are compared, so 2,000 copies of one field cost two
// million comparisons, a third of a second of CPU per distinct document
// (issue 13: one key held 1.8 cores with distinct documents). 20,000
// comparisons take a few milliseconds (TestValidationWorkIsBounded); real
// documents, where a few fragments each select an id, need dozens.
const maxOverlapPairs = 20_000

// overlapPairs counts the field pairs validation compares: for every
// response path (fields merged by alias or name, fragments expanded), the
// pairs among the fields selected there. It returns the count and the
// path with the most pairs. The caller has checked that the expanded
// document is small (MaxFields), which bounds this walk.
func overlapPairs(doc *ast.QueryDocument) (int64, string) {
	type node struct {
		count    int64
		children map[string]*node
	}
	var (
		total, worst int64
		worstPath    string
		visits       int
	)
	const maxVisits = 1 << 20 // a guard: MaxFields keeps walks far smaller
	var walk func(ss ast.SelectionSet, n *node, path string, busy map[string]bool)
	walk = func(ss ast.SelectionSet, n *node, path string, busy map[string]bool) {
		for _, sel := range ss {
			if visits++; visits > maxVisits {
				return
			}
			switch s := sel.(type) {
			case *ast.Field:
				key := s.Alias
				if key == "" {
					key = s.Name
				}
				if n.children == nil {
					n.children = map[string]*node{}
				}
				c := n.children[key]
				if c == nil {
					c = &node{}
					n.children[key] = c
				}
				total = addSat(total, c.count) // the new field pairs with each earlier one
				c.count++
				p := key
				if path != "" {
					p = path + "." + key
				}
				if pairs := c.count * (c.count - 1) / 2; pairs > worst {
					worst, worstPath = pairs, p
				}
				walk(s.SelectionSet, c, p, busy)
			case *ast.InlineFragment:
				walk(s.SelectionSet, n, path, busy)
			case *ast.FragmentSpread:
				def := doc.Fragments.ForName(s.Name)
				if def == nil || busy[s.Name] {
					continue
				}
				busy[s.Name] = true
				walk(def.SelectionSet, n, path, busy)
				delete(busy, s.Name)
			}
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet, &node{}, "", map[string]bool{})
	}
	return total, worstPath
}

// precheck is a gqlgen extension that checks every document before gqlgen
// parses and validates it (validation has rules quadratic in a selection's
// size): its text (checkQueryText), its size (the limits), and each
// request's variables against the types the document declares
// (coerceVariables: before gqlparser's own, more lenient, coercion). What
// it learns of a document is cached by the query's hash, within a bound on
// bytes.
type precheck struct {
	limits Limits
	schema *ast.Schema
	cache  *sizedLRU[*checked]
}

// checked is what the pre-check keeps of a document.
type checked struct {
	err  *gqlerror.Error     // the document's refusal, if any
	vars map[string][]varDef // each operation's declared variables
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*precheck)(nil)

// precheckCacheBytes bounds what the pre-check caches: a hash and a few
// variable types per document, so it holds thousands of documents.
const precheckCacheBytes = 4 << 20

func newPrecheck(l Limits) *precheck {
	return &precheck{limits: l, cache: newSizedLRU(precheckCacheBytes, func(_ string, c *checked) int64 {
		n := int64(sha256.Size + entryOverhead + varDefsSize(c.vars))
		if c.err != nil {
			n += int64(len(c.err.Message)) + 128
		}
		return n
	})}
}

// ExtensionName implements graphql.HandlerExtension.
func (p *precheck) ExtensionName() string { return "RelatedPrecheck" }

// Validate implements graphql.HandlerExtension: it keeps the schema, which
// variable coercion checks types against.
func (p *precheck) Validate(s graphql.ExecutableSchema) error {
	p.schema = s.Schema()
	return nil
}

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (p *precheck) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if raw.Query == "" {
		return nil // gqlgen reports the missing query
	}
	// Keyed by hash: a thousand distinct 1 MiB queries must not pin a
	// gigabyte of keys.
	sum := sha256.Sum256([]byte(raw.Query))
	key := string(sum[:])
	c, ok := p.cache.Get(ctx, key)
	if !ok {
		c = p.check(raw.Query)
		p.cache.Add(ctx, key, c)
	}
	if c.err != nil {
		return c.err
	}
	if defs, ok := c.vars[raw.OperationName]; ok && p.schema != nil {
		return coerceVariables(p.schema, defs, raw.Variables)
	}
	return nil
}

func (p *precheck) check(query string) *checked {
	if err := checkQueryText(query); err != nil {
		return &checked{err: err}
	}
	st, doc, err := measureDoc(query, p.limits.MaxTokens)
	if err != nil {
		return &checked{} // a syntax error: gqlgen's own parse reports it in full
	}
	ops := len(doc.Operations)
	l := p.limits
	var refused *gqlerror.Error
	switch {
	case ops > l.MaxOperations:
		refused = refusal(CodeTooManyOps, "the document holds %d operations; at most %d are allowed", ops, l.MaxOperations)
	case st.aliases > int64(l.MaxAliases):
		refused = refusal(CodeTooManyAliases, "the document uses %d aliases; at most %d are allowed", st.aliases, l.MaxAliases)
	case st.fields > int64(l.MaxFields):
		refused = refusal(CodeTooManyFields, "the document selects %d fields (fragments expanded); at most %d are allowed", st.fields, l.MaxFields)
	case st.depth > l.MaxDepth:
		refused = refusal(CodeTooDeep, "the document nests fields %d deep; at most %d is allowed", st.depth, l.MaxDepth)
	default:
		// Only now, with the expanded fields known to be few, is walking
		// them cheap.
		if pairs, at := overlapPairs(doc); pairs > maxOverlapPairs {
			refused = refusal(CodeTooManyFields, "the document selects %s so many times (fragments expanded) that checking they agree takes %d comparisons; at most %d are allowed: select each field once", at, pairs, maxOverlapPairs)
		}
	}
	if refused != nil {
		return &checked{err: refused}
	}
	return &checked{vars: declaredVars(doc)}
}

// defaultPage is what a connection returns when neither first nor last
// is given (DESIGN.md section 3).
const defaultPage = 20

// complexity computes the cost of a validated operation: 1 per field, the
// edges and nodes of a connection (a field whose type's name ends in
// "Connection") times the page size the arguments ask for, and the
// selection of a field taking a list of ids (Query.nodes) times the number
// of ids. It is generic over the schema so that connection and batch
// fields added later are costed without a table to keep up to date.
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
	if f.Definition == nil || f.Definition.Type == nil {
		return addSat(1, selectionCost(f.SelectionSet, vars))
	}
	if !strings.HasSuffix(f.Definition.Type.Name(), "Connection") {
		n := int64(1)
		if a := f.Arguments.ForName("ids"); a != nil {
			if v, err := a.Value.Value(vars); err == nil {
				if ids, ok := v.([]any); ok {
					n = int64(len(ids)) // each id resolves the selection once
				}
			}
		}
		return addSat(1, mulSat(selectionCost(f.SelectionSet, vars), n))
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
	if err := checkLiterals(rc.Operation); err != nil {
		return err
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

// aroundOperations bounds every query and mutation by the operation
// timeout, every key's open subscriptions by the cap, and the queries and
// mutations a key runs at once on its WebSockets by MaxInFlight (an HTTP
// request took its slot in requireKey, for the whole request).
func (s *Server) aroundOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	rc := graphql.GetOperationContext(ctx)
	v, _ := related.ViewerFrom(ctx)
	if rc.Operation != nil && rc.Operation.Operation == ast.Subscription {
		if !s.subs.acquireUntil(ctx, v.Principal) {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{refusal(CodeTooManySubs,
				"this key has %d open subscriptions, the most allowed: close one first", s.subs.max)}})
		}
		return next(ctx)
	}
	release := func() {}
	if onWebSocket(ctx) {
		r, ok := s.inflight.acquire(v.Principal)
		if !ok {
			return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{s.tooManyInFlight()}})
		}
		release = r
		context.AfterFunc(ctx, release) // should the answer never be asked for
	}
	ctx, cancel := context.WithTimeout(ctx, s.limits.OperationTimeout)
	h := next(ctx)
	return func(ctx context.Context) *graphql.Response {
		r := h(ctx)
		cancel() // queries and mutations answer once
		release()
		return r
	}
}

func (s *Server) tooManyInFlight() *gqlerror.Error {
	e := refusal(CodeRateLimited, "this key has %d operations running, the most allowed at once: wait for one to finish", s.inflight.max)
	e.Extensions["retryAfter"] = 1
	return e
}

type onWebSocketKey struct{}

// onWebSocket reports whether ctx is an operation's on a WebSocket (wsInit
// marks the connection's context).
func onWebSocket(ctx context.Context) bool {
	on, _ := ctx.Value(onWebSocketKey{}).(bool)
	return on
}

// operationRate is the gqlgen extension that takes a token of the key's
// rate limit for every operation sent on a WebSocket, before anything
// parses it. An HTTP request took its token in requireKey; without this a
// socket, which pays once when it opens, ran operations at any rate (issue
// 13: 2,000 queries in 0.41 s on one socket).
type operationRate struct{ s *Server }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = operationRate{}

// ExtensionName implements graphql.HandlerExtension.
func (operationRate) ExtensionName() string { return "RelatedOperationRate" }

// Validate implements graphql.HandlerExtension.
func (operationRate) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters implements graphql.OperationParameterMutator.
func (o operationRate) MutateOperationParameters(ctx context.Context, _ *graphql.RawParams) *gqlerror.Error {
	if !onWebSocket(ctx) {
		return nil
	}
	v, ok := related.ViewerFrom(ctx)
	if !ok {
		return nil // the operation guard refuses it
	}
	if ok, wait := o.s.keyLimit.allow(v.Principal); !ok {
		e := refusal(CodeRateLimited, "too many operations: this key may send %g per second (burst %d); retry after %d s",
			o.s.limits.RatePerSecond, o.s.limits.RateBurst, retrySeconds(wait))
		e.Extensions["retryAfter"] = retrySeconds(wait)
		return e
	}
	return nil
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
// refusal gqlgen would answer with 200, such as 403 for FORBIDDEN, and the
// headers that go with it (Retry-After).
type statusOverride struct {
	mu     sync.Mutex
	code   int
	header http.Header
}

func markStatus(ctx context.Context, code int, header ...string) {
	if o, ok := ctx.Value(statusKey{}).(*statusOverride); ok {
		o.mu.Lock()
		o.code = code
		for i := 0; i+1 < len(header); i += 2 {
			if o.header == nil {
				o.header = http.Header{}
			}
			o.header.Set(header[i], header[i+1])
		}
		o.mu.Unlock()
	}
}

// markUnavailable answers the request with 503 and Retry-After.
func markUnavailable(ctx context.Context) {
	markStatus(ctx, http.StatusServiceUnavailable, "Retry-After", strconv.Itoa(retryAfterUnavailable))
}

// String implements fmt.Stringer for logs.
func (o *statusOverride) String() string { return fmt.Sprint(o.get()) }

func (o *statusOverride) get() int {
	code, _ := o.status()
	return code
}

func (o *statusOverride) status() (int, http.Header) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.code, o.header
}
