package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

const interactionCols = `id, tenant, channel, thread_ref, contact_id, profile_id, queue_id, queue_name,
	status, closed_state, closed_at, last_id, last_body, last_partial, last_direction, last_author, last_at, created_at, updated_at`

const contactCols = `id, tenant, channel, address, name, attributes, profile_id, created_at, updated_at, address_status, first_interaction, claims_sig`

const messageCols = `id, tenant, interaction_id, direction, body, sent_at, author, created_at`

// messageColsWithoutBody reads messages as messageCols does, with an
// empty body.
const messageColsWithoutBody = `id, tenant, interaction_id, direction, '' AS body, sent_at, author, created_at`

type scanner interface{ Scan(dest ...any) error }

// The scan helpers come in two steps, the destinations and the finish, so
// that a joined row can scan several documents in one Scan (see panel.go).

func interactionScan() ([]any, func() (*related.Interaction, error)) {
	var (
		i                                  related.Interaction
		closedAt, lastAt, created, updated int64
		lastID, lastBody, lastDir, lastBy  string
		lastPartial                        bool
	)
	dest := []any{&i.ID, &i.Tenant, &i.Channel, &i.ThreadRef, &i.ContactID, &i.ProfileID, &i.QueueID, &i.QueueName,
		&i.Status, &i.ClosedState, &closedAt, &lastID, &lastBody, &lastPartial, &lastDir, &lastBy, &lastAt, &created, &updated}
	return dest, func() (*related.Interaction, error) {
		i.ClosedAt, i.CreatedAt, i.UpdatedAt = fromMS(closedAt), fromMS(created), fromMS(updated)
		if lastID != "" {
			i.LastMessage = &related.Message{
				ID: lastID, Tenant: i.Tenant, InteractionID: i.ID, Direction: related.Direction(lastDir),
				Body: lastBody, SentAt: fromMS(lastAt), Author: lastBy, Partial: lastPartial,
			}
		}
		return &i, nil
	}
}

func scanInteraction(r scanner) (*related.Interaction, error) {
	dest, finish := interactionScan()
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	return finish()
}

func contactScan() ([]any, func() (*related.Contact, error)) {
	var (
		c                related.Contact
		attrs            string
		created, updated int64
	)
	dest := []any{&c.ID, &c.Tenant, &c.Channel, &c.Address, &c.Name, &attrs, &c.ProfileID, &created, &updated,
		&c.AddressStatus, &c.FirstInteractionID, &c.ClaimsSig}
	return dest, func() (*related.Contact, error) {
		c.CreatedAt, c.UpdatedAt = fromMS(created), fromMS(updated)
		var err error
		if c.Attributes, err = decodeAttributes(attrs); err != nil {
			return nil, fmt.Errorf("contact %s: %w", c.ID, err)
		}
		return &c, nil
	}
}

func scanContact(r scanner) (*related.Contact, error) {
	dest, finish := contactScan()
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	return finish()
}

func scanMessage(r scanner) (*related.Message, error) {
	var (
		m             related.Message
		sent, created int64
	)
	if err := r.Scan(&m.ID, &m.Tenant, &m.InteractionID, &m.Direction, &m.Body, &sent, &m.Author, &created); err != nil {
		return nil, err
	}
	m.SentAt, m.CreatedAt = fromMS(sent), fromMS(created)
	return &m, nil
}

// attribute is the stored JSON form of related.Attribute. Rows written
// before provenance was kept decode with none (claimed, by nobody).
type attribute struct {
	Key         string `json:"k"`
	Value       string `json:"v"`
	Attested    bool   `json:"a,omitempty"`
	By          string `json:"by,omitempty"`
	Role        string `json:"r,omitempty"`
	Interaction string `json:"i,omitempty"`
	At          int64  `json:"t,omitempty"`
}

func encodeAttributes(attrs []related.Attribute) string {
	out := make([]attribute, len(attrs))
	for i, a := range attrs {
		out[i] = attribute{a.Key, a.Value, a.Attested, a.By, a.Role, a.InteractionID, ms(a.At)}
	}
	b, _ := json.Marshal(out) // plain strings, bools and numbers always marshal
	return string(b)
}

