package web_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/relatedhq/related/web"
)

// newMux mounts the handler the way the server does.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/graphiql", web.GraphiQL())
	mux.Handle("/graphiql/", web.GraphiQL())
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "graphql endpoint", http.StatusTeapot)
	})
	return mux
}

func get(t *testing.T, mux http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func indexHTML(t *testing.T) string {
	t.Helper()
	resp := get(t, newMux(), http.MethodGet, "/graphiql/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /graphiql/: status %d", resp.StatusCode)
	}
	return string(body(t, resp))
}

func TestIndex(t *testing.T) {
	mux := newMux()
	for _, target := range []string{"/graphiql", "/graphiql/", "/graphiql/index.html", "/graphiql?x=1"} {
		t.Run(target, func(t *testing.T) {
			resp := get(t, mux, http.MethodGet, target, nil)
			b := body(t, resp)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			for k, want := range map[string]string{
				"Content-Type":           "text/html; charset=utf-8",
				"Cache-Control":          "no-cache",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("Content-Security-Policy = %q, want script-src 'self'", csp)
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if !bytes.Contains(b, []byte(`<div id="graphiql">`)) || !bytes.Contains(b, []byte("<!doctype html>")) {
				t.Errorf("body is not the GraphiQL page:\n%s", b)
			}
		})
	}
}

var attrRE = regexp.MustCompile(`\s(?:src|href)="([^"]*)"`)

// TestIndexAssets fetches every asset index.html references, and every font
// the stylesheet references, checking status, type, caching and that the
// ?v= cache buster matches the content.
func TestIndexAssets(t *testing.T) {
	mux := newMux()
	html := indexHTML(t)
	refs := attrRE.FindAllStringSubmatch(html, -1)
	var fetched []string
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		fetched = append(fetched, ref)
		t.Run(ref, func(t *testing.T) {
			u, err := url.Parse(ref)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/graphiql/") {
				t.Fatalf("reference %q is not an absolute path under /graphiql/ (needed for both /graphiql and /graphiql/)", ref)
			}
			resp := get(t, mux, http.MethodGet, ref, nil)
			b := body(t, resp)
			if resp.StatusCode != http.StatusOK || len(b) == 0 {
				t.Fatalf("status %d, %d bytes", resp.StatusCode, len(b))
			}
			wantType := map[string]string{
				".js":  "text/javascript; charset=utf-8",
				".css": "text/css; charset=utf-8",
			}[path.Ext(u.Path)]
			if wantType == "" {
				t.Fatalf("unexpected asset type %q", ref)
			}
			if got := resp.Header.Get("Content-Type"); got != wantType {
				t.Errorf("Content-Type = %q, want %q", got, wantType)
			}
			sum := sha256.Sum256(b)
			if v := u.Query().Get("v"); v != hex.EncodeToString(sum[:6]) {
				t.Errorf("?v=%s does not match the content (%x); rebuild with web/build.sh", v, sum[:6])
			}
			if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "max-age=31536000") {
				t.Errorf("Cache-Control = %q, want long-lived caching for a versioned URL", got)
			}
			if path.Ext(u.Path) == ".css" {
				checkStylesheet(t, mux, u, b)
			}
		})
	}
	for _, want := range []string{"/graphiql/graphiql.js", "/graphiql/graphiql.css"} {
		found := false
		for _, ref := range fetched {
			found = found || strings.HasPrefix(ref, want+"?") || ref == want
		}
		if !found {
			t.Errorf("index.html does not reference %s (references: %q)", want, fetched)
		}
	}
}

var cssURLRE = regexp.MustCompile(`url\(\s*["']?([^"')]+)["']?\s*\)|@import`)

