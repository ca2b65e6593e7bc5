package mongo

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection names. Every document in them has a tenant field and every
// filter the adapter sends names it.
const (
	collInteractions = "interactions"
	collMessages     = "messages"
	collContacts     = "contacts"
	collQueues       = "queues"
	collPreferences  = "preferences"
)

// The identity collections (link.go, leases.go, profiles.go, manual.go,
// canonical.go, migrate.go), one per SQLite table of the same name where
// SQLite has one.
const (
	collProfileRules      = "profile_rules"
	collProfiles          = "profiles"
	collValues            = "contact_values"
	collValueStats        = "value_stats"
	collDecisions         = "decisions"
	collRenames           = "renames"
	collPairs             = "profile_pairs"
	collHistory           = "profile_events"
	collAliases           = "aliases"
	collLeases            = "leases"
	collEvaluations       = "rule_evaluations"
	collSettings          = "tenant_settings"
	collCanonicalizations = "canonicalizations"
	collContactMerges     = "contact_merges"
	collMigrations        = "migrations"
	collErasures          = "erasures"
)

// IndexKey is one key of an index or one field of a sort: the field and
// its direction.
type IndexKey struct {
	Field string
	Desc  bool // descending (-1) rather than ascending (1)
}

// String returns the key as MongoDB names it in index names: field_1 or
// field_-1.
func (k IndexKey) String() string {
	if k.Desc {
		return k.Field + "_-1"
	}
	return k.Field + "_1"
}

// IndexSpec declares one index of one collection.
type IndexSpec struct {
	Collection string
	Keys       []IndexKey // in index order
	Unique     bool
	// Builtin marks the _id index, which the server makes with the
	// collection: it is declared so query shapes can name it, and Open
	// never creates it.
	Builtin bool
}

// Name is the index's name on the server, derived from its keys the way
// MongoDB derives default names, so the same declaration always names the
// same index and createIndexes stays idempotent across restarts.
func (s IndexSpec) Name() string {
	if s.Builtin {
		return "_id_"
	}
	parts := make([]string, len(s.Keys))
	for i, k := range s.Keys {
		parts[i] = k.String()
	}
	return strings.Join(parts, "_")
}

