package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// limitBody reads the request body before gqlgen does: it refuses one over
// MaxBodyBytes with 413 (reading at most one byte more than the limit,
// whatever the client sends or claims in Content-Length), one that takes
// longer than BodyTimeout to arrive with 408, and one whose text is not
// Unicode with 400 (checkJSONText). GET requests have their parameters
// checked the same way.
func (s *Server) limitBody(next http.Handler) http.Handler {
	max := s.limits.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocket(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodGet {
			if p := checkQueryParams(r.URL.RawQuery); p != nil {
				writeGraphQLError(w, r, http.StatusBadRequest, textRefusal(p))
				return
			}
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			tooLarge(w, r, max)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		if err != nil {
			w.Header().Set("Connection", "close")
			if errors.Is(err, os.ErrDeadlineExceeded) {
				writeError(w, r, http.StatusRequestTimeout, CodeRequestTimeout,
					fmt.Sprintf("the request body took longer than %v to arrive", s.limits.BodyTimeout))
				return
			}
			writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "could not read the request body")
			return
		}
		if int64(len(b)) > max {
			tooLarge(w, r, max)
			return
		}
		if p := checkJSONText(b); p != nil {
			writeGraphQLError(w, r, http.StatusBadRequest, textRefusal(p))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		next.ServeHTTP(w, r)
	})
}

// checkQueryParams checks the text of a GET request's GraphQL parameters:
// the query and operation name as text, variables and extensions as JSON.
func checkQueryParams(rawQuery string) *textProblem {
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil // the transport answers it
	}
	for _, name := range []string{"query", "operationName"} {
		for _, v := range params[name] {
			if p := decodedTextProblem(v); p != "" {
				return &textProblem{path: []string{name}, problem: p}
			}
		}
	}
	for _, name := range []string{"variables", "extensions"} {
		for _, v := range params[name] {
			if p := checkJSONText([]byte(v)); p != nil {
				p.path = append([]string{name}, p.path...)
				return p
			}
		}
	}
	return nil
}

func tooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	w.Header().Set("Connection", "close") // the rest of the body is not read
	writeError(w, r, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the request body is over %d bytes", max))
}

// isEventStream reports whether r asks for a server-sent event stream.
func isEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// deadlines bounds the time a request may take to send its body (issue 13:
// a body trickling in a byte every two seconds held its connection for
// ever) and a plain request the time to receive its answer, so a slow
// client cannot hold a connection. It runs before anything reads from the
// client. The http.Server's own timeouts cannot do it: they would also cut
// WebSockets and event streams, which live long by design (an event
// stream's read deadline is lifted once its body is in: streams).
func (s *Server) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isWebSocket(r) {
			rc := http.NewResponseController(w)
			now := time.Now()
			// Errors mean the writer cannot set deadlines (a test
			// recorder); the operation timeout still applies.
			_ = rc.SetReadDeadline(now.Add(s.limits.BodyTimeout))
			if !isEventStream(r) {
				_ = rc.SetWriteDeadline(now.Add(s.limits.BodyTimeout + s.limits.OperationTimeout + 5*time.Second))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// statusOverride lets the GraphQL layer replace the status gqlgen writes
// (markStatus), so a FORBIDDEN refusal is a 403 rather than a 200.
func (s *Server) statusOverride(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := &statusOverride{}
		next.ServeHTTP(&overrideWriter{ResponseWriter: w, o: o}, r.WithContext(context.WithValue(r.Context(), statusKey{}, o)))
	})
}

type overrideWriter struct {
	http.ResponseWriter
	o     *statusOverride
	wrote bool
}

func (w *overrideWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if c, h := w.o.status(); c != 0 {
		if code < 300 {
			code = c
		}
		for k, v := range h {
			w.Header()[k] = v
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *overrideWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *overrideWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying writer.
func (w *overrideWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// noKeys is the key store of a server given none: it knows no key.
type noKeys struct{}

func (noKeys) CreateKey(context.Context, *store.Key) error { return fmt.Errorf("server: no key store") }
func (noKeys) KeyByHash(context.Context, []byte) (*store.Key, error) {
	return nil, related.NotFound("no such key")
}
func (noKeys) ListKeys(context.Context, string) ([]*store.Key, error) { return nil, nil }
func (noKeys) RevokeKey(context.Context, string, string, time.Time) (*store.Key, error) {
	return nil, related.NotFound("no such key")
}
func (noKeys) TouchKey(context.Context, string, string, time.Time) error { return nil }

// checkOrigin refuses a WebSocket upgrade from a page of another origin
// (403) unless AllowedOrigins lists it: a browser sends its cookies and
// reaches internal hosts, so another site's page must not open sockets
// through it. Requests without Origin come from non-browser clients and
// pass. The WebSocket library checks same-origin itself too; for an origin
// allowed here the header is dropped so its check agrees.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !isWebSocket(r) || origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		u, err := url.Parse(origin)
		if err == nil && strings.EqualFold(u.Host, r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		if err == nil && u.Host != "" {
			for _, p := range s.opts.AllowedOrigins {
				if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok || strings.EqualFold(p, origin) {
					r = r.Clone(r.Context())
					r.Header.Del("Origin")
					next.ServeHTTP(w, r)
					return
				}
			}
		}
		writeError(w, r, http.StatusForbidden, CodeForbidden, "WebSocket connections from this origin are not allowed")
	})
}