func decodeAttributes(s string) ([]related.Attribute, error) {
	var in []attribute
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode attributes: %w", err)
	}
	out := make([]related.Attribute, len(in))
	for i, a := range in {
		out[i] = related.Attribute{Key: a.Key, Value: a.Value, Attested: a.Attested, By: a.By, Role: a.Role,
			InteractionID: a.Interaction, At: fromMS(a.At)}
	}
	return out, nil
}

// RecordMessage implements store.Store. It is one transaction: the
// contact, the queue, the interaction, the message and the linking they
// cause are all stored or none is.
func (s *Store) RecordMessage(ctx context.Context, tenant string, in related.RecordMessage) (*store.RecordResult, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var res *store.RecordResult
	newQueue := ""
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		res = &store.RecordResult{}
		msgID := related.NewID()
		if in.ClientMutationID != "" {
			msgID = related.DerivedID(tenant, "message", in.ClientMutationID)
			dup, err := s.duplicate(ctx, tx, tenant, msgID)
			if err != nil || dup != nil {
				res = dup
				return nil, err
			}
		}
		settings, err := s.settings(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		if res.Warnings, err = in.CanonicalizeAddress(settings.DefaultRegion); err != nil {
			return nil, err
		}
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		if err := identity.CheckAttributes(rules, in.Contact.Attributes); err != nil {
			return nil, err.At("contact")
		}
		contactID := related.ContactID(tenant, in.Channel, in.Contact.Address)
		var queueID string
		if in.Queue != "" {
			queueID = related.DerivedID(tenant, "queue", in.Queue)
			// Queues are never deleted: once this process has stored one,
			// later messages skip the statement.
			if _, known := s.queues.Load(queueID); !known {
				if _, err := s.exec(ctx, tx, `INSERT INTO queues (tenant, id, name) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
					tenant, queueID, in.Queue); err != nil {
					return nil, fmt.Errorf("sqlite: upsert queue: %w", err)
				}
				newQueue = queueID
			}
		}
		// The interaction first, so the contact's provenance can name it;
		// a new interaction takes its contact's profile, if any.
		newID := related.NewID()
		inline, partial := related.InlineBody(in.Body) // the interaction keeps at most the start of a long body
		row := s.queryRow(ctx, tx, `INSERT INTO interactions (tenant, id, channel, thread_ref, open_key, contact_id, profile_id,
				queue_id, queue_name, status, last_id, last_body, last_partial, last_direction, last_author, last_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, coalesce((SELECT profile_id FROM contacts WHERE tenant = ? AND id = ?), ''),
				?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, open_key) DO UPDATE SET
				last_id        = CASE WHEN excluded.last_at >= interactions.last_at THEN excluded.last_id ELSE interactions.last_id END,
				last_body      = CASE WHEN excluded.last_at >= interactions.last_at THEN excluded.last_body ELSE interactions.last_body END,
				last_partial   = CASE WHEN excluded.last_at >= interactions.last_at THEN excluded.last_partial ELSE interactions.last_partial END,
				last_direction = CASE WHEN excluded.last_at >= interactions.last_at THEN excluded.last_direction ELSE interactions.last_direction END,
				last_author    = CASE WHEN excluded.last_at >= interactions.last_at THEN excluded.last_author ELSE interactions.last_author END,
				last_at        = max(excluded.last_at, interactions.last_at),
				queue_id       = CASE WHEN excluded.queue_id <> '' THEN excluded.queue_id ELSE interactions.queue_id END,
				queue_name     = CASE WHEN excluded.queue_id <> '' THEN excluded.queue_name ELSE interactions.queue_name END,
				updated_at     = excluded.updated_at
			RETURNING `+interactionCols,
			tenant, newID, in.Channel, in.ThreadRef, related.OpenKey(in.Channel, in.ThreadRef), contactID, tenant, contactID,
			queueID, in.Queue, related.StatusOpen, msgID, inline, partial, in.Direction, in.Author, ms(in.SentAt), ms(related.Began(in.SentAt, now)), ms(now))
		if res.Interaction, err = scanInteraction(row); err != nil {
			return nil, fmt.Errorf("sqlite: upsert interaction: %w", err)
		}
		res.Created = res.Interaction.ID == newID
		c, err := s.upsertContact(ctx, tx, tenant, contactID, in, res.Interaction.ID, now)
		if err != nil {
			return nil, err
		}
		res.Contact = c
		res.Message = &related.Message{
			ID: msgID, Tenant: tenant, InteractionID: res.Interaction.ID, Direction: in.Direction,
			Body: in.Body, SentAt: in.SentAt, Author: in.Author, CreatedAt: now,
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO messages (`+messageCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			msgID, tenant, res.Interaction.ID, in.Direction, in.Body, ms(in.SentAt), in.Author, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: insert message: %w", err)
		}
		// Link the contact by what it brings; a change of profile moves
		// its interactions, this one included.
		linkEvents, err := s.linkContact(ctx, tx, tenant, c, in.By, now)
		if err != nil {
			return nil, err
		}
		res.Interaction.ProfileID = c.ProfileID
		kind := store.InteractionUpdated
		if res.Created {
			kind = store.InteractionCreated
		}
		return append([]store.Event{interactionEvent(kind, res.Interaction, now)}, linkEvents...), nil
	})
	if err != nil {
		return nil, err
	}
	if newQueue != "" {
		// Remembered only once committed, so a rolled-back insert is
		// retried next time.
		s.queues.Store(newQueue, true)
	}
	return res, nil
}

// duplicate returns the result of the earlier recording of message id, or
// nil when there was none.
func (s *Store) duplicate(ctx context.Context, tx *sql.Tx, tenant, id string) (*store.RecordResult, error) {
	m, err := scanMessage(s.queryRow(ctx, tx, `SELECT `+messageCols+` FROM messages WHERE tenant = ? AND id = ?`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find message: %w", err)
	}
	i, err := scanInteraction(s.queryRow(ctx, tx, `SELECT `+interactionCols+` FROM interactions WHERE tenant = ? AND id = ?`, tenant, m.InteractionID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: find interaction of message: %w", err)
	}
	c, err := scanContact(s.queryRow(ctx, tx, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND id = ?`, tenant, i.ContactID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: find contact of message: %w", err)
	}
	return &store.RecordResult{Interaction: i, Message: m, Contact: c, Duplicate: true}, nil
}

// upsertContact finds or creates the contact of in, updating its name and
// attributes with what in brings. interactionID is the provenance of what
// it learns.
func (s *Store) upsertContact(ctx context.Context, tx *sql.Tx, tenant, id string, in related.RecordMessage, interactionID string, now time.Time) (*related.Contact, error) {
	set := related.WithProvenance(in.Contact.Attributes, interactionID, now)
	attrs := related.MergeAttributes(nil, set)
	status := in.Contact.AddressStatus
	if status == "" {
		status = related.AddressValid
	}
	// A name given wins; a name the address carried fills only a blank.
	name, fallback := in.Contact.Name, in.Contact.FallbackName
	if name == "" {
		name = fallback
	}
	c, err := scanContact(s.queryRow(ctx, tx, `INSERT INTO contacts (`+contactCols+`) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, '')
		ON CONFLICT (tenant, channel, address) DO UPDATE SET
			name       = CASE WHEN ? <> '' THEN ? WHEN contacts.name = '' THEN excluded.name ELSE contacts.name END,
			updated_at = CASE WHEN excluded.name <> '' AND excluded.name <> contacts.name AND (? <> '' OR contacts.name = '')
				THEN excluded.updated_at ELSE contacts.updated_at END
		RETURNING `+contactCols,
		id, tenant, in.Channel, in.Contact.Address, name, encodeAttributes(attrs), ms(now), ms(now), status, interactionID,
		in.Contact.Name, in.Contact.Name, in.Contact.Name))
	if err != nil {
		return nil, fmt.Errorf("sqlite: upsert contact: %w", err)
	}
	if len(set) == 0 {
		return c, nil
	}
	merged := related.MergeAttributes(c.Attributes, set)
	if slices.EqualFunc(merged, c.Attributes, related.Attribute.SameFact) {
		return c, nil
	}
	if _, err := s.exec(ctx, tx, `UPDATE contacts SET attributes = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		encodeAttributes(merged), ms(now), tenant, c.ID); err != nil {
		return nil, fmt.Errorf("sqlite: update contact attributes: %w", err)
	}
	c.Attributes, c.UpdatedAt = merged, now
	return c, nil
}

func interactionEvent(kind store.EventKind, i *related.Interaction, now time.Time) store.Event {
	return store.Event{
		ID: related.NewID(), Tenant: i.Tenant, Kind: kind, InteractionID: i.ID,
		ContactID: i.ContactID, ProfileID: i.ProfileID, At: now,
	}
}

// CloseInteraction implements store.Store.
func (s *Store) CloseInteraction(ctx context.Context, tenant, id string, state related.ClosedState, at time.Time) (*related.Interaction, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Interaction
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		var err error
		out, err = scanInteraction(s.queryRow(ctx, tx, `UPDATE interactions
			SET status = ?, closed_state = ?, closed_at = ?, open_key = 'closed:' || id, updated_at = ?
			WHERE tenant = ? AND id = ? RETURNING `+interactionCols,
			related.StatusClosed, state, ms(at.UTC().Truncate(time.Millisecond)), ms(now), tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, related.NotFound("no such interaction", "id")
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: close interaction: %w", err)
		}
		return []store.Event{interactionEvent(store.InteractionUpdated, out, now)}, nil
	})
	return out, err
}

// ReopenInteraction implements store.Store.
func (s *Store) ReopenInteraction(ctx context.Context, tenant, id string) (*related.Interaction, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Interaction
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		cur, err := scanInteraction(s.queryRow(ctx, tx, `SELECT `+interactionCols+` FROM interactions WHERE tenant = ? AND id = ?`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, related.NotFound("no such interaction", "id")
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: find interaction: %w", err)
		}
		if cur.Status == related.StatusOpen {
			out = cur
			return nil, nil
		}
		out, err = scanInteraction(s.queryRow(ctx, tx, `UPDATE interactions
			SET status = ?, closed_state = '', closed_at = 0, open_key = ?, updated_at = ?
			WHERE tenant = ? AND id = ? RETURNING `+interactionCols,
			related.StatusOpen, related.OpenKey(cur.Channel, cur.ThreadRef), ms(now), tenant, id))
		if isUnique(err) {
			return nil, &related.Error{Code: related.CodeConflict, Field: []string{"id"},
				Message: "another interaction of this thread is open; close it first"}
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: reopen interaction: %w", err)
		}
		return []store.Event{interactionEvent(store.InteractionUpdated, out, now)}, nil
	})
	return out, err
}

// SetContactAttributes implements store.Store.
func (s *Store) SetContactAttributes(ctx context.Context, tenant, id string, attrs []related.Attribute, by related.Actor) (*related.Contact, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Contact
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		if err := identity.CheckAttributes(rules, attrs); err != nil {
			return nil, err
		}
		c, err := s.contactByID(ctx, tx, tenant, id)
		if err != nil {
			return nil, err
		}
		c.Attributes = related.MergeAttributes(c.Attributes, related.WithProvenance(attrs, "", now))
		c.UpdatedAt = now
		if _, err := s.exec(ctx, tx, `UPDATE contacts SET attributes = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
			encodeAttributes(c.Attributes), ms(now), tenant, id); err != nil {
			return nil, fmt.Errorf("sqlite: update contact: %w", err)
		}
		linkEvents, err := s.linkContact(ctx, tx, tenant, c, by, now)
		if err != nil {
			return nil, err
		}
		out = c
		return append([]store.Event{{ID: related.NewID(), Tenant: tenant, Kind: store.ContactUpdated, ContactID: c.ID, ProfileID: c.ProfileID, At: now}}, linkEvents...), nil
	})
	return out, err
}
