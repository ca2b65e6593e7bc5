package mongo

import (
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// The documents of identity (link.go, profiles.go, manual.go), one
// collection per SQLite table of the same name. Derived _ids make every
// write of them idempotent: applying a plan twice, or finishing one a
// crash interrupted, writes the same documents.

// ruleDoc is a document of the profile_rules collection: an
// identity.Rule. A deleted rule is kept (Deleted), so a deleted default
// rule stays deleted.
type ruleDoc struct {
	ID            string   `bson:"_id"`
	Tenant        string   `bson:"tenant"`
	Attribute     string   `bson:"attribute"`
	Normalizer    string   `bson:"normalizer"`
	Enabled       bool     `bson:"enabled"`
	Priority      int      `bson:"priority"`
	MaxPerProfile int      `bson:"maxPerProfile"`
	BlockedValues []string `bson:"blockedValues"`
	DefaultRegion string   `bson:"defaultRegion"`
	AutoMerge     string   `bson:"autoMerge,omitempty"`
	// MaxContactsPerValue is nil in rules of older versions, which take
	// the default threshold (as SQLite's migration gives them).
	MaxContactsPerValue *int      `bson:"maxContactsPerValue,omitempty"`
	Deleted             bool      `bson:"deleted"`
	CreatedAt           time.Time `bson:"createdAt"`
	UpdatedAt           time.Time `bson:"updatedAt"`
}

func (d *ruleDoc) rule() identity.Rule {
	r := identity.Rule{
		ID: d.ID, Tenant: d.Tenant, Attribute: d.Attribute, Normalizer: identity.Normalizer(d.Normalizer),
		Enabled: d.Enabled, Priority: d.Priority, MaxPerProfile: d.MaxPerProfile, BlockedValues: d.BlockedValues,
		DefaultRegion: d.DefaultRegion, AutoMerge: identity.AutoMerge(d.AutoMerge), MaxContactsPerValue: identity.DefaultMaxContactsPerValue,
		Deleted: d.Deleted, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
	if d.MaxContactsPerValue != nil {
		r.MaxContactsPerValue = *d.MaxContactsPerValue
	}
	if r.AutoMerge == "" {
		r.AutoMerge = identity.DefaultAutoMerge(r.Attribute, r.Normalizer)
	}
	return r
}

// profileDoc is a document of the profiles collection: a profile as
// identity.Partition decided it, written whole by the recompute that
// decided it. Its _id is related.ProfileIDFor(Anchor).
type profileDoc struct {
	ID           string         `bson:"_id"`
	Tenant       string         `bson:"tenant"`
	Anchor       string         `bson:"anchor"`
	CustomName   string         `bson:"customName,omitempty"`
	AutoName     string         `bson:"autoName"`
	Channels     []string       `bson:"channels"`
	Identifiers  []profileIdent `bson:"identifiers"`
	ContactCount int            `bson:"contactCount"`
	CreatedAt    time.Time      `bson:"createdAt"`
	UpdatedAt    time.Time      `bson:"updatedAt"`
}

// profileIdent is one identifier of a profile.
type profileIdent struct {
	Key      string `bson:"key"`
	Value    string `bson:"value"`
	Attested bool   `bson:"attested,omitempty"`
}

func (d *profileDoc) domain() *related.Profile {
	p := &related.Profile{
		ID: d.ID, Tenant: d.Tenant, Anchor: d.Anchor, CustomName: d.CustomName, AutoName: d.AutoName,
		ContactCount: d.ContactCount, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
	for _, c := range d.Channels {
		p.Channels = append(p.Channels, related.Channel(c))
	}
	for _, id := range d.Identifiers {
		p.Identifiers = append(p.Identifiers, related.ProfileIdentifier{Identifier: related.Identifier{Key: id.Key, Value: id.Value}, Attested: id.Attested})
	}
	p.Name = p.DisplayName()
	return p
}

// profileFields are the fields of a decided profile, as written.
func profileFields(p identity.ProfileResult) (channels []string, ids []profileIdent) {
	channels = []string{}
	for _, c := range p.Channels {
		channels = append(channels, string(c))
	}
	ids = []profileIdent{}
	for _, id := range p.Identifiers {
		ids = append(ids, profileIdent{Key: id.Key, Value: id.Value, Attested: id.Attested})
	}
	return channels, ids
}

// sameProfile reports whether the stored d already says what p says.
func sameProfile(d *profileDoc, p identity.ProfileResult) bool {
	if d.Anchor != p.Anchor || d.CustomName != p.CustomName || d.AutoName != p.AutoName || d.ContactCount != len(p.Contacts) {
		return false
	}
	chans, ids := profileFields(p)
	if len(chans) != len(d.Channels) || len(ids) != len(d.Identifiers) {
		return false
	}
	for i := range chans {
		if chans[i] != d.Channels[i] {
			return false
		}
	}
	for i := range ids {
		if ids[i] != d.Identifiers[i] {
			return false
		}
	}
	return true
}

// valueDoc is a document of the contact_values collection: one value a
// contact holds under the current rules (an identity.Claim), with its
// provenance. Its _id is derived from (tenant, key, value, contact).
type valueDoc struct {
	ID     string `bson:"_id"`
	Tenant string `bson:"tenant"`
	Key    string `bson:"key"`
	Value  string `bson:"value"`
	// VID is valueID(key, value): the holders of a value are one
	// equality on {tenant, vid}.
	VID           string    `bson:"vid"`
	ContactID     string    `bson:"contactId"`
	RuleID        string    `bson:"ruleId"`
	Source        string    `bson:"source"`
	Agent         bool      `bson:"agent,omitempty"`
	InteractionID string    `bson:"interactionId,omitempty"`
	ByName        string    `bson:"byName,omitempty"`
	ByRole        string    `bson:"byRole,omitempty"`
	At            time.Time `bson:"at"`
}

func valueDocID(tenant, contact string, id related.Identifier) string {
	return related.DerivedID(tenant, "contact-value", id.Key, id.Value, contact)
}

// valueID is a value's id, the same on every adapter: the HubValue id.
func valueID(id related.Identifier) string { return related.DerivedID("value", id.Key, id.Value) }

func newValueDoc(tenant, contact string, cl identity.Claim, ts time.Time) *valueDoc {
	at := cl.At
	if at.IsZero() {
		at = ts
	}
	return &valueDoc{
		ID: valueDocID(tenant, contact, cl.Identifier), Tenant: tenant, Key: cl.Key, Value: cl.Value, VID: valueID(cl.Identifier),
		ContactID: contact, RuleID: cl.RuleID, Source: string(cl.Source), Agent: cl.Agent, InteractionID: cl.InteractionID,
		ByName: cl.By.Name, ByRole: cl.By.Role, At: at.UTC().Truncate(time.Millisecond),
	}
}

func (d *valueDoc) holder() identity.Holder {
	return identity.Holder{Contact: d.ContactID, Claim: identity.Claim{
		Identifier: related.Identifier{Key: d.Key, Value: d.Value}, RuleID: d.RuleID, Source: identity.Source(d.Source),
		Agent: d.Agent, InteractionID: d.InteractionID, By: related.Actor{Name: d.ByName, Role: d.ByRole}, At: d.At.UTC(),
	}}
}

// statDoc is a document of the value_stats collection: how many contacts
// hold one value, and what an admin decided about it. Contacts is
// written only by a compare-and-set on Version after a count of
// contact_values (link.go), never by $inc.
type statDoc struct {
	ID          string `bson:"_id"` // statID(tenant, value)
	Tenant      string `bson:"tenant"`
	Key         string `bson:"key"`
	Value       string `bson:"value"`
	VID         string `bson:"vid"`
	Contacts    int    `bson:"contacts"`
	State       string `bson:"state"`
	Quarantined bool   `bson:"quarantined"`
	// Listed: quarantined, or an admin set a state: on the hub list.
	Listed bool `bson:"listed"`
	// Flip is the marker of a change of quarantine whose holders are not
	// all recomputed yet ("<ms>/<token>", as contacts' dirty markers).
	Flip      string    `bson:"flip,omitempty"`
	Version   int64     `bson:"version"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

func statID(tenant string, id related.Identifier) string {
	return related.DerivedID(tenant, "value-stats", id.Key, id.Value)
}

func (d *statDoc) facts() identity.ValueFacts {
	return identity.ValueFacts{Contacts: d.Contacts, State: identity.Quarantine(d.State)}
}

// listed reports whether a value belongs on the hub list.
func listed(quarantined bool, state identity.Quarantine) bool {
	return quarantined || state != "" && state != identity.QuarantineAutomatic
}

// decisionDoc is a document of the decisions collection: an
// identity.Decision. Its _id is the decision's ID; Contacts is [A, B],
// so the decisions naming any of some contacts are one $in.
type decisionDoc struct {
	ID       string    `bson:"_id"`
	Tenant   string    `bson:"tenant"`
	Kind     string    `bson:"kind"`
	A        string    `bson:"a"`
	B        string    `bson:"b"`
	Contacts []string  `bson:"contacts"`
	Into     string    `bson:"into,omitempty"`
	Reason   string    `bson:"reason,omitempty"`
	ByName   string    `bson:"byName,omitempty"`
	ByRole   string    `bson:"byRole,omitempty"`
	At       time.Time `bson:"at"`
}

func newDecisionDoc(tenant string, d identity.Decision) *decisionDoc {
	return &decisionDoc{ID: d.ID(), Tenant: tenant, Kind: string(d.Kind), A: d.A, B: d.B, Contacts: []string{d.A, d.B},
		Into: d.Into, Reason: d.Reason, ByName: d.By.Name, ByRole: d.By.Role, At: d.At.UTC().Truncate(time.Millisecond)}
}

func (d *decisionDoc) decision() identity.Decision {
	return identity.Decision{Kind: identity.DecisionKind(d.Kind), A: d.A, B: d.B, Into: d.Into, Reason: d.Reason,
		By: related.Actor{Name: d.ByName, Role: d.ByRole}, At: d.At.UTC()}
}

// renameDoc is a document of the renames collection: an admin's name for
// the profile anchored at a contact.
type renameDoc struct {
	ID     string    `bson:"_id"` // renameID(tenant, anchor)
	Tenant string    `bson:"tenant"`
	Anchor string    `bson:"anchor"`
	Name   string    `bson:"name"`
	ByName string    `bson:"byName,omitempty"`
	ByRole string    `bson:"byRole,omitempty"`
	At     time.Time `bson:"at"`
}

func renameID(tenant, anchor string) string { return related.DerivedID(tenant, "rename", anchor) }

// pairDoc is a document of the profile_pairs collection: an open
// suggestion or conflict. Its _id is the pair's ID.
type pairDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	Kind      string    `bson:"kind"`
	Key       string    `bson:"key"`
	Value     string    `bson:"value"`
	RuleID    string    `bson:"ruleId,omitempty"`
	A         string    `bson:"a"`
	B         string    `bson:"b"`
	Contacts  []string  `bson:"contacts"`
	SourceA   string    `bson:"sourceA"`
	SourceB   string    `bson:"sourceB"`
	Reason    string    `bson:"reason"`
	CreatedAt time.Time `bson:"createdAt"`
}

func newPairDoc(tenant string, p identity.Pair, ts time.Time) *pairDoc {
	return &pairDoc{ID: p.ID(), Tenant: tenant, Kind: string(p.Kind), Key: p.Key, Value: p.Value, RuleID: p.RuleID,
		A: p.A, B: p.B, Contacts: []string{p.A, p.B}, SourceA: string(p.SourceA), SourceB: string(p.SourceB),
		Reason: string(p.Reason), CreatedAt: ts}
}

func (d *pairDoc) record() *store.PairRecord {
	return &store.PairRecord{ID: d.ID, CreatedAt: d.CreatedAt.UTC(), Pair: identity.Pair{
		Kind: identity.PairKind(d.Kind), Identifier: related.Identifier{Key: d.Key, Value: d.Value}, RuleID: d.RuleID,
		A: d.A, B: d.B, SourceA: identity.Source(d.SourceA), SourceB: identity.Source(d.SourceB), Reason: identity.PairReason(d.Reason),
	}}
}

// historyDoc is a document of the profile_events collection: one entry
// of profiles' history. Its _id is related.NewID (time-ordered: the
// history is paged by it); Profiles are every profile it names, indexed.
type historyDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	Kind      string    `bson:"kind"`
	Profiles  []string  `bson:"profiles"`
	ContactID string    `bson:"contactId,omitempty"`
	Key       string    `bson:"key,omitempty"`
	Value     string    `bson:"value,omitempty"`
	ByName    string    `bson:"byName,omitempty"`
	ByRole    string    `bson:"byRole,omitempty"`
	At        time.Time `bson:"at"`
}

func (d *historyDoc) event() *store.HistoryEvent {
	return &store.HistoryEvent{ID: d.ID, By: related.Actor{Name: d.ByName, Role: d.ByRole}, At: d.At.UTC(), Event: identity.Event{
		Kind: identity.EventKind(d.Kind), Profiles: d.Profiles, Contact: d.ContactID, Identifier: related.Identifier{Key: d.Key, Value: d.Value},
	}}
}

// aliasDoc is a document of the aliases collection: an id that is no
// longer current (a profile id of an older version, a contact merged into
// another) and the contact it leads to.
type aliasDoc struct {
	ID        string `bson:"_id"` // aliasID(tenant, kind, alias)
	Tenant    string `bson:"tenant"`
	Kind      string `bson:"kind"` // "profile" or "contact"
	Alias     string `bson:"alias"`
	ContactID string `bson:"contactId"`
}

func aliasID(tenant, kind, alias string) string {
	return related.DerivedID(tenant, "alias", kind, alias)
}

// leaseDoc is a document of the leases collection: one writer's hold on
// one contact while it recomputes the contact's cluster (leases.go).
type leaseDoc struct {
	ID        string    `bson:"_id"` // leaseID(tenant, contact)
	Tenant    string    `bson:"tenant"`
	ContactID string    `bson:"contactId"`
	Token     string    `bson:"token"`
	Expires   time.Time `bson:"expires"`
}

// evaluationDoc is a document of the rule_evaluations collection (and of
// canonicalizations): one per tenant, the progress of a job over its
// contacts in _id order, and what it changed so far. Run changes whenever
// a job (re)starts, so a batch of an older run cannot record progress over
// a newer one.
type evaluationDoc struct {
	ID        string `bson:"_id"`
	Tenant    string `bson:"tenant"`
	Run       string `bson:"run"`
	State     string `bson:"state"`
	Processed int    `bson:"processed"`
	Total     int    `bson:"total"`
	// Merged counts merged profiles (a re-evaluation) or merged contacts
	// (a canonicalization); the rest, what a re-evaluation changed.
	Merged      int `bson:"merged"`
	Split       int `bson:"split"`
	Created     int `bson:"created"`
	Removed     int `bson:"removed"`
	Moved       int `bson:"moved"`
	Quarantined int `bson:"quarantined"`
	Suggestions int `bson:"suggestions"`
	Unchanged   int `bson:"unchanged"`
	// Samples are a re-evaluation's first changes (identity.MaxSamples).
	Samples []identity.SampleChange `bson:"samples,omitempty"`
	AfterID string                  `bson:"afterId"`
	// Phase is a re-evaluation's (store.EvaluationValues, "" in documents
	// of older versions, or store.EvaluationProfiles); Covered are the
	// contacts its second phase decided ahead of AfterID.
	Phase   string   `bson:"phase,omitempty"`
	Covered []string `bson:"covered,omitempty"`
	// Scoped limits a re-evaluation to the contacts holding a value of one
	// of ScopeKeys (store.EvaluationScope); documents of older versions
	// lack it, and re-evaluate every contact. Mark is the id it marks
	// contacts with (contactDoc.EvaluationMark); it outlives a restart of
	// a run still going.
	Scoped    bool      `bson:"scoped,omitempty"`
	ScopeKeys []string  `bson:"scopeKeys,omitempty"`
	Mark      string    `bson:"mark,omitempty"`
	StartedAt time.Time `bson:"startedAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// phase is the re-evaluation's phase: a run of an older version is in
// its first.
func (d *evaluationDoc) phase() string {
	if d.Phase == "" {
		return store.EvaluationValues
	}
	return d.Phase
}

// scope is what the re-evaluation decides again.
func (d *evaluationDoc) scope() store.EvaluationScope {
	if !d.Scoped {
		return store.EvaluationScope{All: true}
	}
	return store.EvaluationScope{Keys: d.ScopeKeys}
}

func (d *evaluationDoc) domain() *store.RuleEvaluation {
	return &store.RuleEvaluation{
		Tenant: d.Tenant, State: related.JobState(d.State), Processed: d.Processed, Total: d.Total,
		Summary: identity.Summary{Merged: d.Merged, Split: d.Split, Created: d.Created, Removed: d.Removed, Unchanged: d.Unchanged,
			ContactsMoved: d.Moved, Quarantined: d.Quarantined, Suggestions: d.Suggestions, Samples: d.Samples},
		StartedAt: d.StartedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
}

// settingsDoc is a document of the tenant_settings collection.
type settingsDoc struct {
	ID            string    `bson:"_id"` // settingsID(tenant)
	Tenant        string    `bson:"tenant"`
	DefaultRegion string    `bson:"defaultRegion"`
	UpdatedAt     time.Time `bson:"updatedAt"`
}

func settingsID(tenant string) string { return related.DerivedID(tenant, "settings") }
