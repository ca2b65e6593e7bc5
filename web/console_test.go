package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/relatedhq/related/web"
)

// consoleMux mounts the console the way the server does.
func consoleMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", web.Console())
	mux.Handle(web.ConsolePrefix+"/", web.Console())
	return mux
}

func TestConsolePage(t *testing.T) {
	for _, target := range []string{"/", "/?interaction=SW50ZXJhY3Rpb246eA"} {
		resp := get(t, consoleMux(), http.MethodGet, target, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", target, resp.StatusCode)
		}
		h := resp.Header
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		if cc := h.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control = %q", cc)
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self' ws: wss:", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") {
			t.Errorf("CSP allows unsafe sources: %q", csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" {
			t.Errorf("headers: %v", h)
		}
	}
}

// TestConsoleAssets follows every asset the page references: each is served
// with its type, cacheable for a year under its versioned URL, and nothing
// refers to another host.
func TestConsoleAssets(t *testing.T) {
	mux := consoleMux()
	html := string(body(t, get(t, mux, http.MethodGet, "/", nil)))
	if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+`).FindAllString(html, -1); len(m) > 0 {
		t.Errorf("index.html refers to other hosts: %q", m)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/console/[^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) != 2 {
		t.Fatalf("want the script and the stylesheet, found %q", refs)
	}
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
	total := len(gzipped(t, []byte(html)))
	for _, ref := range refs {
		u := ref[1]
		resp := get(t, mux, http.MethodGet, u, http.Header{"Accept-Encoding": {"gzip"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", u, resp.StatusCode)
		}
		p, _, _ := strings.Cut(u, "?")
		ext := path.Ext(p)
		if ct := resp.Header.Get("Content-Type"); ct != types[ext] {
			t.Errorf("%s: Content-Type = %q", u, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control = %q", u, cc)
		}
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: not gzipped", u)
		}
		b := body(t, resp)
		total += len(b)
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if m := regexp.MustCompile(`(?i)https?://[a-z0-9-]+\.[a-z0-9.-]+`).FindAllString(string(plain), -1); len(m) > 0 && ext == ".css" {
			t.Errorf("%s refers to other hosts: %q", u, m)
		}
		etag := resp.Header.Get("ETag")
		again := get(t, mux, http.MethodGet, u, http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {etag}})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("%s: If-None-Match: status %d", u, again.StatusCode)
		}
	}
	// The budget: the whole page under 200 KB gzipped.
	if total > 200*1024 {
		t.Errorf("the console is %d bytes gzipped, over 200 KB", total)
	}
	t.Logf("the console loads %d bytes gzipped", total)
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestConsoleNotFoundAndMethods(t *testing.T) {
	mux := consoleMux()
	tests := []struct {
		method, target string
		want           int
	}{
		{http.MethodGet, "/console/", http.StatusNotFound},
		{http.MethodGet, "/console/index.html", http.StatusNotFound},
		{http.MethodGet, "/console/nope.js", http.StatusNotFound},
		{http.MethodGet, "/console/licenses.txt", http.StatusOK},
		{http.MethodHead, "/", http.StatusOK},
		{http.MethodPost, "/console/console.js", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			if resp := get(t, mux, tt.method, tt.target, nil); resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	// Called directly, the handler refuses paths that are not its own.
	for _, target := range []string{"/graphiql", "/x", "/consolex/console.js", "/console/../web.go", "/console//console.js"} {
		if resp := get(t, web.Console(), http.MethodGet, target, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("direct %s: status %d, want 404", target, resp.StatusCode)
		}
	}
}
