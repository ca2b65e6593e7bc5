package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// DevCORSOrigins are the origins a development server answers cross-origin
// requests from when none are configured: any port of the local machine, so
// a frontend's own dev server (Vite on :5173, Next.js on :3000, ...) calls
// /graphql without a proxy.
var DevCORSOrigins = []string{"http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*", "https://localhost:*"}

// corsAllowMethods are the methods GraphQL over HTTP uses.
const corsAllowMethods = "GET, POST, OPTIONS"

// corsExposeHeaders are the response headers a cross-origin page may read
// besides the CORS-safelisted ones: the request id to quote in a report,
// and Retry-After on a 429.
const corsExposeHeaders = "X-Request-Id, Retry-After, WWW-Authenticate"

// corsMaxAge is how long a browser may reuse a preflight's answer, in
// seconds (Chromium caps it at 7200).
const corsMaxAge = "7200"

// Bounds on a preflight's Access-Control-Request-Headers, which is echoed.
const (
	maxPreflightHeaders      = 64
	maxPreflightHeadersBytes = 2048
)

// cors is the cross-origin policy of /graphql: which pages of other
// origins may call the API from a browser.
type cors struct {
	any      bool            // "*": every origin, never with credentials
	exact    map[string]bool // normalized scheme://host[:port]
	patterns []originPattern // *.example.com and port wildcards
}

// originPattern is an origin with a wildcard: a host suffix (the "*."
// of *.example.com stands for one or more labels) or any port.
type originPattern struct {
	scheme   string
	host     string // the whole host, or the suffix after "*" (".example.com")
	wildHost bool
	port     string // "" (the scheme's default), a number, or "*"
}

// CheckCORSOrigins reports the first entry of origins that is not a valid
// CORS origin entry, for a clear startup error.
func CheckCORSOrigins(origins []string) error {
	_, err := newCORS(origins)
	return err
}

// newCORS parses origin entries: "*" (any origin), an origin such as
// "https://app.example.com" or "http://localhost:3000", or a pattern such
// as "https://*.example.com" or "http://localhost:*". An entry without a
// scheme means https.
func newCORS(origins []string) (*cors, error) {
	c := &cors{exact: map[string]bool{}}
	for _, raw := range origins {
		o := strings.ToLower(strings.TrimSpace(raw))
		if o == "" {
			continue
		}
		if o == "*" {
			c.any = true
			continue
		}
		p, err := parseOriginEntry(o)
		if err != nil {
			return nil, fmt.Errorf("CORS origin %q: %w", raw, err)
		}
		if !p.wildHost && p.port != "*" {
			c.exact[p.origin()] = true
			continue
		}
		c.patterns = append(c.patterns, p)
	}
	return c, nil
}

func parseOriginEntry(o string) (originPattern, error) {
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok {
		scheme, rest = "https", o
	}
	if scheme != "http" && scheme != "https" {
		return originPattern{}, fmt.Errorf("the scheme must be http or https")
	}
	if rest == "" || strings.ContainsAny(rest, "/?#@ ") {
		return originPattern{}, fmt.Errorf("want scheme://host[:port], without a path")
	}
	host, port := rest, ""
	if h, p, err := net.SplitHostPort(rest); err == nil {
		host, port = h, p
		if port != "*" && !isPort(port) {
			return originPattern{}, fmt.Errorf("bad port %q", port)
		}
	} else if strings.HasPrefix(rest, "[") {
		host = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]")
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	p := originPattern{scheme: scheme, host: host, port: port}
	if strings.HasPrefix(host, "*.") {
		p.wildHost, p.host = true, host[1:]
	}
	if p.host == "" || strings.Contains(p.host, "*") {
		return originPattern{}, fmt.Errorf("a host wildcard goes only at the start, as in *.example.com")
	}
	return p, nil
}

func isPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func defaultPort(scheme string) string {
	if scheme == "http" {
		return "80"
	}
	return "443"
}

