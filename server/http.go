package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/relatedhq/related/resolvers"
)

// Codes of the refusals of GraphQL-over-HTTP requests that are not well
// formed.
const (
	CodeBadRequest       = "BAD_REQUEST"            // the body or query string is not a GraphQL-over-HTTP request (HTTP 400)
	CodeBatchTooLarge    = "BATCH_TOO_LARGE"        // a batch (JSON array body) holds more operations than the limit (HTTP 400)
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"     // a mutation or subscription sent with GET, or a method other than GET/POST (HTTP 405)
	CodeNotAcceptable    = "NOT_ACCEPTABLE"         // the Accept header names no media type the server answers in (HTTP 406)
	CodeUnsupportedType  = "UNSUPPORTED_MEDIA_TYPE" // a POST body that is not application/json (HTTP 415)
)

// Media types of GraphQL over HTTP.
const (
	mediaGraphQLResponse = "application/graphql-response+json"
	mediaJSON            = "application/json"
	mediaEventStream     = "text/event-stream"
)

// httpTransport serves GraphQL over HTTP (GET and POST) as the
// GraphQL-over-HTTP specification asks, in place of gqlgen's GET and POST
// transports: the response's media type is chosen by Accept; under
// application/json a request that fails to parse or validate is a 200,
// under application/graphql-response+json a 400, and neither carries a
// "data" entry; a mutation sent with GET is a 405; a JSON array body is a
// batch, run operation by operation within MaxBatch.
type httpTransport struct {
	s *Server
}

var _ graphql.Transport = httpTransport{}

// Supports implements graphql.Transport: every GET and POST but WebSocket
// upgrades (event streams are chosen before, by sseTransport).
func (t httpTransport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && (r.Method == http.MethodGet || r.Method == http.MethodPost)
}

// wireError is a GraphQL error as a request error carries it.
type requestErrorBody struct {
	Errors     gqlerror.List  `json:"errors"`
	Extensions map[string]any `json:"extensions,omitempty"`
}

// Do implements graphql.Transport.
func (t httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	release, ok := t.s.admit(w, r)
	if !ok {
		return
	}
	defer release()
	media, ok := negotiate(r.Header.Get("Accept"))
	if !ok && r.Method == http.MethodGet {
		// A mutation sent with GET is refused as such whatever the client
		// accepts: no answer it could take would be one.
		q := r.URL.Query()
		if op := operationOf(q.Get("query"), q.Get("operationName"), t.s.limits.MaxTokens); op == ast.Mutation || op == ast.Subscription {
			w.Header().Set("Allow", "POST")
			writeError(w, r, http.StatusMethodNotAllowed, CodeMethodNotAllowed, fmt.Sprintf("a %s cannot be sent with GET: send it with POST", op))
			return
		}
	}
	if !ok {
		writeError(w, r, http.StatusNotAcceptable, CodeNotAcceptable,
			"the Accept header names no media type this server answers in: accept application/graphql-response+json or application/json (or text/event-stream for subscriptions)")
		return
	}
	// Plain answers get the deadlines of plain requests even when the
	// client also accepts an event stream (server.deadlines skips those,
	// and sets them for the others).
	if strings.Contains(r.Header.Get("Accept"), mediaEventStream) {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(30 * time.Second))
		_ = rc.SetWriteDeadline(time.Now().Add(t.s.limits.OperationTimeout + 15*time.Second))
	}
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	w.Header().Add("Vary", "Accept")
	start := graphql.Now()
	if r.Method == http.MethodGet {
		params, err := getParams(r.URL.RawQuery)
		if err != nil {
			t.badRequest(w, r, err.Error())
			return
		}
		params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
		params.Headers = r.Header
		t.single(w, r, exec, media, params, true)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaJSON {
		writeError(w, r, http.StatusUnsupportedMediaType, CodeUnsupportedType,
			"send the request body as Content-Type: application/json")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.badRequest(w, r, "could not read the request body")
		return
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		t.batch(w, r, exec, media, trimmed, start)
		return
	}
	params, err := postParams(trimmed)
	if err != nil {
		t.badRequest(w, r, err.Error())
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = r.Header
	t.single(w, r, exec, media, params, false)
}

func (t httpTransport) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	writeError(w, r, http.StatusBadRequest, CodeBadRequest, msg)
}