// Indexes is every index the adapter relies on, the one place they are
// declared. Open creates them; Ping checks they exist; a test holds
// QueryShapes against them.
var Indexes = []IndexSpec{
	// The thread's open interaction: at most one per (tenant, openKey).
	// Closed interactions get "closed:<id>" (related.Interaction.OpenKey)
	// because FerretDB has no partial indexes to exclude them with.
	{Collection: collInteractions, Keys: keys("tenant", "openKey"), Unique: true},
	// Related panels, CHANNEL scope: newest last message first.
	{Collection: collInteractions, Keys: []IndexKey{{Field: "tenant"}, {Field: "contactId"}, {Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}},
	// Related panels, PROFILE scope.
	{Collection: collInteractions, Keys: []IndexKey{{Field: "tenant"}, {Field: "profileId"}, {Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}},
	// An agent's recent work: all of a tenant's interactions, or those of
	// one status, newest last message first.
	{Collection: collInteractions, Keys: []IndexKey{{Field: "tenant"}, {Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}},
	{Collection: collInteractions, Keys: []IndexKey{{Field: "tenant"}, {Field: "status"}, {Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}},
	{Collection: collInteractions, Keys: keys("_id"), Unique: true, Builtin: true},
	// An interaction's messages, oldest first.
	{Collection: collMessages, Keys: keys("tenant", "interactionId", "sentAt", "_id")},
	{Collection: collMessages, Keys: keys("_id"), Unique: true, Builtin: true},
	// One contact per address on a channel. The contact's _id is derived
	// from the same triple, so this index guards documents written by
	// anything other than this adapter and serves lookups by address.
	{Collection: collContacts, Keys: keys("tenant", "channel", "address"), Unique: true},
	{Collection: collContacts, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collQueues, Keys: keys("tenant", "name"), Unique: true},
	{Collection: collQueues, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collPreferences, Keys: keys("_id"), Unique: true, Builtin: true},
	// API keys: authentication looks a key up by its hash, which is
	// unique across tenants; listings go by tenant, oldest first.
	{Collection: collAPIKeys, Keys: keys("hash"), Unique: true},
	{Collection: collAPIKeys, Keys: keys("tenant", "createdAt", "_id")},
	{Collection: collAPIKeys, Keys: keys("_id"), Unique: true, Builtin: true},

	// Identity (link.go, profiles.go). A tenant has one rule per
	// attribute; its rules are read by tenant.
	{Collection: collProfileRules, Keys: keys("tenant", "attribute"), Unique: true},
	{Collection: collProfileRules, Keys: keys("_id"), Unique: true, Builtin: true},
	// Profiles are written and read by their derived _id.
	{Collection: collProfiles, Keys: keys("_id"), Unique: true, Builtin: true},
	// A profile's contacts, oldest first; a tenant's contacts in _id order
	// (rule re-evaluation, canonicalization, TenantFacts).
	{Collection: collContacts, Keys: keys("tenant", "profileId", "createdAt", "_id")},
	{Collection: collContacts, Keys: keys("tenant", "_id")},
	// Contacts whose linking a crash interrupted: their dirty markers
	// start with the time they were made (multikey).
	{Collection: collContacts, Keys: keys("dirty")},
	// A value's holders (and their count); a contact's values.
	{Collection: collValues, Keys: keys("tenant", "vid", "contactId")},
	{Collection: collValues, Keys: keys("tenant", "contactId")},
	{Collection: collValues, Keys: keys("_id"), Unique: true, Builtin: true},
	// Hub values, last changed first; a rule's values when its threshold
	// changes; values whose quarantine changed before a crash.
	{Collection: collValueStats, Keys: []IndexKey{{Field: "tenant"}, {Field: "listed"}, {Field: "updatedAt", Desc: true}, {Field: "vid", Desc: true}}},
	{Collection: collValueStats, Keys: keys("tenant", "key", "state", "contacts")},
	{Collection: collValueStats, Keys: keys("flip")},
	{Collection: collValueStats, Keys: keys("_id"), Unique: true, Builtin: true},
	// The decisions and pairs naming any of some contacts (multikey on
	// the pair of contacts).
	{Collection: collDecisions, Keys: keys("tenant", "contacts")},
	{Collection: collDecisions, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collRenames, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collPairs, Keys: []IndexKey{{Field: "tenant"}, {Field: "kind"}, {Field: "createdAt", Desc: true}, {Field: "_id", Desc: true}}},
	{Collection: collPairs, Keys: keys("tenant", "contacts")},
	{Collection: collPairs, Keys: keys("_id"), Unique: true, Builtin: true},
	// A profile's history, newest first (multikey on the profiles an
	// entry names).
	{Collection: collHistory, Keys: []IndexKey{{Field: "tenant"}, {Field: "profiles"}, {Field: "_id", Desc: true}}},
	{Collection: collHistory, Keys: keys("tenant", "contactId")},
	{Collection: collHistory, Keys: keys("_id"), Unique: true, Builtin: true},
	// Tombstones of erasures, newest first.
	{Collection: collErasures, Keys: []IndexKey{{Field: "tenant"}, {Field: "at", Desc: true}, {Field: "_id", Desc: true}}},
	{Collection: collErasures, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collErasures, Keys: keys("state")},
	{Collection: collAliases, Keys: keys("tenant", "contactId")},
	{Collection: collAliases, Keys: keys("_id"), Unique: true, Builtin: true},
	// A lease's _id is derived from (tenant, contact): inserting it is
	// taking it, and the _id index makes that single-winner.
	{Collection: collLeases, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collEvaluations, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collEvaluations, Keys: keys("state")},
	{Collection: collSettings, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collCanonicalizations, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collCanonicalizations, Keys: keys("state")},
	{Collection: collContactMerges, Keys: keys("tenant", "_id")},
	{Collection: collContactMerges, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: collMigrations, Keys: keys("_id"), Unique: true, Builtin: true},
	// The old linking collections, read once by the migration.
	{Collection: oldProfileLinks, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: oldDoNotLink, Keys: keys("_id"), Unique: true, Builtin: true},
	{Collection: oldMerges, Keys: keys("_id"), Unique: true, Builtin: true},
}

// keys returns ascending index keys on fields.
func keys(fields ...string) []IndexKey {
	out := make([]IndexKey, len(fields))
	for i, f := range fields {
		out[i] = IndexKey{Field: f}
	}
	return out
}

// QueryShape declares one kind of filter (and sort) the adapter sends. A
// shape is served by an index when the index's keys start with the
// Equality fields (in any order), continue with the Sort keys (in this
// order, or all reversed: backward pages walk the index the other way),
// and hold every Range field after the Equality prefix. Filter fields are
// not served by the index: they are checked on the few documents the
// index already narrowed to (the tenant of an _id lookup).
type QueryShape struct {
	Name       string // the methods that send it
	Collection string
	Equality   []string // equality or $in
	Sort       []IndexKey
	Range      []string // $gt, $lt, $lte, $ne
	Filter     []string // checked on at most a few documents per key
	// CrossTenant, when set, says why the shape cannot name a tenant (the
	// tenant is what it finds out); every other shape must.
	CrossTenant string
}

// QueryShapes is every filter the adapter sends, the one place they are
// declared, so a test can prove each one is served by an index.
var QueryShapes = []QueryShape{
	{Name: "Interactions, CloseInteraction, ReopenInteraction, duplicate RecordMessage", Collection: collInteractions, Equality: []string{"_id"}, Filter: []string{"tenant", "status"}},
	{Name: "RecordMessage: new message newer than the last", Collection: collInteractions, Equality: []string{"_id"}, Filter: []string{"tenant", "lastAt"}},
	{Name: "RecordMessage: find-or-create the thread's open interaction; ReopenInteraction conflict", Collection: collInteractions, Equality: []string{"tenant", "openKey"}},
	{Name: "ListRelated (CHANNEL scope)", Collection: collInteractions, Equality: []string{"tenant", "contactId"},
		Sort: []IndexKey{{Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}, Range: []string{"lastAt", "_id"}},
	{Name: "ListRelated (PROFILE scope)", Collection: collInteractions, Equality: []string{"tenant", "profileId"},
		Sort: []IndexKey{{Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}, Range: []string{"lastAt", "_id"}},
	{Name: "CountRelated (CHANNEL scope)", Collection: collInteractions, Equality: []string{"tenant", "contactId"}, Range: []string{"_id"}},
	{Name: "CountRelated (PROFILE scope)", Collection: collInteractions, Equality: []string{"tenant", "profileId"}, Range: []string{"_id"}},
	{Name: "ListInteractions", Collection: collInteractions, Equality: []string{"tenant"},
		Sort: []IndexKey{{Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}, Range: []string{"lastAt", "_id"}},
	{Name: "ListInteractions by status", Collection: collInteractions, Equality: []string{"tenant", "status"},
		Sort: []IndexKey{{Field: "lastAt", Desc: true}, {Field: "_id", Desc: true}}, Range: []string{"lastAt", "_id"}},
	{Name: "CountInteractions", Collection: collInteractions, Equality: []string{"tenant"}},
	{Name: "CountInteractions by status", Collection: collInteractions, Equality: []string{"tenant", "status"}},
	{Name: "Messages, RecordMessage (clientMutationId)", Collection: collMessages, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "ListMessages", Collection: collMessages, Equality: []string{"tenant", "interactionId"},
		Sort: []IndexKey{{Field: "sentAt"}, {Field: "_id"}}, Range: []string{"sentAt", "_id"}},
	{Name: "CountMessages", Collection: collMessages, Equality: []string{"tenant", "interactionId"}},
	{Name: "Contacts, RecordMessage, SetContactAttributes", Collection: collContacts, Equality: []string{"_id"}, Filter: []string{"tenant", "version"}},
	{Name: "Queues, RecordMessage", Collection: collQueues, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "Preferences, SetPreferences", Collection: collPreferences, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "KeyByHash", Collection: collAPIKeys, Equality: []string{"hash"},
		CrossTenant: "authentication: the key is what says which tenant a request acts for"},
	{Name: "ListKeys", Collection: collAPIKeys, Equality: []string{"tenant"}, Sort: keys("createdAt", "_id")},
	{Name: "ListKeys (every tenant, the operator's command line)", Collection: collAPIKeys, Sort: keys("tenant", "createdAt", "_id"),
		CrossTenant: "the operator's listing of every tenant's keys; never reached from a request"},
	{Name: "RevokeKey, TouchKey", Collection: collAPIKeys, Equality: []string{"_id"}, Filter: []string{"tenant", "revoked"}},

	// Identity (link.go, leases.go, profiles.go, manual.go, canonical.go).
	{Name: "ProfileRules, SaveProfileRule, DeleteProfileRule, linking (rules read afresh under leases)", Collection: collProfileRules, Equality: []string{"tenant"}},
	{Name: "SaveProfileRule, DeleteProfileRule: write one rule (a deleted one makes room)", Collection: collProfileRules, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "Profiles, currentProfile, recompute: read, upsert and delete profiles", Collection: collProfiles, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "ClusterContacts, CurrentProfiles, relink, recovery, manual control, EvaluateRules (marks): contacts by id; dirty markers set and removed", Collection: collContacts,
		Equality: []string{"_id"}, Filter: []string{"tenant", "version"}},
	{Name: "ProfileMembers, ProfileLinks, ProfilePairs, ProfileHistory: a profile's members", Collection: collContacts, Equality: []string{"tenant", "profileId"}},
	{Name: "ProfileContacts", Collection: collContacts, Equality: []string{"tenant", "profileId"}, Sort: keys("createdAt", "_id")},
	{Name: "EvaluateRules, CanonicalizeContacts (contacts in _id order), TenantFacts, the jobs' totals", Collection: collContacts,
		Equality: []string{"tenant"}, Sort: keys("_id"), Range: []string{"_id"}},
	{Name: "recovery: contacts whose linking a crash interrupted", Collection: collContacts, Range: []string{"dirty"},
		CrossTenant: "start-up and the background worker relink what crashed writers of any tenant left"},
	{Name: "recompute: the moved contacts' interactions follow them", Collection: collInteractions, Equality: []string{"tenant", "contactId"}},
	{Name: "RecordMessage: a new interaction takes its contact's profile", Collection: collInteractions, Equality: []string{"_id"}, Filter: []string{"tenant", "profileId"}},
	{Name: "ClusterContacts, relink: a contact's stored values", Collection: collValues, Equality: []string{"tenant", "contactId"}},
	{Name: "Holders, ProfileByIdentifier, counts: a value's holders", Collection: collValues, Equality: []string{"tenant", "vid"}},
	{Name: "relink: store and remove one value", Collection: collValues, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "ValueFacts, counts and quarantine (compare-and-set on the version)", Collection: collValueStats, Equality: []string{"_id"}, Filter: []string{"tenant", "version", "flip"}},
	{Name: "HubValues", Collection: collValueStats, Equality: []string{"tenant", "listed"},
		Sort: []IndexKey{{Field: "updatedAt", Desc: true}, {Field: "vid", Desc: true}}, Range: []string{"updatedAt", "vid"}},
	{Name: "SaveProfileRule: mark a rule's values under its threshold, count those it newly quarantines", Collection: collValueStats,
		Equality: []string{"tenant", "key", "state"}, Range: []string{"contacts"}, Filter: []string{"quarantined"}},
	{Name: "recovery: values whose quarantine changed before a crash", Collection: collValueStats, Range: []string{"flip"},
		CrossTenant: "start-up and the background worker recompute what crashed writers of any tenant left"},
	{Name: "Decisions: those naming any of some contacts", Collection: collDecisions, Equality: []string{"tenant", "contacts"}},
	{Name: "manual control: store and drop decisions", Collection: collDecisions, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "Renames; RenameProfile, MergeProfiles: store and drop names", Collection: collRenames, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "Pairs, ProfilePairs of a profile: those naming any of some contacts", Collection: collPairs, Equality: []string{"tenant", "contacts"}},
	{Name: "ProfilePairs (a kind), their total", Collection: collPairs, Equality: []string{"tenant", "kind"},
		Sort: []IndexKey{{Field: "createdAt", Desc: true}, {Field: "_id", Desc: true}}, Range: []string{"createdAt", "_id"}},
	{Name: "ProfilePair; recompute: insert and delete pairs", Collection: collPairs, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "ProfileHistory", Collection: collHistory, Equality: []string{"tenant", "profiles"}, Sort: []IndexKey{{Field: "_id", Desc: true}}, Range: []string{"_id"}},
	{Name: "EraseProfile, EraseContact: the history naming an erased contact", Collection: collHistory, Equality: []string{"tenant", "contactId"}},
	{Name: "Erasures", Collection: collErasures, Equality: []string{"tenant"},
		Sort: []IndexKey{{Field: "at", Desc: true}, {Field: "_id", Desc: true}}, Range: []string{"at", "_id"}},
	{Name: "recover: erasures a crash left unfinished", Collection: collErasures, Equality: []string{"state"},
		CrossTenant: "the start and the background worker finish every tenant's interrupted erasures"},
	{Name: "EraseProfile, EraseContact: start and finish the tombstone", Collection: collErasures, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "EraseProfile, EraseContact: an erased contact's messages", Collection: collMessages, Equality: []string{"tenant", "interactionId"}},
	{Name: "EraseProfile, EraseContact: the values nobody holds any more", Collection: collValueStats, Equality: []string{"_id"}, Filter: []string{"tenant", "contacts"}},
	{Name: "EraseProfile, EraseContact: the aliases leading to an erased contact", Collection: collAliases, Equality: []string{"tenant", "contactId"}},
	{Name: "Profiles: the contact an old or merged id leads to", Collection: collAliases, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "ContactAliases", Collection: collAliases, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "CanonicalizeContacts: a merged contact's aliases follow it", Collection: collAliases, Equality: []string{"tenant", "contactId"}},
	{Name: "leases: take, read, renew, take over and release", Collection: collLeases, Equality: []string{"_id"}, Filter: []string{"tenant", "token"}},
	{Name: "RuleEvaluation, EvaluateRules, SaveProfileRule (start)", Collection: collEvaluations, Equality: []string{"_id"},
		Filter: []string{"tenant", "run", "afterId", "processed", "state"}},
	{Name: "PendingEvaluations", Collection: collEvaluations, Equality: []string{"state"},
		CrossTenant: "the background worker finds the tenants with a re-evaluation running"},
	{Name: "TenantSettings, SetTenantSettings, RecordMessage (the region)", Collection: collSettings, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "Canonicalization, CanonicalizeContacts, SetTenantSettings (start)", Collection: collCanonicalizations, Equality: []string{"_id"}, Filter: []string{"tenant", "run", "afterId"}},
	{Name: "PendingCanonicalizations", Collection: collCanonicalizations, Equality: []string{"state"},
		CrossTenant: "the background worker finds the tenants with a canonicalization running"},
	{Name: "CanonicalizeContacts: a tenant's contact merges a crash left unfinished", Collection: collContactMerges, Equality: []string{"tenant"}, Sort: keys("_id")},
	{Name: "CanonicalizeContacts: record, finish and forget a contact merge", Collection: collContactMerges, Equality: []string{"_id"}, Filter: []string{"tenant"}},
	{Name: "migrate: whether a migration ran", Collection: collMigrations, Equality: []string{"_id"},
		CrossTenant: "migrations are the database's, not a tenant's"},
	{Name: "migrate: every document of the old linking collections and of profiles, once, in _id order", Collection: collProfiles, Sort: keys("_id"),
		CrossTenant: "the one-time migration reads every tenant's old linking"},
	{Name: "migrate: every contact, once, in _id order", Collection: collContacts, Sort: keys("_id"),
		CrossTenant: "the one-time migration reads every tenant's old linking"},
	{Name: "migrate: the old links, once, in _id order", Collection: oldProfileLinks, Sort: keys("_id"),
		CrossTenant: "the one-time migration reads every tenant's old linking"},
	{Name: "migrate: the old do-not-link records, once, in _id order", Collection: oldDoNotLink, Sort: keys("_id"),
		CrossTenant: "the one-time migration reads every tenant's old linking"},
	{Name: "migrate: the old merges, once, in _id order", Collection: oldMerges, Sort: keys("_id"),
		CrossTenant: "the one-time migration reads every tenant's old linking"},
}

// ServedBy reports whether ix serves q by the rule in QueryShape's doc.
func (q QueryShape) ServedBy(ix IndexSpec) bool {
	if ix.Collection != q.Collection || len(ix.Keys) < len(q.Equality)+len(q.Sort) {
		return false
	}
	eq := make(map[string]bool, len(q.Equality))
	for _, f := range q.Equality {
		eq[f] = true
	}
	for _, k := range ix.Keys[:len(q.Equality)] {
		if !eq[k.Field] {
			return false
		}
		delete(eq, k.Field)
	}
	if len(eq) != 0 {
		return false
	}
	rest := ix.Keys[len(q.Equality):]
	if len(q.Sort) > 0 {
		flip := rest[0].Desc != q.Sort[0].Desc
		for i, s := range q.Sort {
			k := rest[i]
			if k.Field != s.Field || (k.Desc != s.Desc) != flip {
				return false
			}
		}
	}
	have := make(map[string]bool, len(rest))
	for _, k := range rest {
		have[k.Field] = true
	}
	for _, f := range q.Range {
		if !have[f] {
			return false
		}
	}
	return true
}

// model returns the createIndexes model of ix.
func (ix IndexSpec) model() mongodriver.IndexModel {
	d := make(bson.D, len(ix.Keys))
	for i, k := range ix.Keys {
		dir := 1
		if k.Desc {
			dir = -1
		}
		d[i] = bson.E{Key: k.Field, Value: dir}
	}
	o := options.Index().SetName(ix.Name())
	if ix.Unique {
		o.SetUnique(true)
	}
	return mongodriver.IndexModel{Keys: d, Options: o}
}

// collections returns the names of the collections Indexes declares, in
// declaration order.
func collections() []string {
	var out []string
	seen := map[string]bool{}
	for _, ix := range Indexes {
		if !seen[ix.Collection] {
			seen[ix.Collection] = true
			out = append(out, ix.Collection)
		}
	}
	return out
}

// ensureIndexes creates every declared index, one createIndexes command
// per index. Creating an index that exists with the same name, keys and
// options is a no-op on MongoDB and FerretDB alike, so every start repeats
// it safely; an index that exists with other options fails loudly rather
// than leaving a uniqueness rule unenforced.
//
// One index per command because FerretDB v1.24 mishandles a createIndexes
// naming two or more indexes that already exist: it removes them from its
// to-do list by their position in the original list, which skips the
// wrong index or panics (the connection drops; "slice bounds out of
// range"). Startup runs this once; the few extra commands cost nothing.
func (s *Store) ensureIndexes(ctx context.Context) error {
	for _, ix := range Indexes {
		if ix.Builtin {
			continue
		}
		if _, err := s.db.Collection(ix.Collection).Indexes().CreateOne(ctx, ix.model()); err != nil {
			return fmt.Errorf("create index %s of %s: %w", ix.Name(), ix.Collection, err)
		}
	}
	return nil
}

// checkIndexes reports an error naming the first declared index the
// database lacks.
func (s *Store) checkIndexes(ctx context.Context) error {
	for _, coll := range collections() {
		want := map[string]bool{} // name -> unique
		for _, ix := range Indexes {
			if ix.Collection == coll && !ix.Builtin {
				want[ix.Name()] = ix.Unique
			}
		}
		if len(want) == 0 {
			continue
		}
		specs, err := s.db.Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			return fmt.Errorf("list indexes of %s: %w", coll, err)
		}
		for _, sp := range specs {
			unique, ok := want[sp.Name]
			if !ok {
				continue
			}
			if unique && (sp.Unique == nil || !*sp.Unique) {
				return fmt.Errorf("index %s of %s is not unique", strconv.Quote(sp.Name), coll)
			}
			delete(want, sp.Name)
		}
		for name := range want {
			return fmt.Errorf("index %s of %s is missing", strconv.Quote(name), coll)
		}
	}
	return nil
}
