package mongo

import (
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/relatedhq/related"
)

// The documents as stored (DESIGN.md section 4). Field names are the
// collections' schema: they are what the indexes and QueryShapes name, and
// other tools (the events feed, identity linking, operators' queries) read
// them, so they change only with a migration.

// interactionDoc is a document of the interactions collection.
type interactionDoc struct {
	ID        string `bson:"_id"`
	Tenant    string `bson:"tenant"`
	Channel   string `bson:"channel"`
	ThreadRef string `bson:"threadRef"`
	// OpenKey is related.Interaction.OpenKey: unique per tenant, it is
	// what keeps a thread to one open interaction.
	OpenKey     string          `bson:"openKey"`
	ContactID   string          `bson:"contactId"`
	ProfileID   string          `bson:"profileId,omitempty"`
	QueueID     string          `bson:"queueId,omitempty"`
	QueueName   string          `bson:"queueName,omitempty"`
	Status      string          `bson:"status"`
	ClosedState string          `bson:"closedState,omitempty"`
	ClosedAt    *time.Time      `bson:"closedAt,omitempty"`
	LastMessage *lastMessageDoc `bson:"lastMessage,omitempty"`
	// LastAt is a top-level copy of lastMessage.at (or createdAt before
	// any message), the Related panel's sort key: a top-level field keeps
	// the index and the keyset filters plain on every backend.
	LastAt    time.Time `bson:"lastAt"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// lastMessageDoc is the copy of an interaction's newest message kept on
// the interaction, so a Related panel row needs no second read.
type lastMessageDoc struct {
	ID        string    `bson:"id"`
	Body      string    `bson:"body"`
	At        time.Time `bson:"at"`
	Direction string    `bson:"direction"`
	Author    string    `bson:"author,omitempty"`
	// Partial marks a body cut to related.InlineBodyLength.
	Partial bool `bson:"partial,omitempty"`
}

// messageDoc is a document of the messages collection.
type messageDoc struct {
	ID            string    `bson:"_id"`
	Tenant        string    `bson:"tenant"`
	InteractionID string    `bson:"interactionId"`
	Direction     string    `bson:"direction"`
	Body          string    `bson:"body"`
	SentAt        time.Time `bson:"sentAt"`
	Author        string    `bson:"author,omitempty"`
	CreatedAt     time.Time `bson:"createdAt"`
}

// contactDoc is a document of the contacts collection.
type contactDoc struct {
	ID         string         `bson:"_id"`
	Tenant     string         `bson:"tenant"`
	Channel    string         `bson:"channel"`
	Address    string         `bson:"address"`
	Name       string         `bson:"name,omitempty"`
	Attributes []attributeDoc `bson:"attributes"`
	ProfileID  string         `bson:"profileId,omitempty"`
	// Identifiers are the identifiers the contact's links to its profile
	// hold (related.Contact.Identifiers): what connects it to the
	// profile's other contacts. Linking skips a contact whose claims are
	// all here already.
	Identifiers []identDoc `bson:"identifiers,omitempty"`
	// Unlinked marks a contact an admin unlinked from a profile at least
	// once: only such contacts have do_not_link records to read.
	Unlinked bool `bson:"unlinked,omitempty"`
	// Version counts the adapter's read-modify-write updates of the
	// attributes: each one is filtered on the version it read, so on
	// MongoDB a concurrent writer's change is never overwritten.
	Version   int64     `bson:"version"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// attributeDoc is one contact attribute. Attributes are an array of
// {key, value} rather than a sub-document so they keep their order and
// any key is safe (a sub-document's keys may not hold dots or start
// with $).
type attributeDoc struct {
	Key   string `bson:"key"`
	Value string `bson:"value"`
}

// queueDoc is a document of the queues collection.
type queueDoc struct {
	ID     string `bson:"_id"`
	Tenant string `bson:"tenant"`
	Name   string `bson:"name"`
}

// preferencesDoc is a document of the preferences collection. Its _id is
// derived from (tenant, principal), so an agent has one document.
type preferencesDoc struct {
	ID          string    `bson:"_id"`
	Tenant      string    `bson:"tenant"`
	Principal   string    `bson:"principal"`
	ShowRelated bool      `bson:"showRelated"`
	UpdatedAt   time.Time `bson:"updatedAt"`
}

func (d *interactionDoc) domain() *related.Interaction {
	it := &related.Interaction{
		ID:          d.ID,
		Tenant:      d.Tenant,
		Channel:     related.Channel(d.Channel),
		ThreadRef:   d.ThreadRef,
		ContactID:   d.ContactID,
		ProfileID:   d.ProfileID,
		QueueID:     d.QueueID,
		QueueName:   d.QueueName,
		Status:      related.Status(d.Status),
		ClosedState: related.ClosedState(d.ClosedState),
		CreatedAt:   d.CreatedAt.UTC(),
		UpdatedAt:   d.UpdatedAt.UTC(),
	}
	if d.ClosedAt != nil {
		it.ClosedAt = d.ClosedAt.UTC()
	}
	if lm := d.LastMessage; lm != nil {
		it.LastMessage = &related.Message{
			ID:            lm.ID,
			Tenant:        d.Tenant,
			InteractionID: d.ID,
			Direction:     related.Direction(lm.Direction),
			Body:          lm.Body,
			SentAt:        lm.At.UTC(),
			Author:        lm.Author,
			Partial:       lm.Partial,
		}
	}
	return it
}

func (d *messageDoc) domain() *related.Message {
	return &related.Message{
		ID:            d.ID,
		Tenant:        d.Tenant,
		InteractionID: d.InteractionID,
		Direction:     related.Direction(d.Direction),
		Body:          d.Body,
		SentAt:        d.SentAt.UTC(),
		Author:        d.Author,
		CreatedAt:     d.CreatedAt.UTC(),
	}
}

// last returns the copy of d an interaction keeps as its lastMessage: at
// most the start of a long body.
func (d *messageDoc) last() *lastMessageDoc {
	body, partial := related.InlineBody(d.Body)
	return &lastMessageDoc{ID: d.ID, Body: body, At: d.SentAt, Direction: d.Direction, Author: d.Author, Partial: partial}
}

func (d *contactDoc) domain() *related.Contact {
	return &related.Contact{
		ID:          d.ID,
		Tenant:      d.Tenant,
		Channel:     related.Channel(d.Channel),
		Address:     d.Address,
		Name:        d.Name,
		Attributes:  d.attributes(),
		ProfileID:   d.ProfileID,
		Identifiers: identifiers(d.Identifiers),
		CreatedAt:   d.CreatedAt.UTC(),
		UpdatedAt:   d.UpdatedAt.UTC(),
	}
}

func (d *contactDoc) attributes() []related.Attribute {
	out := make([]related.Attribute, len(d.Attributes))
	for i, a := range d.Attributes {
		out[i] = related.Attribute{Key: a.Key, Value: a.Value}
	}
	return out
}

func attributeDocs(attrs []related.Attribute) []attributeDoc {
	out := make([]attributeDoc, len(attrs))
	for i, a := range attrs {
		out[i] = attributeDoc{Key: a.Key, Value: a.Value}
	}
	return out
}

func sameAttributes(a, b []related.Attribute) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (d *queueDoc) domain() *related.Queue {
	return &related.Queue{ID: d.ID, Tenant: d.Tenant, Name: d.Name}
}

// fieldsOf returns doc's fields as a BSON document without the fields in
// drop: the $setOnInsert of an upsert whose filter already supplies them
// (an upsert copies its filter's equality fields into the new document).
func fieldsOf(doc any, drop ...string) (bson.D, error) {
	raw, err := bson.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", doc, err)
	}
	var d bson.D
	if err := bson.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("decode %T: %w", doc, err)
	}
	out := d[:0]