// single runs one operation and writes its result.
func (t httpTransport) single(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, media string, params *graphql.RawParams, get bool) {
	ctx := r.Context()
	status, body, release := t.run(ctx, exec, media, params, get)
	if release != nil {
		defer release()
	}
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "POST")
	}
	body = append(body, '\n')
	// Its length, so the answer goes out in one piece, not chunked.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// run executes one operation and returns the status and JSON body of its
// answer.
// release, when not nil, is to be called once the body is written: it
// recycles the buffer of a compiled plan's answer.
func (t httpTransport) run(ctx context.Context, exec graphql.GraphExecutor, media string, params *graphql.RawParams, get bool) (status int, body []byte, release func()) {
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		status, b := t.requestError(ctx, exec, opCtx, media, errs, 0)
		return status, b, nil
	}
	switch op := opCtx.Operation.Operation; {
	case get && op != ast.Query:
		status, b := t.requestError(ctx, exec, opCtx, media, gqlerror.List{refusal(CodeMethodNotAllowed,
			"a %s cannot be sent with GET: send it with POST", op)}, http.StatusMethodNotAllowed)
		return status, b, nil
	case op == ast.Subscription:
		status, b := t.requestError(ctx, exec, opCtx, media, gqlerror.List{refusal(CodeBadRequest,
			"subscriptions are served over WebSocket (graphql-transport-ws) or server-sent events (POST with Accept: text/event-stream)")}, 0)
		return status, b, nil
	}
	planned := new(plannedAnswer)
	responses, ctx := exec.DispatchOperation(context.WithValue(ctx, plannedKey{}, planned), opCtx)
	resp := responses(ctx)
	if resp == nil {
		resp = &graphql.Response{Errors: gqlerror.List{{Message: "the operation returned no result"}}}
	}
	if b, release, ok := planned.finish(resp); ok {
		// A compiled plan wrote the answer in its final form (plan.go).
		return statusOf(ctx, http.StatusOK), b, release
	}
	b, err := json.Marshal(resp)
	if err != nil {
		t.s.log.ErrorContext(ctx, "could not encode a response", "request_id", RequestID(ctx), "err", err)
		return http.StatusInternalServerError, mustJSON(requestErrorBody{Errors: gqlerror.List{refusal(CodeInternal, "internal server error (request id %s)", RequestID(ctx))}}), nil
	}
	return statusOf(ctx, http.StatusOK), b, nil
}

// requestError answers an operation that did not run: no "data" entry, and
// the status GraphQL over HTTP gives the media type (200 under
// application/json, 400 under application/graphql-response+json) unless
// the error chose its own (403 for FORBIDDEN, 405 for GET mutations).
func (t httpTransport) requestError(ctx context.Context, exec graphql.GraphExecutor, opCtx *graphql.OperationContext, media string, errs gqlerror.List, status int) (int, []byte) {
	if opCtx != nil {
		ctx = graphql.WithOperationContext(ctx, opCtx)
	}
	resp := exec.DispatchError(ctx, errs)
	if status == 0 {
		status = http.StatusOK
		if media == mediaGraphQLResponse {
			status = http.StatusBadRequest
		}
	}
	return statusOf(ctx, status), mustJSON(requestErrorBody{Errors: resp.Errors, Extensions: t.s.withCost(resp.Extensions, opCtx)})
}

// statusOf is the status the GraphQL layer chose for the request
// (markStatus), else def.
func statusOf(ctx context.Context, def int) int {
	if o, ok := ctx.Value(statusKey{}).(*statusOverride); ok {
		if c := o.get(); c != 0 {
			return c
		}
	}
	return def
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("server: encode %T: %v", v, err))
	}
	return b
}

