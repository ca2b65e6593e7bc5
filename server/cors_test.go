package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/relatedhq/related/server"
)

// rawResult is an HTTP answer as a test reads it.
type rawResult struct {
	status int
	header http.Header
	body   string
}

// raw sends one HTTP request to the gateway with exactly the headers given.
func (g *gateway) raw(method, path string, header map[string]string, body string) rawResult {
	g.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url+path, rd)
	if err != nil {
		g.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResult{resp.StatusCode, resp.Header, string(b)}
}

// apolloPreflightHeaders are the request headers Apollo Client, urql and
// the GraphQL Code Generator's fetchers send cross-origin.
const apolloPreflightHeaders = "content-type, authorization, apollo-require-preflight, x-apollo-operation-name, apollographql-client-name, traceparent"

func TestCORS(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{
		Limits:      server.Limits{RatePerSecond: -1},
		CORSOrigins: []string{"https://app.example.com", "*.example.org", "http://localhost:*", "http://127.0.0.1:5173"},
	})
	for _, c := range []struct {
		origin  string
		allowed bool
	}{
		{"https://app.example.com", true},
		{"https://APP.example.com:443", true}, // the default port is the same origin
		{"http://app.example.com", false},     // another scheme is another origin
		{"https://app.example.com:8443", false},
		{"https://evil.example.com", false},
		{"https://app.example.com.evil.net", false},
		{"https://a.example.org", true}, // *.example.org: https by default
		{"https://a.b.example.org", true},
		{"https://example.org", false}, // the bare domain is not a subdomain
		{"https://evilexample.org", false},
		{"http://a.example.org", false},
		{"http://localhost:5173", true},
		{"http://localhost:3000", true},
		{"http://localhost.evil.net:3000", false},
		{"http://127.0.0.1:5173", true},
		{"http://127.0.0.1:5174", false},
		{"null", false},
		{"https://app.example.com/path", false},
	} {
		t.Run(c.origin, func(t *testing.T) {
			pre := g.raw("OPTIONS", "/graphql", map[string]string{
				"Origin":                         c.origin,
				"Access-Control-Request-Method":  "POST",
				"Access-Control-Request-Headers": apolloPreflightHeaders,
			}, "")
			post := g.raw("POST", "/graphql", map[string]string{
				"Origin": c.origin, "Content-Type": "application/json", "Authorization": "Bearer " + g.key,
			}, `{"query":"{ viewer { tenant } }"}`)
			if post.status != 200 || !strings.Contains(post.body, `"tenant":"demo"`) {
				t.Fatalf("POST: %d %s (a disallowed origin is still served: the browser withholds the answer)", post.status, post.body)
			}
			if !strings.Contains(strings.Join(post.header.Values("Vary"), ","), "Origin") {
				t.Fatalf("POST: Vary %q lacks Origin", post.header.Values("Vary"))
			}
			if !c.allowed {
				if pre.status != http.StatusForbidden || pre.header.Get("Access-Control-Allow-Origin") != "" {
					t.Fatalf("preflight: %d, Allow-Origin %q; want 403 without", pre.status, pre.header.Get("Access-Control-Allow-Origin"))
				}
				if v := post.header.Get("Access-Control-Allow-Origin"); v != "" {
					t.Fatalf("POST: Allow-Origin %q for a disallowed origin", v)
				}
				return
			}
			if pre.status != http.StatusNoContent {
				t.Fatalf("preflight: status %d %s", pre.status, pre.body)
			}
			for h, want := range map[string]string{
				"Access-Control-Allow-Origin":      c.origin,
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Headers":     apolloPreflightHeaders,
				"Access-Control-Max-Age":           "7200",
			} {
				if got := pre.header.Get(h); got != want {
					t.Errorf("preflight %s = %q, want %q", h, got, want)
				}
			}
			if m := pre.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "GET") {
				t.Errorf("preflight Allow-Methods %q", m)
			}
			if got := post.header.Get("Access-Control-Allow-Origin"); got != c.origin {
				t.Errorf("POST Allow-Origin %q", got)
			}
			if got := post.header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Request-Id") {
				t.Errorf("POST Expose-Headers %q", got)
			}
		})
	}
	t.Run("refusals are readable", func(t *testing.T) {
		// A page must be able to read a 401 to tell its user the key is
		// wrong.
		r := g.raw("POST", "/graphql", map[string]string{"Origin": "http://localhost:5173", "Content-Type": "application/json"}, `{"query":"{ viewer { tenant } }"}`)
		if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
			t.Fatalf("%d, Allow-Origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("malformed preflight headers", func(t *testing.T) {
		r := g.raw("OPTIONS", "/graphql", map[string]string{
			"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type, bad header",
		}, "")
		if r.status != 400 || !strings.Contains(r.body, server.CodeBadRequest) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("websocket from an allowed origin", func(t *testing.T) {
		wsURL := "ws" + strings.TrimPrefix(g.url, "http") + "/graphql"
		for origin, ok := range map[string]bool{"http://localhost:5173": true, "https://evil.example.com": false} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: http.Header{"Origin": {origin}}})
			cancel()
			if (err == nil) != ok {
				t.Fatalf("origin %s: dial error %v, want allowed=%v", origin, err, ok)
			}
			if c != nil {
				c.CloseNow()
			}
		}
	})
}

func TestCORSAnyOrigin(t *testing.T) {
	g := newGatewayWith(t, backends[0], server.Options{Limits: server.Limits{RatePerSecond: -1}, CORSOrigins: []string{"*"}})
	pre := g.raw("OPTIONS", "/graphql", map[string]string{
		"Origin": "https://anywhere.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization",
	}, "")
	if pre.status != 204 || pre.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight %d, Allow-Origin %q", pre.status, pre.header.Get("Access-Control-Allow-Origin"))
	}
	post := g.raw("POST", "/graphql", map[string]string{"Origin": "https://anywhere.example", "Content-Type": "application/json", "Authorization": "Bearer " + g.key}, `{"query":"{ viewer { tenant } }"}`)
	for _, r := range []rawResult{pre, post} {
		if r.header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("Allow-Origin %q, want * (never the reflected origin)", r.header.Get("Access-Control-Allow-Origin"))
		}
		if v := r.header.Get("Access-Control-Allow-Credentials"); v != "" {
			t.Fatalf("Allow-Credentials %q with *", v)
		}
	}
}

func TestCORSDefaultIsSameOrigin(t *testing.T) {
	g := newGateway(t, backends[0])
	pre := g.raw("OPTIONS", "/graphql", map[string]string{"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"}, "")
	if pre.status != 403 || pre.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("a server given no CORS origins answered a preflight: %d %v", pre.status, pre.header)
	}
}

func TestCheckCORSOrigins(t *testing.T) {
	for entry, ok := range map[string]bool{
		"https://app.example.com":      true,
		"http://localhost:*":           true,
		"*.example.com":                true,
		"https://*.example.com:8443":   true,
		"http://[::1]:*":               true,
		"*":                            true,
		"ftp://app.example.com":        false,
		"https://app.example.com/path": false,
		"https://a.*.example.com":      false,
		"https://app.example.com:99x":  false,
		"https://":                     false,
	} {
		if err := server.CheckCORSOrigins([]string{entry}); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", entry, err, ok)
		}
	}
}
