package mongo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// The collections of the linking before profiles were a function of the
// facts. migrateIdentity reads them once, then drops them.
const (
	oldIdentifiers  = "identifiers"
	oldProfileLinks = "profile_links"
	oldDoNotLink    = "do_not_link"
	oldMerges       = "merges"
	oldConflicts    = "profile_conflicts"
)

// migrationIdentity names the migration of identity to facts.
const migrationIdentity = "identity-facts"

// migrationDoc is a document of the migrations collection: a migration
// that ran to its end.
type migrationDoc struct {
	ID   string    `bson:"_id"`
	Done time.Time `bson:"done"`
}

// migrate brings the database's data up to this version: it runs each
// migration not marked done in the migrations collection, and marks it.
// Every migration is idempotent, so a crash part way is finished by the
// next start; Open calls it on every start.
func (s *Store) migrate(ctx context.Context) error {
	coll := s.coll(collMigrations)
	err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: migrationIdentity}}).Err()
	if err == nil {
		return nil
	}
	if !errors.Is(err, mongodriver.ErrNoDocuments) {
		return fmt.Errorf("read migrations: %w", err)
	}
	// A new database has no contacts: nothing to carry over.
	err = s.contacts.FindOne(ctx, bson.D{}, options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})).Err()
	switch {
	case errors.Is(err, mongodriver.ErrNoDocuments):
	case err != nil:
		return fmt.Errorf("look for contacts: %w", err)
	default:
		s.log.InfoContext(ctx, "mongo: migrating the linking of an older version to decisions; every tenant is then canonicalized and re-evaluated")
		if err := s.migrateIdentity(ctx); err != nil {
			return fmt.Errorf("migrate identity: %w", err)
		}
	}
	if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: migrationIdentity}}, &migrationDoc{ID: migrationIdentity, Done: now()},
		options.Replace().SetUpsert(true)); err != nil && !isDuplicate(err) {
		return fmt.Errorf("record migration: %w", err)
	}
	return nil
}

// oldProfileDoc is a profile document of the version before: a random
// id, and a pointer to the profile it was merged into.
type oldProfileDoc struct {
	ID         string `bson:"_id"`
	Tenant     string `bson:"tenant"`
	Anchor     string `bson:"anchor,omitempty"`
	CustomName string `bson:"customName,omitempty"`
	MergedInto string `bson:"mergedInto,omitempty"`
}

// oldPairDoc reads the (tenant, contact, profile) of the old
// do_not_link, profile_links and merges documents.
type oldPairDoc struct {
	Tenant    string `bson:"tenant"`
	ContactID string `bson:"contactId"`
	ProfileID string `bson:"profileId"`
	Reason    string `bson:"reason"`
	Loser     string `bson:"loser"`
	Winner    string `bson:"winner"`
	By        string `bson:"by"`
}

