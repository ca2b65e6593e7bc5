package web

// The agent console: a small single-page app (Preact, graphql-ws) served at
// / with its assets under /console/. Like GraphiQL it is built ahead of time
// from web/console-src by
//
//	bash web/build-console.sh
//
// committed under web/console/ and compiled in with go:embed, so it works
// offline and never loads code from another host. The page asks for an API
// key, keeps it in the browser's local storage, and talks only to its own
// origin: POST /graphql and WebSocket (graphql-transport-ws) /graphql.

import (
	"embed"
	"net/http"
	"strings"
	"sync"
)

// ConsolePrefix is the URL path the console's assets are served under; the
// page itself is served at /. Mount the handler as
//
//	mux.Handle("GET /{$}", web.Console())
//	mux.Handle(web.ConsolePrefix+"/", web.Console())
const ConsolePrefix = "/console"

//go:embed console
var embeddedConsole embed.FS

// consoleCSP is sent with the page: scripts and styles from this origin
// only (no inline ones), connections to this origin (HTTP and WebSocket;
// ws:/wss: because not every browser lets 'self' match WebSocket URLs).
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type consoleSite struct {
	assets map[string]*asset
}

var theConsole = sync.OnceValue(newConsole)

// Console returns the handler for the agent console. It serves GET and HEAD:
//
//   - / : the page, with Cache-Control: no-cache, an ETag and a restrictive
//     Content-Security-Policy (query strings, such as ?interaction=ID, are the
//     page's own);
//   - /console/<asset>: the embedded file with its Content-Type and an ETag,
//     cacheable for a year when the URL carries the content hash (?v=) the
//     page uses, for an hour otherwise;
//   - anything else: 404 Not Found.
//
// Text assets are gzip-compressed for clients that accept it. All calls
// return the same handler.
func Console() http.Handler {
	return theConsole()
}

func newConsole() *consoleSite {
	return &consoleSite{assets: loadBundle(embeddedConsole, "console", "web/build-console.sh")}
}

// ServeHTTP implements http.Handler.
func (s *consoleSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var name string
	switch p := r.URL.Path; {
	case p == "/":
		name = "index.html"
	case strings.HasPrefix(p, ConsolePrefix+"/"):
		name = strings.TrimPrefix(p, ConsolePrefix+"/")
		if name == "index.html" {
			name = "" // the page lives at / only
		}
	}
	a := s.assets[name] // directories and invalid paths are not in the map
	if a == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}

	serveAsset(w, r, a, consoleCSP)
}
