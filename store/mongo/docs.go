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
	ID            string         `bson:"_id"`
	Tenant        string         `bson:"tenant"`
	Channel       string         `bson:"channel"`
	Address       string         `bson:"address"`
	AddressStatus string         `bson:"addressStatus,omitempty"` // "" is VALID (documents of older versions)
	Name          string         `bson:"name,omitempty"`
	Attributes    []attributeDoc `bson:"attributes"`
	ProfileID     string         `bson:"profileId,omitempty"`
	// FirstInteraction is the interaction the contact was first seen in:
	// the provenance of its address.
	FirstInteraction string `bson:"firstInteraction,omitempty"`
	// ClaimsSig is the digest of the claims the contact's stored values
	// (contact_values) were last synced to and its clusters recomputed
	// with (claimsSig in link.go): a write that leaves it unchanged has
	// nothing to relink.
	ClaimsSig string `bson:"claimsSig,omitempty"`
	// Dirty holds the markers of the writes that changed the contact's
	// facts and have not finished relinking it: "<ms since epoch, 15
	// digits>/<token>", so that markers older than a time sort before it
	// (link.go, recovery).
	Dirty []string `bson:"dirty,omitempty"`
	// EvaluationMark is the mark of the rule evaluation whose second phase
	// must decide the contact's cluster though it holds no value of the
	// attributes re-evaluated (it lost them in the first phase).
	EvaluationMark string `bson:"evaluationMark,omitempty"`
	// Version counts the adapter's read-modify-write updates of the
	// attributes: each one is filtered on the version it read, so on
	// MongoDB a concurrent writer's change is never overwritten.
	Version   int64     `bson:"version"`
	CreatedAt time.Time `bson:"createdAt"`
	UpdatedAt time.Time `bson:"updatedAt"`
}

// attributeDoc is one contact attribute with its provenance. Attributes
// are an array of {key, value} rather than a sub-document so they keep
// their order and any key is safe (a sub-document's keys may not hold
// dots or start with $). Documents of older versions have no provenance:
// they decode as claimed, by nobody.
type attributeDoc struct {
	Key         string    `bson:"key"`
	Value       string    `bson:"value"`
	Attested    bool      `bson:"attested,omitempty"`
	By          string    `bson:"by,omitempty"`
	Role        string    `bson:"role,omitempty"`
	Interaction string    `bson:"interactionId,omitempty"`
	At          time.Time `bson:"at,omitempty"`
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
	status := related.AddressStatus(d.AddressStatus)
	if status == "" {
		status = related.AddressValid
	}
	return &related.Contact{
		ID:                 d.ID,
		Tenant:             d.Tenant,
		Channel:            related.Channel(d.Channel),
		Address:            d.Address,
		AddressStatus:      status,
		Name:               d.Name,
		Attributes:         d.attributes(),
		ProfileID:          d.ProfileID,
		FirstInteractionID: d.FirstInteraction,
		ClaimsSig:          d.ClaimsSig,
		CreatedAt:          d.CreatedAt.UTC(),
		UpdatedAt:          d.UpdatedAt.UTC(),
	}
}

func (d *contactDoc) attributes() []related.Attribute {
	out := make([]related.Attribute, len(d.Attributes))
	for i, a := range d.Attributes {
		out[i] = related.Attribute{Key: a.Key, Value: a.Value, Attested: a.Attested, By: a.By, Role: a.Role,
			InteractionID: a.Interaction, At: a.At.UTC()}
		if a.At.IsZero() {
			out[i].At = time.Time{}
		}
	}
	return out
}

func attributeDocs(attrs []related.Attribute) []attributeDoc {
	out := make([]attributeDoc, len(attrs))
	for i, a := range attrs {
		out[i] = attributeDoc{Key: a.Key, Value: a.Value, Attested: a.Attested, By: a.By, Role: a.Role,
			Interaction: a.InteractionID, At: a.At.UTC().Truncate(time.Millisecond)}
		if a.At.IsZero() {
			out[i].At = time.Time{}
		}
	}
	return out
}

// sameFacts reports whether a and b state the same facts in the same
// order (provenance aside: related.Attribute.SameFact).
func sameFacts(a, b []related.Attribute) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].SameFact(b[i]) {
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