// origin serializes an exact pattern as a browser sends it in Origin.
func (p originPattern) origin() string {
	host := p.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p.port == "" {
		return p.scheme + "://" + host
	}
	return p.scheme + "://" + host + ":" + p.port
}

// allows reports whether a page of origin (the Origin header's value) may
// call the API.
func (c *cors) allows(origin string) bool {
	if origin == "" {
		return false
	}
	if c.any {
		return true
	}
	o, ok := parseRequestOrigin(origin)
	if !ok {
		return false
	}
	if c.exact[o.origin()] {
		return true
	}
	for _, p := range c.patterns {
		if p.scheme != o.scheme || (p.port != "*" && p.port != o.port) {
			continue
		}
		if p.wildHost {
			// One or more labels before the suffix; not the bare domain.
			if strings.HasSuffix(o.host, p.host) && len(o.host) > len(p.host) {
				return true
			}
		} else if p.host == o.host {
			return true
		}
	}
	return false
}

// parseRequestOrigin reads an Origin header: scheme://host[:port], no path.
func parseRequestOrigin(origin string) (originPattern, bool) {
	if len(origin) > 512 {
		return originPattern{}, false
	}
	u, err := url.Parse(strings.ToLower(origin))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return originPattern{}, false
	}
	p := originPattern{scheme: u.Scheme, host: u.Hostname(), port: u.Port()}
	if p.port == defaultPort(p.scheme) {
		p.port = ""
	}
	return p, true
}

// cors answers CORS preflights and marks the responses a page of an
// allowed origin may read. A request from an origin not allowed is served
// as before, without CORS headers, so the browser keeps its response from
// the page; its preflight is refused with 403. A WebSocket upgrade from an
// allowed origin passes the WebSocket origin check (checkOrigin) too: a
// page that may call the API may also subscribe.
func (s *Server) cors(next http.Handler) http.Handler {
	c := s.corsPolicy
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := c.allows(origin)
		h := w.Header()
		if !c.any {
			h.Add("Vary", "Origin")
		}
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				writeError(w, r, http.StatusForbidden, CodeForbidden, "cross-origin requests from "+origin+" are not allowed: list the origin in --cors-origins")
				return
			}
			reqHeaders, ok := preflightHeaders(r.Header.Values("Access-Control-Request-Headers"))
			if !ok {
				writeError(w, r, http.StatusBadRequest, CodeBadRequest, "Access-Control-Request-Headers is malformed or too long")
				return
			}
			c.allowOrigin(h, origin)
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			if reqHeaders != "" {
				// Echoed: the server trusts no request header but
				// Authorization, so any header a client library adds
				// (apollo-require-preflight, x-apollo-operation-name,
				// traceparent, ...) may come along.
				h.Set("Access-Control-Allow-Headers", reqHeaders)
			}
			if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
				h.Set("Access-Control-Allow-Private-Network", "true")
			}
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			c.allowOrigin(h, origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			if isWebSocket(r) && !sameOrigin(r, origin) {
				r = r.Clone(r.Context())
				r.Header.Del("Origin") // checkOrigin passes requests without Origin
			}
		}
		next.ServeHTTP(w, r)
	})
}

// allowOrigin sets the headers that let the page of origin read the
// response. "*" is sent as is and never with credentials: the Fetch
// standard forbids that pairing, and reflecting the origin instead would
// give every site the credentials of the page's user.
func (c *cors) allowOrigin(h http.Header, origin string) {
	if c.any {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
}

func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// preflightHeaders validates the header names a preflight asks for and
// returns them as one list: tokens only, bounded in count and bytes.
func preflightHeaders(values []string) (string, bool) {
	var names []string
	size := 0
	for _, v := range values {
		size += len(v)
		if size > maxPreflightHeadersBytes {
			return "", false
		}
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if !isToken(name) || len(names) == maxPreflightHeaders {
				return "", false
			}
			names = append(names, strings.ToLower(name))
		}
	}
	return strings.Join(names, ", "), true
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}