// migrateIdentity carries the linking of the version before profiles were
// a function of the facts into facts, as SQLite's migration 5 does: what
// admins did by hand becomes decisions (an unlink keeps the contact apart
// from its old profile, a manual link or merge keeps the profile's
// contacts together), custom names become renames, and old profile ids
// stay valid as aliases of the contact that anchors them. Then every
// tenant's addresses are canonicalized and its rules re-evaluated in the
// background, which recomputes every profile from the facts. Every write
// is an upsert by a derived id, so running it again after a crash writes
// the same documents; the old collections are dropped last.
func (s *Store) migrateIdentity(ctx context.Context) error {
	ts := now()
	by := related.Actor{Name: "migration"}
	oldByID := map[[2]string]oldProfileDoc{}
	var profiles []oldProfileDoc
	if err := each(ctx, s.coll(collProfiles), bson.D{}, func(p oldProfileDoc) {
		if p.Anchor == "" { // a profile of this version has an anchor
			oldByID[[2]string{p.Tenant, p.ID}] = p
			profiles = append(profiles, p)
		}
	}); err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	root := func(tenant, id string) string {
		for range 64 {
			p, ok := oldByID[[2]string{tenant, id}]
			if !ok || p.MergedInto == "" {
				return id
			}
			id = p.MergedInto
		}
		return id
	}
	members := map[[2]string][]string{}
	tenants := map[string]bool{}
	if err := each(ctx, s.contacts, bson.D{}, func(c contactDoc) {
		tenants[c.Tenant] = true
		if c.ProfileID != "" {
			k := [2]string{c.Tenant, root(c.Tenant, c.ProfileID)}
			members[k] = append(members[k], c.ID)
		}
	}); err != nil {
		return fmt.Errorf("read contacts: %w", err)
	}
	anchor := func(tenant, id string) string {
		ms := members[[2]string{tenant, root(tenant, id)}]
		if len(ms) == 0 {
			return ""
		}
		return ms[0] // contacts were read in _id order
	}
	var models []mongodriver.WriteModel
	put := func(tenant string, d identity.Decision) {
		if d.A == d.B || d.A == "" || d.B == "" {
			return
		}
		d.By, d.At = by, ts
		doc := newDecisionDoc(tenant, d)
		models = append(models, mongodriver.NewReplaceOneModel().SetFilter(byID(tenant, doc.ID)).SetReplacement(doc).SetUpsert(true))
	}
	var aliases, renames []mongodriver.WriteModel
	for _, p := range profiles {
		a := anchor(p.Tenant, p.ID)
		if a == "" {
			continue
		}
		alias := &aliasDoc{ID: aliasID(p.Tenant, "profile", p.ID), Tenant: p.Tenant, Kind: "profile", Alias: p.ID, ContactID: a}
		aliases = append(aliases, mongodriver.NewReplaceOneModel().SetFilter(byID(p.Tenant, alias.ID)).SetReplacement(alias).SetUpsert(true))
		if p.CustomName != "" && p.MergedInto == "" {
			r := &renameDoc{ID: renameID(p.Tenant, a), Tenant: p.Tenant, Anchor: a, Name: p.CustomName, ByName: by.Name, At: ts}
			renames = append(renames, mongodriver.NewReplaceOneModel().SetFilter(byID(p.Tenant, r.ID)).SetReplacement(r).SetUpsert(true))
		}
	}
	// Unlinks: keep the contact apart from its old profile.
	if err := each(ctx, s.coll(oldDoNotLink), bson.D{}, func(x oldPairDoc) {
		others := slices.DeleteFunc(slices.Clone(members[[2]string{x.Tenant, root(x.Tenant, x.ProfileID)}]), func(c string) bool { return c == x.ContactID })
		if len(others) > 0 {
			d := identity.NewDecision(identity.KeepApart, x.ContactID, others[0])
			d.Reason = "unlink"
			put(x.Tenant, d)
		}
	}); err != nil {
		return fmt.Errorf("read do-not-link records: %w", err)
	}
	// Manual links: keep the contact with its profile.
	if err := each(ctx, s.coll(oldProfileLinks), bson.D{}, func(x oldPairDoc) {
		if x.Reason == string(related.LinkManual) {
			d := identity.NewDecision(identity.KeepTogether, x.ContactID, anchor(x.Tenant, x.ProfileID))
			d.Reason = "link"
			put(x.Tenant, d)
		}
	}); err != nil {
		return fmt.Errorf("read links: %w", err)
	}
	// Merges an admin made: the whole profile they made stays together.
	if err := each(ctx, s.coll(oldMerges), bson.D{}, func(x oldPairDoc) {
		if x.By == "" || x.By == "rule" || x.By == "rules" {
			return
		}
		ms := members[[2]string{x.Tenant, root(x.Tenant, x.Winner)}]
		for _, m := range ms[min(1, len(ms)):] {
			d := identity.NewDecision(identity.KeepTogether, ms[0], m)
			d.Into, d.Reason = ms[0], "merge"
			put(x.Tenant, d)
		}
	}); err != nil {
		return fmt.Errorf("read merges: %w", err)
	}
	for _, w := range []struct {
		coll   string
		models []mongodriver.WriteModel
	}{{collAliases, aliases}, {collRenames, renames}, {collDecisions, models}} {
		for len(w.models) > 0 {
			n := min(len(w.models), 1000)
			if _, err := s.coll(w.coll).BulkWrite(ctx, w.models[:n], options.BulkWrite().SetOrdered(false)); err != nil {
				return fmt.Errorf("write %s: %w", w.coll, err)
			}
			w.models = w.models[n:]
		}
	}
	// Addresses written before they were canonical are canonicalized
	// (merging the contacts that turn out to be one), then every tenant's
	// profiles are recomputed from the facts.
	for tenant := range tenants {
		if err := s.startJob(ctx, collCanonicalizations, canonicalizationID(tenant), tenant, ts); err != nil {
			return err
		}
		if err := s.startEvaluation(ctx, tenant, store.EvaluationScope{All: true}, 0, ts); err != nil {
			return err
		}
	}
	// Old profile ids that were merged away lead to their profile through
	// their alias now; the others are replaced as the re-evaluation
	// recomputes their contacts.
	var merged []string
	for _, p := range profiles {
		if p.MergedInto != "" {
			merged = append(merged, p.ID)
		}
	}
	for len(merged) > 0 {
		n := min(len(merged), 1000)
		if _, err := s.coll(collProfiles).DeleteMany(ctx, bson.D{{Key: "_id", Value: idIn(merged[:n])}}); err != nil {
			return fmt.Errorf("delete merged profiles: %w", err)
		}
		merged = merged[n:]
	}
	if _, err := s.contacts.UpdateMany(ctx, bson.D{}, bson.D{{Key: "$unset", Value: bson.D{{Key: "identifiers", Value: ""}, {Key: "unlinked", Value: ""}}}}); err != nil {
		return fmt.Errorf("drop the contacts' old identifiers: %w", err)
	}
	for _, c := range []string{oldIdentifiers, oldProfileLinks, oldDoNotLink, oldMerges, oldConflicts} {
		if err := s.coll(c).Drop(ctx); err != nil {
			return fmt.Errorf("drop %s: %w", c, err)
		}
	}
	return nil
}

// each calls fn with every document of a collection filter selects, in
// _id order, without holding them all.
func each[D any](ctx context.Context, c *mongodriver.Collection, filter bson.D, fn func(D)) error {
	cur, err := c.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(everyBatch))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d D
		if err := cur.Decode(&d); err != nil {
			return err
		}
		fn(d)
	}
	return cur.Err()
}
