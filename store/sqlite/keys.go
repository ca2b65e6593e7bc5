package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

var _ store.KeyStore = (*Store)(nil)

const keyCols = `id, tenant, hash, role, name, created_at, revoked_at, last_used_at`

func scanKey(r scanner) (*store.Key, error) {
	var k store.Key
	var hash string
	var created, revoked, used int64
	if err := r.Scan(&k.ID, &k.Tenant, &hash, &k.Role, &k.Name, &created, &revoked, &used); err != nil {
		return nil, err
	}
	h, err := hex.DecodeString(hash)
	if err != nil {
		return nil, fmt.Errorf("key %s: stored hash: %w", k.ID, err)
	}
	k.Hash = h
	k.CreatedAt, k.RevokedAt, k.LastUsedAt = fromMS(created), fromMS(revoked), fromMS(used)
	return &k, nil
}

// CreateKey implements store.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	_, err := s.exec(ctx, s.w, `INSERT INTO api_keys (`+keyCols+`) VALUES (?,?,?,?,?,?,?,?)`,
		k.ID, k.Tenant, hex.EncodeToString(k.Hash), k.Role, k.Name, ms(k.CreatedAt), ms(k.RevokedAt), ms(k.LastUsedAt))
	if isUnique(err) {
		return &related.Error{Code: related.CodeConflict, Field: []string{"id"}, Message: "a key with this id or secret exists"}
	}
	if err != nil {
		return fmt.Errorf("sqlite: create key: %w", err)
	}
	return nil
}

// KeyByHash implements store.KeyStore. It reads through the reader pool:
// in WAL mode a reader sees every revocation committed before it began.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	k, err := scanKey(s.queryRow(ctx, s.r, `SELECT `+keyCols+` FROM api_keys WHERE hash = ?`, hex.EncodeToString(hash)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, related.NotFound("no such key")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: key by hash: %w", err)
	}
	return k, nil
}

// ListKeys implements store.KeyStore.
func (s *Store) ListKeys(ctx context.Context, tenant string) ([]*store.Key, error) {
	var rows *sql.Rows
	var err error
	if tenant == "" {
		rows, err = s.query(ctx, s.r, `SELECT `+keyCols+` FROM api_keys ORDER BY created_at, id`)
	} else {
		rows, err = s.query(ctx, s.r, `SELECT `+keyCols+` FROM api_keys WHERE tenant = ? ORDER BY created_at, id`, tenant)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list keys: %w", err)
	}
	return collect(rows, scanKey, "api_keys")
}

// RevokeKey implements store.KeyStore.
func (s *Store) RevokeKey(ctx context.Context, tenant, id string, at time.Time) (*store.Key, error) {
	var k *store.Key
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		if _, err := s.exec(ctx, tx, `UPDATE api_keys SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at = 0`, ms(at), tenant, id); err != nil {
			return nil, fmt.Errorf("sqlite: revoke key: %w", err)
		}
		var err error
		k, err = scanKey(s.queryRow(ctx, tx, `SELECT `+keyCols+` FROM api_keys WHERE tenant = ? AND id = ?`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, related.NotFound("no such key", "id")
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: revoke key: %w", err)
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// TouchKey implements store.KeyStore.
func (s *Store) TouchKey(ctx context.Context, tenant, id string, at time.Time) error {
	if _, err := s.exec(ctx, s.w, `UPDATE api_keys SET last_used_at = ? WHERE tenant = ? AND id = ? AND last_used_at < ?`, ms(at), tenant, id, ms(at)); err != nil {
		return fmt.Errorf("sqlite: touch key: %w", err)
	}
	return nil
}
