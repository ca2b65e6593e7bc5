package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// errUnauthenticated is every authentication failure. One message for
// missing, malformed, unknown and revoked keys, so a caller learns nothing
// about which keys exist.
var errUnauthenticated = errors.New("a valid API key is required: send the header Authorization: Bearer <key>")

// maxCachedKeys bounds the key cache; a flood of forged keys cannot grow
// it past this.
const maxCachedKeys = 10_000

// touchEvery is how stale a key's lastUsedAt may get before a lookup
// refreshes it: often enough for "is this key still in use", rarely
// enough to cost no write per request.
const touchEvery = 5 * time.Minute

// authenticator turns bearer keys into viewers. Lookups are cached for a
// short TTL, which bounds both the database load of a request storm and
// how long a revoked key keeps working on any replica.
type authenticator struct {
	keys store.KeyStore
	ttl  time.Duration
	log  *slog.Logger
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]cachedKey // by hash
}

type cachedKey struct {
	key   *store.Key // nil: no such key
	until time.Time
}

// authInfo is what a request's context carries about its key, beside the
// viewer: the hash to re-check it by (open WebSockets do, periodically).
type authInfo struct {
	hash []byte
	key  *store.Key
}

type authInfoKey struct{}

func withAuth(ctx context.Context, ai *authInfo) context.Context {
	return related.WithViewer(context.WithValue(ctx, authInfoKey{}, ai), ai.viewer())
}

func authFrom(ctx context.Context) (*authInfo, bool) {
	ai, ok := ctx.Value(authInfoKey{}).(*authInfo)
	return ai, ok
}

func (ai *authInfo) viewer() related.Viewer {
	return related.Viewer{Tenant: ai.key.Tenant, Role: ai.key.Role, Name: ai.key.Name, Principal: ai.key.ID}
}

// authenticate returns the key secret names. It returns errUnauthenticated
// for a malformed, unknown or revoked key, and a wrapped error when the
// database fails (the caller answers that as the server's failure, not
// the client's).
func (a *authenticator) authenticate(ctx context.Context, secret string) (*authInfo, error) {
	if !store.LooksLikeKey(secret) {
		return nil, errUnauthenticated
	}
	h := store.HashKey(secret)
	k, err := a.lookup(ctx, h)
	if err != nil {
		return nil, err
	}
	// The lookup went by hash; compare the secret to the record in
	// constant time anyway, so no path compares secrets byte by byte.
	if k == nil || k.Revoked() || !k.Matches(secret) {
		return nil, errUnauthenticated
	}
	return &authInfo{hash: h, key: k}, nil
}

// stillValid reports whether the key of ai is still active (through the
// cache, so at most one database read per TTL per key).
func (a *authenticator) stillValid(ctx context.Context, ai *authInfo) (bool, error) {
	k, err := a.lookup(ctx, ai.hash)
	if err != nil {
		return false, err
	}
	return k != nil && !k.Revoked(), nil
}

// lookup returns the key with hash h, nil if there is none.
func (a *authenticator) lookup(ctx context.Context, h []byte) (*store.Key, error) {
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[string(h)]
	a.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.key, nil
	}
	k, err := a.keys.KeyByHash(ctx, h)
	if related.IsNotFound(err) {
		k, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("server: look up API key: %w", err)
	}
	if k != nil && !k.Revoked() && now.Sub(k.LastUsedAt) > touchEvery {
		if err := a.keys.TouchKey(ctx, k.Tenant, k.ID, now); err != nil {
			// Only bookkeeping: the request goes on.
			a.log.WarnContext(ctx, "could not record API key use", "key", k.ID, "err", err)
		} else {
			k.LastUsedAt = now
		}
	}
	a.mu.Lock()
	if len(a.cache) >= maxCachedKeys {
		for hk, e := range a.cache {
			if !now.Before(e.until) {
				delete(a.cache, hk)
			}
		}
		if len(a.cache) >= maxCachedKeys {
			clear(a.cache)
		}
	}
	a.cache[string(h)] = cachedKey{key: k, until: now.Add(a.ttl)}
	a.mu.Unlock()
	return k, nil
}

// bearerToken extracts the credential of an Authorization header value of
// the Bearer scheme (RFC 6750; the scheme is case-insensitive).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 256 || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}

