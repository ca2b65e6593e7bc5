// Package web serves the gateway's in-browser GraphQL IDE, GraphiQL, at
// /graphiql.
//
// The page is a static bundle (index.html, graphiql.js, graphiql.css and the
// fonts under fonts/) that is built ahead of time and committed under
// web/graphiql/, then compiled into the binary with go:embed. Embedding keeps
// the gateway a single self-contained executable: the page works offline and
// in air-gapped deployments, always matches the server it ships with, and
// never pulls code from a CDN into a page where users paste API keys. The page
// only talks to its own origin: it POSTs to /graphql and opens subscriptions
// over WebSocket (graphql-transport-ws) at ws(s)://<same host>/graphql, sending
// the contents of GraphiQL's Headers tab as HTTP headers and as the
// connection_init payload respectively.
//
// The bundle's sources live in web/graphiql-src (a small npm project with
// exact versions pinned in package.json and package-lock.json). After changing
// them, rebuild and commit the output with:
//
//	bash web/build.sh
//
// which needs Node.js 20 or later and access to the npm registry, and is
// deterministic: rebuilding an unchanged tree produces identical files. The Go
// build itself needs neither Node.js nor the network.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Prefix is the URL path GraphiQL is served under. The handler returned by
// GraphiQL expects request paths that still carry it, as routed by
//
//	mux.Handle(web.Prefix, web.GraphiQL())
//	mux.Handle(web.Prefix+"/", web.GraphiQL())
const Prefix = "/graphiql"

//go:embed graphiql
var embedded embed.FS

// contentSecurityPolicy is sent with index.html. GraphiQL needs inline styles
// (CodeMirror and its popups set them at run time), nothing else inline, and
// it connects only to its own origin (HTTP and WebSocket; ws:/wss: are listed
// because not every browser lets 'self' match WebSocket URLs).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; " +
	"style-src 'self' 'unsafe-inline'; font-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const (
	cacheIndex     = "no-cache"
	cacheVersioned = "public, max-age=31536000, immutable"
	cacheDefault   = "public, max-age=3600"
)

// contentTypes pins the types of the files the bundle consists of, so that
// they do not depend on the host's mime.types; anything else falls back to
// mime.TypeByExtension.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".txt":   "text/plain; charset=utf-8",
	".woff2": "font/woff2",
	".woff":  "font/woff",
}

// compressible lists the extensions served gzip-compressed to clients that
// accept it (fonts are compressed already).
var compressible = map[string]bool{".html": true, ".js": true, ".css": true, ".txt": true}

// asset is one embedded file.
type asset struct {
	name        string // path relative to the graphiql directory, e.g. "fonts/x.woff2"
	content     []byte
	contentType string
	version     string // first 12 hex digits of the SHA-256 of content, as used in ?v= by index.html
	etag        string
	immutable   bool // the name itself carries a content hash

	gzipOnce sync.Once
	gzipped  []byte // nil if compression does not pay off
}

// site serves the embedded bundle.
type site struct {
	assets map[string]*asset
}

// theSite is built on first use, so a binary that never mounts GraphiQL does
// not pay for indexing the embedded files.
var theSite = sync.OnceValue(newSite)

// GraphiQL returns the handler for the GraphiQL page and its assets. It
// serves GET and HEAD requests for Prefix and everything under Prefix+"/":
//
//   - /graphiql, /graphiql/ and /graphiql/index.html: the page, with
//     Cache-Control: no-cache, an ETag and a restrictive Content-Security-Policy;
//   - /graphiql/<asset>: the embedded file with its Content-Type, an ETag and a
//     Cache-Control that allows caching (for a year when the URL is
//     content-addressed, as all the URLs the page itself uses are);
//   - anything else, including directories: 404 Not Found.
//
// Text assets are sent gzip-compressed when the client accepts it. The
// handler strips Prefix itself, so mount it on the unmodified request path
// (see Prefix). All calls return the same handler.
func GraphiQL() http.Handler {
	return theSite()
}

func newSite() *site {
	assets := loadBundle(embedded, "graphiql", "web/build.sh")
	for name, a := range assets {
		a.immutable = strings.HasPrefix(name, "fonts/") // font names carry their content hash
	}
	return &site{assets: assets}
}

// loadBundle indexes the embedded bundle in dir. A bundle without its page
// is a build mistake (build is the script that makes it), so it panics on
// first use rather than serving a broken page.
func loadBundle(fsys fs.FS, dir, build string) map[string]*asset {
	root, err := fs.Sub(fsys, dir)
	if err != nil {
		panic("web: " + err.Error())
	}
	assets, err := readAssets(root)
	if err != nil {
		panic("web: reading the embedded " + dir + ": " + err.Error())
	}
	if assets["index.html"] == nil {
		panic("web: the embedded " + dir + " has no index.html; run " + build)
	}
	return assets
}

// serveAsset writes an embedded file: its type, caching (no-cache for the
// page, a year for content-addressed URLs, an hour otherwise), the page's
// Content-Security-Policy, and a gzip variant with its own ETag when the
// client accepts it. http.ServeContent answers conditional and range
// requests.
func serveAsset(w http.ResponseWriter, r *http.Request, a *asset, csp string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	switch {
	case a.name == "index.html":
		h.Set("Cache-Control", cacheIndex)
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
	case a.immutable || r.URL.Query().Get("v") == a.version:
		h.Set("Cache-Control", cacheVersioned)
	default:
		h.Set("Cache-Control", cacheDefault)
	}
	content, etag := a.content, a.etag
	if compressible[path.Ext(a.name)] {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			if gz := a.gzip(); gz != nil {
				h.Set("Content-Encoding", "gzip")
				content, etag = gz, strings.TrimSuffix(a.etag, `"`)+`-gzip"`
			}
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(content))
}

// readAssets indexes every file of an embedded bundle with its content
// type, a short content hash for cache-busting URLs and its ETag.
func readAssets(root fs.FS) (map[string]*asset, error) {
	assets := map[string]*asset{}
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(content)
		ext := path.Ext(name)
		ctype, ok := contentTypes[ext]
		if !ok {
			ctype = mime.TypeByExtension(ext)
		}
		assets[name] = &asset{
			name:        name,
			content:     content,
			contentType: ctype,
			version:     hex.EncodeToString(sum[:6]),
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
		return nil
	})
	return assets, err
}

// ServeHTTP implements http.Handler.
func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok || (rest != "" && rest[0] != '/') {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(rest, "/")
	if name == "" {
		name = "index.html"
	}
	a := s.assets[name] // directories and invalid paths are not in the map
	if a == nil {
		http.NotFound(w, r)
		return
	}

	serveAsset(w, r, a, contentSecurityPolicy)
}

// gzip returns the gzip-compressed content, computed on first use, or nil if
// compressing does not make it smaller.
func (a *asset) gzip() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return
		}
		if _, err := zw.Write(a.content); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		if buf.Len() < len(a.content) {
			a.gzipped = buf.Bytes()
		}
	})
	return a.gzipped
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip with a
// non-zero quality.
func acceptsGzip(r *http.Request) bool {
	for _, field := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(field, ",") {
			coding, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "q") {
					q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					return err == nil && q > 0
				}
			}
			return true
		}
	}
	return false
}