// batch runs a JSON array of operations, one after the other, and answers
// a JSON array of their results in the same order (Apollo's BatchHttpLink
// and similar clients). Each operation counts as one request against the
// key's rate limit and is held to the query limits on its own; a batch
// over MaxBatch is refused whole.
func (t httpTransport) batch(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor, media string, body []byte, start time.Time) {
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		t.badRequest(w, r, "the body is not valid JSON: "+jsonProblem(err))
		return
	}
	max := t.s.limits.MaxBatch
	switch {
	case len(items) == 0:
		t.badRequest(w, r, "the batch is empty: send at least one operation")
		return
	case max < 0:
		writeError(w, r, http.StatusBadRequest, CodeBatchTooLarge, "this server does not accept batched requests: send one operation per request")
		return
	case len(items) > max:
		writeError(w, r, http.StatusBadRequest, CodeBatchTooLarge,
			fmt.Sprintf("the batch holds %d operations; at most %d are allowed", len(items), max))
		return
	}
	// The request itself took one token; each further operation takes one.
	if ai, ok := authFrom(r.Context()); ok {
		for range len(items) - 1 {
			if ok, wait := t.s.keyLimit.allow(ai.key.ID); !ok {
				tooMany(w, r, wait)
				return
			}
		}
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(time.Duration(len(items))*t.s.limits.OperationTimeout + 15*time.Second))
	var out bytes.Buffer
	out.WriteByte('[')
	for i, item := range items {
		if i > 0 {
			out.WriteByte(',')
		}
		// Each operation chooses no status for the batch: a FORBIDDEN
		// refusal of one is an error in its own result. The operations
		// share one response budget: the batch's answer is held whole.
		ctx := context.WithValue(r.Context(), statusKey{}, &statusOverride{})
		ctx = withResponseLimit(ctx, t.s.limits.MaxResponseBytes-int64(out.Len()))
		params, err := postParams(item)
		if err != nil {
			out.Write(mustJSON(requestErrorBody{Errors: gqlerror.List{refusal(CodeBadRequest, "operation %d of the batch: %s", i, err.Error())}}))
			continue
		}
		params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
		params.Headers = r.Header
		_, b, release := t.run(ctx, exec, media, params, false)
		out.Write(b)
		if release != nil {
			release()
		}
	}
	out.WriteString("]\n")
	w.WriteHeader(http.StatusOK)
	w.Write(out.Bytes())
}

// postParams decodes a POST body's request parameters, checking each one's
// type so a malformed request gets a message that names the parameter.
func postParams(body []byte) (*graphql.RawParams, error) {
	fields, ok := splitParams(body)
	if !ok {
		// Not a plain well-formed object: decoding says what is wrong.
		var m map[string]json.RawMessage
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("the body must be a JSON object with a \"query\" (or a JSON array of them): %s", jsonProblem(err))
		}
		if dec.More() {
			return nil, errors.New("the body holds more than one JSON value")
		}
		if m == nil {
			return nil, errors.New("the body must be a JSON object with a \"query\"")
		}
		fields = rawParams{query: m["query"], operationName: m["operationName"], variables: m["variables"], extensions: m["extensions"]}
	}
	p := &graphql.RawParams{}
	if q, ok := registeredText(fields.query); ok {
		p.Query = q // the text of a registered operation, without decoding it
	} else if err := decodeParam(fields.query, "query", &p.Query); err != nil {
		return nil, err
	}
	if err := decodeParam(fields.operationName, "operationName", &p.OperationName); err != nil {
		return nil, err
	}
	if err := decodeParam(fields.variables, "variables", &p.Variables); err != nil {
		return nil, err
	}
	if err := decodeParam(fields.extensions, "extensions", &p.Extensions); err != nil {
		return nil, err
	}
	return p, checkQuery(p)
}

// rawParams are the request parameters of a POST body, undecoded (nil
// when absent).
type rawParams struct {
	query, operationName, variables, extensions json.RawMessage
}

// splitParams splits a well-formed JSON object into its parameters without
// decoding it: one validating pass and one split, where decoding into a
// map scans the body twice and copies every value. It reports false for
// anything but a valid object whose keys hold no escapes; the caller then
// decodes the body to say what is wrong. As decoding does, a repeated key
// keeps its last value and other keys are ignored.
func splitParams(body []byte) (rawParams, bool) {
	var out rawParams
	if !json.Valid(body) {
		return out, false
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return out, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return out, true
	}
	for i < len(body) {
		// A key: valid JSON, so it is a string; one with an escape is left
		// to the decoder.
		end := i + 1
		for end < len(body) && body[end] != '"' {
			if body[end] == '\\' {
				return out, false
			}
			end++
		}
		key := body[i+1 : end]
		i = skipSpace(body, end+1) // at the colon
		start := skipSpace(body, i+1)
		stop := skipValue(body, start)
		raw := json.RawMessage(body[start:stop])
		switch string(key) {
		case "query":
			out.query = raw
		case "operationName":
			out.operationName = raw
		case "variables":
			out.variables = raw
		case "extensions":
			out.extensions = raw
		}
		i = skipSpace(body, stop)
		if i >= len(body) || body[i] == '}' {
			break
		}
		i = skipSpace(body, i+1) // past the comma, at the next key
	}
	return out, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value that starts at i.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			i++
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
			i++
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i // the end of the enclosing object
			}
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// registeredJSON maps the JSON encoding of each registered operation's
// text to the text: the hot operations' documents are a kilobyte of
// escaped JSON, and one comparison of bytes stands for decoding them.
var registeredJSON = func() map[string]string {
	m := map[string]string{}
	for _, q := range registeredOperations {
		b, _ := json.Marshal(q) // a string always encodes
		m[string(b)] = q
	}
	return m
}()

