package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/relatedhq/related"
)

// KeyPrefix starts every API key, so a key pasted into the wrong place (a
// log, a chat) is recognisable and secret scanners can match it.
const KeyPrefix = "rk_"

// keyBytes is the entropy of a key: 256 bits, beyond guessing, so a plain
// SHA-256 (no salt, no slow hash) is enough to store it.
const keyBytes = 32

// Key is an API key's record. The key itself is never stored: Hash is the
// SHA-256 of the secret the caller sends, so a copy of the database grants
// no access.
type Key struct {
	// ID names the key in listings, logs and revocation; it is not secret.
	ID     string
	Tenant string
	Role   string // related.RoleAdmin, RoleAgent or RolePartner
	Name   string // a label chosen by the operator; may be empty
	// Hash is the SHA-256 of the secret (HashKey).
	Hash      []byte
	CreatedAt time.Time
	// RevokedAt is when the key was revoked; zero while it is active.
	RevokedAt time.Time
	// LastUsedAt is roughly when the key last authenticated a request
	// (updated at most every few minutes); zero if never.
	LastUsedAt time.Time
}

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Matches reports whether secret is this key's secret, comparing hashes in
// constant time so the comparison's duration reveals nothing about the
// stored hash.
func (k *Key) Matches(secret string) bool {
	h := HashKey(secret)
	return len(k.Hash) == len(h) && subtle.ConstantTimeCompare(k.Hash, h) == 1
}

// KeyStore persists API keys. Unlike Store's methods, KeyByHash is not
// scoped to a tenant: authentication is what finds the tenant, from the
// key. Everything else takes the tenant like every other store method.
type KeyStore interface {
	// CreateKey stores k. It fails with CONFLICT when its id or hash is
	// taken.
	CreateKey(ctx context.Context, k *Key) error
	// KeyByHash returns the key whose Hash is hash, revoked or not, or a
	// NOT_FOUND error.
	KeyByHash(ctx context.Context, hash []byte) (*Key, error)
	// ListKeys returns a tenant's keys, revoked ones included, oldest
	// first. An empty tenant lists every tenant's keys: that is for the
	// operator's command line, never for a request.
	ListKeys(ctx context.Context, tenant string) ([]*Key, error)
	// RevokeKey revokes key id of tenant at time at and returns it. Revoking
	// a revoked key keeps its first revocation time. An id of another
	// tenant is NOT_FOUND.
	RevokeKey(ctx context.Context, tenant, id string, at time.Time) (*Key, error)
	// TouchKey records that key id of tenant was used at time at.
	TouchKey(ctx context.Context, tenant, id string, at time.Time) error
}

// ValidRole reports whether role is one a key can have.
func ValidRole(role string) bool {
	switch role {
	case related.RoleAdmin, related.RoleAgent, related.RolePartner, related.RoleIntegration:
		return true
	}
	return false
}

// HashKey returns the SHA-256 of a key's secret: what the store keeps and
// looks keys up by.
func HashKey(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// LooksLikeKey reports whether s has the shape of a key this package
// makes, so authentication can refuse garbage without a database lookup.
func LooksLikeKey(s string) bool {
	body, ok := strings.CutPrefix(s, KeyPrefix)
	if !ok || len(body) != base64.RawURLEncoding.EncodedLen(keyBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(body)
	return err == nil
}

// NewKey makes a key for tenant with role and name, created at now. It
// returns the secret, to be shown to the operator once, and the record to
// store.
func NewKey(tenant, role, name string, now time.Time) (string, *Key, error) {
	if strings.TrimSpace(tenant) == "" {
		return "", nil, related.Invalid("a key needs a tenant", "tenant")
	}
	if !ValidRole(role) {
		return "", nil, related.Invalid(fmt.Sprintf("unknown role %q (want admin, agent, partner or integration)", role), "role")
	}
	var secret [keyBytes]byte
	var id [8]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, fmt.Errorf("store: make key: %w", err)
	}
	if _, err := rand.Read(id[:]); err != nil {
		return "", nil, fmt.Errorf("store: make key id: %w", err)
	}
	s := KeyPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	return s, &Key{
		ID:        "key_" + hex.EncodeToString(id[:]),
		Tenant:    tenant,
		Role:      role,
		Name:      name,
		Hash:      HashKey(s),
		CreatedAt: now.UTC().Truncate(time.Millisecond),
	}, nil
}
