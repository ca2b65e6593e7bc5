package mongo

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// collAPIKeys holds the API keys, hashed (store.Key).
const collAPIKeys = "api_keys"

var _ store.KeyStore = (*Store)(nil)

// keyDoc is a document of the api_keys collection. Revoked duplicates
// "revokedAt is set" as a plain boolean so that revoking only once is an
// equality filter, which FerretDB honours like MongoDB.
type keyDoc struct {
	ID         string     `bson:"_id"`
	Tenant     string     `bson:"tenant"`
	Hash       string     `bson:"hash"` // hex SHA-256
	Role       string     `bson:"role"`
	Name       string     `bson:"name,omitempty"`
	CreatedAt  time.Time  `bson:"createdAt"`
	Revoked    bool       `bson:"revoked"`
	RevokedAt  *time.Time `bson:"revokedAt,omitempty"`
	LastUsedAt *time.Time `bson:"lastUsedAt,omitempty"`
}

func (d *keyDoc) domain() (*store.Key, error) {
	k := &store.Key{ID: d.ID, Tenant: d.Tenant, Role: d.Role, Name: d.Name, CreatedAt: d.CreatedAt.UTC()}
	h, err := hex.DecodeString(d.Hash)
	if err != nil {
		return nil, fmt.Errorf("key %s: stored hash: %w", d.ID, err)
	}
	k.Hash = h
	if d.RevokedAt != nil {
		k.RevokedAt = d.RevokedAt.UTC()
	}
	if d.LastUsedAt != nil {
		k.LastUsedAt = d.LastUsedAt.UTC()
	}
	return k, nil
}

func (s *Store) keyColl() *mongodriver.Collection { return s.db.Collection(collAPIKeys) }

// CreateKey implements store.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k *store.Key) error {
	d := keyDoc{ID: k.ID, Tenant: k.Tenant, Hash: hex.EncodeToString(k.Hash), Role: k.Role, Name: k.Name,
		CreatedAt: k.CreatedAt.UTC().Truncate(time.Millisecond), Revoked: k.Revoked()}
	if k.Revoked() {
		t := k.RevokedAt.UTC()
		d.RevokedAt = &t
	}
	_, err := s.keyColl().InsertOne(ctx, d)
	if isDuplicate(err) {
		return &related.Error{Code: related.CodeConflict, Field: []string{"id"}, Message: "a key with this id or secret exists"}
	}
	if err != nil {
		return fmt.Errorf("mongo: create key: %w", err)
	}
	return nil
}

// KeyByHash implements store.KeyStore.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (*store.Key, error) {
	var d keyDoc
	err := s.keyColl().FindOne(ctx, bson.D{{Key: "hash", Value: hex.EncodeToString(hash)}}).Decode(&d)
	if notFound(err) {
		return nil, related.NotFound("no such key")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: key by hash: %w", err)
	}
	return d.domain()
}

// ListKeys implements store.KeyStore.
func (s *Store) ListKeys(ctx context.Context, tenant string) ([]*store.Key, error) {
	filter := bson.D{}
	if tenant != "" {
		filter = bson.D{{Key: "tenant", Value: tenant}}
	}
	opts := options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}})
	if tenant == "" {
		// Every tenant's keys, for the operator: a scan of a small
		// collection, sorted by tenant first so no index is needed beyond
		// the one that serves a tenant's listing.
		opts = options.Find().SetSort(bson.D{{Key: "tenant", Value: 1}, {Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}})
	}
	cur, err := s.keyColl().Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("mongo: list keys: %w", err)
	}
	var docs []keyDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("mongo: list keys: %w", err)
	}
	out := make([]*store.Key, 0, len(docs))
	for i := range docs {
		k, err := docs[i].domain()
		if err != nil {
			return nil, fmt.Errorf("mongo: list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, nil
}

// RevokeKey implements store.KeyStore.
func (s *Store) RevokeKey(ctx context.Context, tenant, id string, at time.Time) (*store.Key, error) {
	at = at.UTC().Truncate(time.Millisecond)
	_, err := s.keyColl().UpdateOne(ctx,
		bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "revoked", Value: false}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: true}, {Key: "revokedAt", Value: at}}}})
	if err != nil {
		return nil, fmt.Errorf("mongo: revoke key: %w", err)
	}
	var d keyDoc
	err = s.keyColl().FindOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}}).Decode(&d)
	if notFound(err) {
		return nil, related.NotFound("no such key", "id")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: revoke key: %w", err)
	}
	return d.domain()
}

// TouchKey implements store.KeyStore.
func (s *Store) TouchKey(ctx context.Context, tenant, id string, at time.Time) error {
	_, err := s.keyColl().UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "lastUsedAt", Value: at.UTC().Truncate(time.Millisecond)}}}})
	if err != nil {
		return fmt.Errorf("mongo: touch key: %w", err)
	}
	return nil
}