func checkStylesheet(t *testing.T, mux http.Handler, base *url.URL, css []byte) {
	fonts := 0
	for _, m := range cssURLRE.FindAllSubmatch(css, -1) {
		if m[1] == nil {
			t.Errorf("stylesheet uses @import")
			continue
		}
		ref := string(m[1])
		if strings.HasPrefix(ref, "data:") {
			continue
		}
		u, err := base.Parse(ref)
		if err != nil {
			t.Errorf("bad url(%s): %v", ref, err)
			continue
		}
		if u.Host != "" || !strings.HasPrefix(u.Path, "/graphiql/") {
			t.Errorf("stylesheet refers off-site: url(%s)", ref)
			continue
		}
		resp := get(t, mux, http.MethodGet, u.RequestURI(), nil)
		b := body(t, resp)
		want := map[string]string{".woff2": "font/woff2", ".woff": "font/woff"}[path.Ext(u.Path)]
		if resp.StatusCode != http.StatusOK || len(b) == 0 || want == "" || resp.Header.Get("Content-Type") != want {
			t.Errorf("url(%s) -> %s: status %d, %d bytes, Content-Type %q", ref, u.Path, resp.StatusCode, len(b), resp.Header.Get("Content-Type"))
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("url(%s): Cache-Control = %q, want immutable", ref, cc)
		}
		fonts++
	}
	if fonts == 0 {
		t.Error("stylesheet references no font files")
	}
}

// TestIndexNoExternalURLs checks the page loads nothing from another host.
func TestIndexNoExternalURLs(t *testing.T) {
	html := indexHTML(t)
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`).FindAllString(html, -1); len(m) > 0 {
		t.Errorf("index.html refers to other hosts: %q", m)
	}
	if !strings.Contains(html, `src="/graphiql/graphiql.js`) {
		t.Error("index.html does not load /graphiql/graphiql.js")
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	mux := newMux()
	tests := []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, "/graphiql/no-such-asset.js", http.StatusNotFound},
		{http.MethodGet, "/graphiql/fonts", http.StatusNotFound},
		{http.MethodGet, "/graphiql/fonts/", http.StatusNotFound},
		{http.MethodGet, "/graphiql/graphiql.js/", http.StatusNotFound},
		{http.MethodPost, "/graphiql/", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/graphiql/graphiql.js", http.StatusMethodNotAllowed},
		{http.MethodHead, "/graphiql", http.StatusOK},
		{http.MethodGet, "/graphiql/licenses.txt", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			resp := get(t, mux, tt.method, tt.target, nil)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
		})
	}

	// Called directly, the handler also refuses paths outside its prefix.
	for _, target := range []string{"/", "/graphql", "/graphiqlx", "/graphiql/../web.go", "/graphiql//graphiql.js", "/static/graphiql.js"} {
		t.Run("direct "+target, func(t *testing.T) {
			resp := get(t, web.GraphiQL(), http.MethodGet, target, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404", resp.StatusCode)
			}
		})
	}
}

func TestCompressionAndRevalidation(t *testing.T) {
	mux := newMux()
	plain := get(t, mux, http.MethodGet, "/graphiql/graphiql.js", nil)
	plainBody := body(t, plain)
	if plain.Header.Get("Content-Encoding") != "" {
		t.Fatalf("Content-Encoding %q without Accept-Encoding", plain.Header.Get("Content-Encoding"))
	}
	if cc := plain.Header.Get("Cache-Control"); cc != "public, max-age=3600" {
		t.Errorf("unversioned asset: Cache-Control = %q", cc)
	}

	tests := []struct {
		acceptEncoding string
		gzip           bool
	}{
		{"gzip", true},
		{"br, gzip;q=0.5, deflate", true},
		{"gzip;q=0", false},
		{"identity", false},
	}
	for _, tt := range tests {
		t.Run(tt.acceptEncoding, func(t *testing.T) {
			resp := get(t, mux, http.MethodGet, "/graphiql/graphiql.js", http.Header{"Accept-Encoding": {tt.acceptEncoding}})
			b := body(t, resp)
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tt.gzip {
				t.Fatalf("gzip = %v, want %v", got, tt.gzip)
			}
			if !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Error("no Vary: Accept-Encoding")
			}
			if tt.gzip {
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if b, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(b, plainBody) {
				t.Error("decoded body differs from the identity body")
			}
			etag := resp.Header.Get("ETag")
			again := get(t, mux, http.MethodGet, "/graphiql/graphiql.js", http.Header{
				"Accept-Encoding": {tt.acceptEncoding},
				"If-None-Match":   {etag},
			})
			if etag == "" || again.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status %d, want 304", etag, again.StatusCode)
			}
		})
	}
}