// registeredText returns the operation whose JSON-encoded text raw is.
func registeredText(raw json.RawMessage) (string, bool) {
	q, ok := registeredJSON[string(raw)]
	return q, ok
}

// decodeParam decodes the parameter name, raw, into dst when present and
// not null.
func decodeParam(raw json.RawMessage, name string, dst any) error {
	if raw == nil || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		want := "a JSON object"
		if _, ok := dst.(*string); ok {
			want = "a string"
		}
		return fmt.Errorf("the %q parameter must be %s", name, want)
	}
	return nil
}

// checkQuery refuses a request without a query, unless it names a
// persisted one by hash.
func checkQuery(p *graphql.RawParams) error {
	if strings.TrimSpace(p.Query) == "" && persistedHash(p.Extensions) == "" {
		return errors.New("the \"query\" parameter is missing: send the operation's text (or extensions.persistedQuery.sha256Hash)")
	}
	return nil
}

// getParams reads a GET request's parameters from its query string; the
// variables and extensions are JSON-encoded strings.
func getParams(rawQuery string) (*graphql.RawParams, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errors.New("the query string is malformed")
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	for _, f := range []struct {
		name string
		dst  *map[string]any
	}{{"variables", &p.Variables}, {"extensions", &p.Extensions}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(f.dst); err != nil {
			return nil, fmt.Errorf("the %q parameter must be a JSON-encoded object", f.name)
		}
	}
	return p, checkQuery(p)
}

// jsonProblem is a JSON decoding error's message without Go type names.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s (at byte %d)", syn.Error(), syn.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return "found a JSON " + typ.Value
	}
	return "malformed JSON"
}

// accepted is one media range of an Accept header.
type accepted struct {
	typ, sub string
	q        float64
}