// requireKey authenticates every request to /graphql by its bearer key,
// puts its viewer in the context and applies the key's rate limit. A
// WebSocket upgrade without the header passes: browsers cannot set
// headers on WebSockets, so its key comes in connection_init (wsInit).
func (s *Server) requireKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		header := r.Header.Get("Authorization")
		if header == "" && isWebSocket(r) {
			if !s.allowFailure(w, r) { // unauthenticated until connection_init: limit by address
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		secret, ok := bearerToken(header)
		var ai *authInfo
		var err error
		if ok {
			ai, err = s.auth.authenticate(ctx, secret)
		}
		switch {
		case !ok || errors.Is(err, errUnauthenticated):
			// Only a well-formed key cost a database lookup: those
			// failures count against the address's budget, so a storm of
			// forged keys is throttled while a missing or malformed
			// header, which costs nothing, is always a plain 401.
			if ok && store.LooksLikeKey(secret) && !s.allowFailure(w, r) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="related"`)
			writeError(w, r, http.StatusUnauthorized, CodeUnauthenticated, errUnauthenticated.Error())
			return
		case err != nil:
			s.log.ErrorContext(ctx, "authentication failed", "request_id", RequestID(ctx), "err", err)
			if s.unavailable(err) {
				w.Header().Set("Retry-After", strconv.Itoa(retryAfterUnavailable))
				writeError(w, r, http.StatusServiceUnavailable, CodeUnavailable,
					fmt.Sprintf("the database is unavailable for now: retry later (request id %s)", RequestID(ctx)))
				return
			}
			writeError(w, r, http.StatusServiceUnavailable, CodeInternal,
				fmt.Sprintf("internal server error (request id %s)", RequestID(ctx)))
			return
		}
		if ok, wait := s.keyLimit.allow(ai.key.ID); !ok {
			tooMany(w, r, wait)
			return
		}
		ctx = withAuth(ctx, ai)
		if !isWebSocket(r) { // a WebSocket's slot and key watch are taken in wsInit
			// A request holds one of the key's operations in flight from
			// its first byte of body to its last of answer; one that turns
			// out to be an event stream trades it for a connection once
			// its body is in (streams).
			release, ok := s.inflight.acquire(ai.key.ID)
			if !ok {
				w.Header().Set("Retry-After", "1")
				writeGraphQLError(w, r, http.StatusTooManyRequests, s.tooManyInFlight())
				return
			}
			defer release()
			ctx = context.WithValue(ctx, inflightKey{}, release)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// inflightKey carries the release of a request's in-flight slot.
type inflightKey struct{}

// streams admits the event streams, once their bodies are in: a request
// the SSE transport will serve (a subscription, or a client that accepts
// nothing else) lives as long as its subscription, so it gives back its
// operation slot and holds one of the key's connections instead, has its
// read deadline lifted, and ends when its key is revoked, as a WebSocket
// does. Every other request goes on as it came.
func (s *Server) streams(next http.Handler) http.Handler {
	sse := sseTransport{s: s, maxTokens: s.limits.MaxTokens}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ai, ok := authFrom(r.Context())
		if !ok || isWebSocket(r) || !sse.Supports(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if !s.conns.acquireUntil(ctx, ai.key.ID) {
			s.tooManyConnections(w, r)
			return
		}
		if release, ok := ctx.Value(inflightKey{}).(func()); ok {
			release()
		}
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		s.watchKey(ctx, func() { cancel(errKeyRevoked) }, ai)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Server) tooManyConnections(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "1")
	writeError(w, r, http.StatusTooManyRequests, CodeTooManyConns,
		fmt.Sprintf("this key has %d WebSockets and event streams open, the most allowed: close one first", s.conns.max))
}

// unavailable reports whether err, from the key store or the store, means
// the database is unavailable.
func (s *Server) unavailable(err error) bool {
	return store.Unavailable(s.opts.Keys, err) || store.Unavailable(s.opts.Store, err)
}

// allowFailure counts an unauthenticated request against its client
// address's budget, so forging keys or opening anonymous WebSockets in a
// storm is refused before it loads the database. It writes the 429 and
// returns false when the budget is spent.
func (s *Server) allowFailure(w http.ResponseWriter, r *http.Request) bool {
	if ok, wait := s.anonLimit.allow(s.clientIP(r)); !ok {
		tooMany(w, r, wait)
		return false
	}
	return true
}

// clientIP is the address rate limits of unauthenticated requests go by:
// the peer, or behind a trusted proxy the address the proxy appended last
// to X-Forwarded-For (the leftmost entries are the client's to forge).
func (s *Server) clientIP(r *http.Request) string {
	if s.opts.BehindProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			parts := strings.Split(xff[len(xff)-1], ",")
			if ip := strings.TrimSpace(parts[len(parts)-1]); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(wait)))
	writeError(w, r, http.StatusTooManyRequests, CodeRateLimited, "too many requests: retry after the delay in the Retry-After header")
}

// retrySeconds is a Retry-After value: whole seconds, at least one.
func retrySeconds(wait time.Duration) int {
	return max(int(math.Ceil(wait.Seconds())), 1)
}

func isWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// writeError answers a request refused before GraphQL ran with a
// GraphQL-shaped error body, so clients read every refusal the same way.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeGraphQLError(w, r, status, refusal(code, "%s", msg))
}

// writeGraphQLError answers a request refused before GraphQL ran with e,
// given the request id.
func writeGraphQLError(w http.ResponseWriter, r *http.Request, status int, e *gqlerror.Error) {
	ct := "application/json"
	if strings.Contains(r.Header.Get("Accept"), "application/graphql-response+json") {
		ct = "application/graphql-response+json"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	ext := map[string]any{"requestId": RequestID(r.Context())}
	for k, v := range e.Extensions {
		ext[k] = v
	}
	body, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{
		"message":    e.Message,
		"extensions": ext,
	}}})
	w.Write(append(body, '\n'))
}

// wsInit authenticates a WebSocket connection: by the upgrade request's
// header when it had one, else by connection_init's Authorization. The
// connection's context is then re-checked every KeyRecheck, and cancelled
// (which closes the socket and its subscriptions) when the key is revoked.
func (s *Server) wsInit(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	ai, ok := authFrom(ctx)
	if !ok {
		secret, bok := bearerToken(p.Authorization())
		if !bok {
			// Some clients send the bare key.
			secret, bok = strings.TrimSpace(p.Authorization()), p.Authorization() != ""
		}
		var err error
		if bok {
			ai, err = s.auth.authenticate(ctx, secret)
		}
		if !bok || errors.Is(err, errUnauthenticated) {
			return transport.WithWebsocketCloseCode(ctx, 4403), nil, fmt.Errorf("%s: %w", CodeUnauthenticated, errUnauthenticated)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "websocket authentication failed", "err", err)
			if s.unavailable(err) {
				// 1013: try again later.
				return transport.WithWebsocketCloseCode(ctx, 1013), nil, errors.New(CodeUnavailable + ": the database is unavailable for now: retry later")
			}
			return transport.WithWebsocketCloseCode(ctx, 1011), nil, errors.New("internal server error")
		}
		if ok, _ := s.keyLimit.allow(ai.key.ID); !ok {
			return transport.WithWebsocketCloseCode(ctx, 4429), nil, errors.New(CodeRateLimited + ": too many requests")
		}
		ctx = withAuth(ctx, ai)
	}
	ctx, cancel := context.WithCancel(ctx)
	if !s.conns.acquireUntil(ctx, ai.key.ID) {
		cancel()
		return transport.WithWebsocketCloseCode(ctx, 4429), nil, fmt.Errorf("%s: this key has %d WebSockets and event streams open, the most allowed: close one first", CodeTooManyConns, s.conns.max)
	}
	ctx = context.WithValue(ctx, onWebSocketKey{}, true)
	s.watchKey(ctx, cancel, ai)
	// The reason is sent only if the context ends while the client still
	// listens, which is when the key was revoked.
	return transport.AppendCloseReason(ctx, CodeUnauthenticated+": the API key was revoked"), nil, nil
}

// keyWatch re-checks the keys of open WebSocket connections, all of them
// from one goroutine: a ticker per connection would cost every subscriber
// a goroutine and a timer, which at ten thousand subscribers is a
// hundred megabytes of stacks for a check that is per key anyway.
type keyWatch struct {
	mu      sync.Mutex
	conns   map[*watched]struct{}
	running bool
}

// watched is one open connection.
type watched struct {
	cancel func()
	ai     *authInfo
}

// errKeyRevoked is why an event stream's context ends when its key is
// revoked: the stream says so in a last event.
var errKeyRevoked = errors.New("the API key was revoked")

// watchKey cancels an open connection's context once its key stops being
// valid. A database error keeps the connection: an outage is no reason
// to drop every agent's live panel.
func (s *Server) watchKey(ctx context.Context, cancel func(), ai *authInfo) {
	w := &watched{cancel: cancel, ai: ai}
	kw := &s.keyWatch
	kw.mu.Lock()
	if kw.conns == nil {
		kw.conns = map[*watched]struct{}{}
	}
	kw.conns[w] = struct{}{}
	if !kw.running {
		kw.running = true
		go s.sweepKeys()
	}
	kw.mu.Unlock()
	context.AfterFunc(ctx, func() {
		kw.mu.Lock()
		delete(kw.conns, w)
		kw.mu.Unlock()
	})
}

// sweepKeys checks every open connection's key each KeyRecheck, once per
// distinct key, and cancels the connections of revoked ones. It stops when
// no connection is left, so an idle server runs no timer.
func (s *Server) sweepKeys() {
	kw := &s.keyWatch
	t := time.NewTicker(s.opts.KeyRecheck)
	defer t.Stop()
	for range t.C {
		kw.mu.Lock()
		if len(kw.conns) == 0 {
			kw.running = false
			kw.mu.Unlock()
			return
		}
		byKey := map[string][]*watched{}
		for w := range kw.conns {
			byKey[w.ai.key.ID] = append(byKey[w.ai.key.ID], w)
		}
		kw.mu.Unlock()
		for id, ws := range byKey {
			ctx, cancel := context.WithTimeout(context.Background(), s.opts.KeyRecheck)
			ok, err := s.auth.stillValid(ctx, ws[0].ai)
			cancel()
			if err != nil {
				s.log.Warn("could not re-check a websocket's API key", "key", id, "err", err)
				continue
			}
			if !ok {
				s.log.Info("closing websockets: their API key was revoked", "key", id, "connections", len(ws))
				for _, w := range ws {
					w.cancel()
				}
			}
		}
	}
}