next:
	for _, e := range d {
		for _, k := range drop {
			if e.Key == k {
				continue next
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// identDoc is an identifier as the documents that list them hold it: a
// contact's links, a profile's summary.
type identDoc struct {
	Key   string `bson:"key"`
	Value string `bson:"value"`
}

func identifiers(ds []identDoc) []related.Identifier {
	if len(ds) == 0 {
		return nil
	}
	out := make([]related.Identifier, len(ds))
	for i, d := range ds {
		out[i] = related.Identifier{Key: d.Key, Value: d.Value}
	}
	return out
}

func identDocs(ids []related.Identifier) []identDoc {
	out := make([]identDoc, len(ids))
	for i, id := range ids {
		out[i] = identDoc{Key: id.Key, Value: id.Value}
	}
	return out
}

// ruleDoc is a document of the profile_rules collection: an
// identity.Rule. A deleted rule is kept (Deleted), so a deleted default
// rule stays deleted.
type ruleDoc struct {
	ID            string    `bson:"_id"`
	Tenant        string    `bson:"tenant"`
	Attribute     string    `bson:"attribute"`
	Normalizer    string    `bson:"normalizer"`
	Enabled       bool      `bson:"enabled"`
	Priority      int       `bson:"priority"`
	MaxPerProfile int       `bson:"maxPerProfile"`
	BlockedValues []string  `bson:"blockedValues"`
	DefaultRegion string    `bson:"defaultRegion"`
	Deleted       bool      `bson:"deleted"`
	CreatedAt     time.Time `bson:"createdAt"`
	UpdatedAt     time.Time `bson:"updatedAt"`
}

// profileDoc is a document of the profiles collection. Channels,
// Identifiers, ContactCount and AutoName are a summary of the profile's
// contacts and identifiers for the profile bar, rewritten after every
// change of membership by a write filtered on Version, so of two
// concurrent refreshes the one that read older state loses and re-reads.
type profileDoc struct {
	ID           string     `bson:"_id"`
	Tenant       string     `bson:"tenant"`
	CustomName   string     `bson:"customName,omitempty"`
	AutoName     string     `bson:"autoName"`
	Channels     []string   `bson:"channels"`
	Identifiers  []identDoc `bson:"identifiers"`
	ContactCount int        `bson:"contactCount"`
	// MergedInto is the profile this one was merged into: set before
	// anything of it moves, so readers and writers follow it to the root.
	MergedInto string    `bson:"mergedInto,omitempty"`
	Version    int64     `bson:"version"`
	CreatedAt  time.Time `bson:"createdAt"`
	UpdatedAt  time.Time `bson:"updatedAt"`
}

func (d *profileDoc) domain() *related.Profile {
	p := &related.Profile{
		ID:           d.ID,
		Tenant:       d.Tenant,
		CustomName:   d.CustomName,
		AutoName:     d.AutoName,
		Identifiers:  identifiers(d.Identifiers),
		ContactCount: d.ContactCount,
		MergedInto:   d.MergedInto,
		CreatedAt:    d.CreatedAt.UTC(),
		UpdatedAt:    d.UpdatedAt.UTC(),
	}
	for _, c := range d.Channels {
		p.Channels = append(p.Channels, related.Channel(c))
	}
	p.Name = p.DisplayName()
	return p
}

// identifierDoc is a document of the identifiers collection: the claim of
// one identifier by one profile. Its _id is derived from (tenant, key,
// value), so inserting it is the single-winner decision of who holds the
// identifier (DESIGN.md section 5).
type identifierDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	Key       string    `bson:"key"`
	Value     string    `bson:"value"`
	ProfileID string    `bson:"profileId"`
	CreatedAt time.Time `bson:"createdAt"`
}

// linkDoc is a document of the profile_links collection: why a contact is
// in a profile, with its provenance (related.ProfileLink).
type linkDoc struct {
	ID            string    `bson:"_id"`
	Tenant        string    `bson:"tenant"`
	ProfileID     string    `bson:"profileId"`
	ContactID     string    `bson:"contactId"`
	Reason        string    `bson:"reason"`
	Key           string    `bson:"key"`
	Value         string    `bson:"value"`
	RuleID        string    `bson:"ruleId"`
	Source        string    `bson:"source"`
	InteractionID string    `bson:"interactionId"`
	By            string    `bson:"by"`
	LinkedAt      time.Time `bson:"linkedAt"`
}

func (d *linkDoc) domain() *related.ProfileLink {
	return &related.ProfileLink{
		ID: d.ID, Tenant: d.Tenant, ProfileID: d.ProfileID, ContactID: d.ContactID,
		Reason: related.LinkReason(d.Reason), Key: d.Key, Value: d.Value, RuleID: d.RuleID,
		Source: d.Source, InteractionID: d.InteractionID, By: d.By, LinkedAt: d.LinkedAt.UTC(),
	}
}

// mergeDoc is a document of the merges collection: profile Loser merged
// into Winner. Its _id is derived from (tenant, loser), so a profile is
// merged away at most once; Done is set when everything of the loser has
// moved, and a merge found not done is finished again (idempotently).
type mergeDoc struct {
	ID     string    `bson:"_id"`
	Tenant string    `bson:"tenant"`
	Loser  string    `bson:"loser"`
	Winner string    `bson:"winner"`
	By     string    `bson:"by"`
	At     time.Time `bson:"at"`
	Done   bool      `bson:"done"`
}

// doNotLinkDoc is a document of the do_not_link collection: the rules
// must not link the contact into the profile again.
type doNotLinkDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	ContactID string    `bson:"contactId"`
	ProfileID string    `bson:"profileId"`
	By        string    `bson:"by"`
	CreatedAt time.Time `bson:"createdAt"`
}

// conflictDoc is a document of the profile_conflicts collection. OpenKey
// is derived from what the conflict is about while it is open (unique, so
// the same conflict is recorded once) and becomes the document's own id
// when it is resolved. Pair is the two profiles' ids in order, so the
// conflicts between two profiles are found whichever came first.
type conflictDoc struct {
	ID         string     `bson:"_id"`
	Tenant     string     `bson:"tenant"`
	Key        string     `bson:"key"`
	Value      string     `bson:"value"`
	Reason     string     `bson:"reason"`
	ProfileA   string     `bson:"profileA"`
	ProfileB   string     `bson:"profileB"`
	Pair       string     `bson:"pair"`
	ContactID  string     `bson:"contactId"`
	OpenKey    string     `bson:"openKey"`
	Resolved   bool       `bson:"resolved"`
	CreatedAt  time.Time  `bson:"createdAt"`
	ResolvedAt *time.Time `bson:"resolvedAt,omitempty"`
}

func (d *conflictDoc) domain() *related.ProfileConflict {
	c := &related.ProfileConflict{
		ID: d.ID, Tenant: d.Tenant, Key: d.Key, Value: d.Value, Reason: d.Reason,
		ContactID: d.ContactID, CreatedAt: d.CreatedAt.UTC(),
	}
	for _, p := range []string{d.ProfileA, d.ProfileB} {
		if p != "" {
			c.ProfileIDs = append(c.ProfileIDs, p)
		}
	}
	if d.ResolvedAt != nil {
		c.ResolvedAt = d.ResolvedAt.UTC()
	}
	return c
}

// evaluationDoc is a document of the rule_evaluations collection: one per
// tenant, the progress of re-evaluating its contacts in _id order. Run
// changes whenever an evaluation (re)starts, so a batch of an older run
// cannot record progress over a newer one.
type evaluationDoc struct {
	ID        string    `bson:"_id"`
	Tenant    string    `bson:"tenant"`
	Run       string    `bson:"run"`
	State     string    `bson:"state"`
	Processed int       `bson:"processed"`
	Total     int       `bson:"total"`
	AfterID   string    `bson:"afterId"`
	StartedAt time.Time `bson:"startedAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

func (d *evaluationDoc) domain() *related.RuleEvaluation {
	return &related.RuleEvaluation{
		Tenant: d.Tenant, State: d.State, Processed: d.Processed, Total: d.Total,
		StartedAt: d.StartedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
	}
}