// parseAccept reads an Accept header's media ranges and their weights.
// Entries that do not parse are skipped.
func parseAccept(header string) []accepted {
	var out []accepted
	for _, part := range strings.Split(header, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, params, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		typ, sub, ok := strings.Cut(mt, "/")
		if !ok {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		out = append(out, accepted{typ, sub, q})
		if len(out) == 32 {
			break
		}
	}
	return out
}

// weight is the weight header gives media (0: not acceptable), by the
// most specific range that matches it.
func weight(ranges []accepted, media string) float64 {
	typ, sub, _ := strings.Cut(media, "/")
	best, specificity := 0.0, -1
	for _, a := range ranges {
		s := -1
		switch {
		case a.typ == typ && a.sub == sub:
			s = 2
		case a.typ == typ && a.sub == "*":
			s = 1
		case a.typ == "*" && a.sub == "*":
			s = 0
		}
		if s > specificity {
			best, specificity = a.q, s
		}
	}
	return best
}

// negotiate chooses the media type of a single answer. Without an Accept
// header, or with one that accepts anything, it is application/json, the
// type every client reads; application/graphql-response+json when the
// client names it and weighs it no lower than application/json.
func negotiate(header string) (string, bool) {
	if strings.TrimSpace(header) == "" {
		return mediaJSON, true
	}
	ranges := parseAccept(header)
	gr, js := 0.0, weight(ranges, mediaJSON)
	for _, a := range ranges {
		if a.typ == "application" && a.sub == "graphql-response+json" {
			gr = a.q
		}
	}
	switch {
	case gr > 0 && gr >= js:
		return mediaGraphQLResponse, true
	case js > 0:
		return mediaJSON, true
	}
	return "", false
}

// sseTransport is gqlgen's server-sent events transport, chosen only when
// an event stream is what the client wants: when it accepts no JSON
// answer, or when the operation is a subscription. Clients such as urql
// list text/event-stream in every request's Accept, and a query or
// mutation must still get one JSON answer.
//
// It is the distinct-connections mode of the GraphQL over SSE protocol:
// one POST, one operation, answered by "next" events and a "complete".
// A request that cannot run (a malformed body, a batch, a parse or
// validation error) is answered before the stream starts, as a 400 JSON
// body with a code, like the JSON transport's. A subscription that ends
// for a reason (its interaction erased, the client too slow) says so in a
// last "next" event carrying only errors, as a WebSocket's error message
// does.
type sseTransport struct {
	s         *Server
	maxTokens int
}

// Supports implements graphql.Transport.
func (t sseTransport) Supports(r *http.Request) bool {
	// Every request asks: the cheap tests first.
	if r.Method != http.MethodPost || !strings.Contains(r.Header.Get("Accept"), mediaEventStream) {
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaJSON {
		return false
	}
	ranges := parseAccept(r.Header.Get("Accept"))
	if weight(ranges, mediaEventStream) == 0 {
		return false
	}
	if _, ok := negotiate(r.Header.Get("Accept")); !ok {
		return true // only the event stream is acceptable
	}
	return isSubscription(r, t.maxTokens)
}

// Do implements graphql.Transport.
func (t sseTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	start := graphql.Now()
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, r, http.StatusInternalServerError, CodeInternal, "this connection cannot stream events")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, CodeBadRequest, "could not read the request body")
		return
	}
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) > 0 && body[0] == '[' {
		writeError(w, r, http.StatusBadRequest, CodeBadRequest,
			"an event stream carries one operation: send a batch (a JSON array) with Accept: application/json")
		return
	}
	params, err := postParams(body)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	params.Headers = r.Header
	opCtx, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		if opCtx != nil {
			ctx = graphql.WithOperationContext(ctx, opCtx)
		}
		resp := exec.DispatchError(ctx, errs)
		w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
		w.WriteHeader(statusOf(ctx, http.StatusBadRequest))
		w.Write(append(mustJSON(requestErrorBody{Errors: resp.Errors, Extensions: t.s.withCost(resp.Extensions, opCtx)}), '\n'))
		return
	}
	ctx = graphql.WithOperationContext(ctx, opCtx)
	ctx, ended := resolvers.WithEndErrors(ctx)
	w.Header().Set("Content-Type", mediaEventStream)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ":\n\n")
	flusher.Flush()
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			t.s.log.ErrorContext(ctx, "could not encode an event", "request_id", RequestID(ctx), "err", err)
			b = mustJSON(requestErrorBody{Errors: gqlerror.List{refusal(CodeInternal, "internal server error (request id %s)", RequestID(ctx))}})
		}
		if _, err := fmt.Fprintf(w, "event: next\ndata: %s\n\n", b); err != nil {
			return false // the client has gone
		}
		flusher.Flush()
		return true
	}
	responses, ctx := exec.DispatchOperation(ctx, opCtx)
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		var v any = resp
		if resp.Data == nil {
			v = requestErrorBody{Errors: resp.Errors, Extensions: resp.Extensions} // no "data" entry
		}
		if !send(v) {
			return
		}
	}
	errs = ended()
	if errors.Is(context.Cause(r.Context()), errKeyRevoked) {
		errs = append(errs, refusal(CodeUnauthenticated, "the API key was revoked: sign in with another key"))
	}
	if len(errs) > 0 && !send(requestErrorBody{Errors: errs}) {
		return
	}
	io.WriteString(w, "event: complete\ndata:\n\n")
	flusher.Flush()
}

// isSubscription reports whether a POST body's operation is a
// subscription. It reads the body (already bounded and held in memory by
// limitBody) and puts it back.
func isSubscription(r *http.Request, maxTokens int) bool {
	if r.Body == nil {
		return false
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return false
	}
	var p struct {
		Query         string `json:"query"`
		OperationName string `json:"operationName"`
	}
	if json.Unmarshal(body, &p) != nil {
		return false
	}
	return operationOf(p.Query, p.OperationName, maxTokens) == ast.Subscription
}

// operationOf is the type of the operation query's document runs for
// operationName, or "" when the document does not parse or holds no such
// operation.
func operationOf(query, operationName string, maxTokens int) ast.Operation {
	if query == "" {
		return ""
	}
	doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, maxTokens)
	if err != nil {
		return ""
	}
	var op *ast.OperationDefinition
	if operationName == "" && len(doc.Operations) == 1 {
		op = doc.Operations[0]
	} else {
		op = doc.Operations.ForName(operationName)
	}
	if op == nil {
		return ""
	}
	return op.Operation
}
