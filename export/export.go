// Package export writes everything the gateway keeps about one person, for
// a subject-access request: the profile, its contacts with their
// attributes, and every interaction with every message, as newline
// delimited JSON. It streams: pages are read and written one at a time, so
// memory does not grow with the person's history.
package export

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// The records of an export, one JSON object per line, told apart by type.
type (
	profileRecord struct {
		Type        string       `json:"type"`
		ID          string       `json:"id"`
		Name        string       `json:"name"`
		Channels    []string     `json:"channels"`
		Identifiers []identifier `json:"identifiers"`
		ExportedAt  time.Time    `json:"exportedAt"`
	}
	identifier struct {
		Key    string `json:"key"`
		Value  string `json:"value"`
		Source string `json:"source"`
	}
	contactRecord struct {
		Type          string      `json:"type"`
		ID            string      `json:"id"`
		Channel       string      `json:"channel"`
		Address       string      `json:"address"`
		AddressStatus string      `json:"addressStatus"`
		Name          string      `json:"name,omitempty"`
		Attributes    []attribute `json:"attributes"`
		CreatedAt     time.Time   `json:"createdAt"`
	}
	attribute struct {
		Key    string     `json:"key"`
		Value  string     `json:"value"`
		Source string     `json:"source"`
		By     string     `json:"by,omitempty"`
		SetAt  *time.Time `json:"setAt,omitempty"`
	}
	interactionRecord struct {
		Type        string     `json:"type"`
		ID          string     `json:"id"`
		ContactID   string     `json:"contactId"`
		Channel     string     `json:"channel"`
		ThreadRef   string     `json:"threadRef"`
		Queue       string     `json:"queue,omitempty"`
		Status      string     `json:"status"`
		ClosedState string     `json:"closedState,omitempty"`
		ClosedAt    *time.Time `json:"closedAt,omitempty"`
		CreatedAt   time.Time  `json:"createdAt"`
	}
	messageRecord struct {
		Type          string    `json:"type"`
		ID            string    `json:"id"`
		InteractionID string    `json:"interactionId"`
		Direction     string    `json:"direction"`
		Body          string    `json:"body"`
		SentAt        time.Time `json:"sentAt"`
		Author        string    `json:"author,omitempty"`
	}
)

// Profile writes the profile profileID names (a global or a store id; a
// stale id leads to its current profile) to w. It returns a NOT_FOUND
// *related.Error, before writing anything, when there is none.
func Profile(ctx context.Context, s store.Store, tenant, profileID string, now time.Time, w io.Writer) error {
	if t, id, err := related.ParseGlobalID(profileID); err == nil && t == related.NodeProfile {
		profileID = id
	}
	p, err := current(ctx, s, tenant, profileID)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	pr := profileRecord{Type: "profile", ID: related.GlobalID(related.NodeProfile, p.ID), Name: p.Name, ExportedAt: now.UTC(),
		Channels: []string{}, Identifiers: []identifier{}}
	for _, c := range p.Channels {
		pr.Channels = append(pr.Channels, string(c))
	}
	for _, id := range p.Identifiers {
		pr.Identifiers = append(pr.Identifiers, identifier{id.Key, id.Value, source(id.Attested)})
	}
	if err := enc.Encode(pr); err != nil {
		return fmt.Errorf("export: write: %w", err)
	}
	contacts, err := s.ProfileContacts(ctx, tenant, []string{p.ID})
	if err != nil {
		return err
	}
	for _, c := range contacts {
		cr := contactRecord{Type: "contact", ID: related.GlobalID(related.NodeContact, c.ID), Channel: string(c.Channel), Address: c.Address,
			AddressStatus: string(c.AddressStatus), Name: c.Name, Attributes: []attribute{}, CreatedAt: c.CreatedAt}
		for _, a := range c.Attributes {
			ar := attribute{Key: a.Key, Value: a.Value, Source: source(a.Attested), By: related.Actor{Name: a.By, Role: a.Role}.String()}
			if !a.At.IsZero() {
				at := a.At
				ar.SetAt = &at
			}
			cr.Attributes = append(cr.Attributes, ar)
		}
		if err := enc.Encode(cr); err != nil {
			return fmt.Errorf("export: write: %w", err)
		}
	}
	q := store.RelatedQuery{ProfileID: p.ID}
	page := store.Page{First: store.MaxPageSize}
	for {
		its, err := s.ListRelated(ctx, tenant, q, page)
		if err != nil {
			return err
		}
		for _, it := range its.Items {
			if err := interaction(ctx, s, tenant, it, enc); err != nil {
				return err
			}
		}
		if !its.HasNextPage || len(its.Items) == 0 {
			return nil
		}
		c := store.InteractionCursor(its.Items[len(its.Items)-1])
		page.After = &c
	}
}

// current returns the profile id leads to now.
func current(ctx context.Context, s store.Store, tenant, id string) (*related.Profile, error) {
	for range 4 {
		ps, err := s.Profiles(ctx, tenant, []string{id})
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			break
		}
		if ps[0].MergedInto == "" {
			return ps[0], nil
		}
		id = ps[0].MergedInto
	}
	return nil, related.NotFound("no such profile", "id")
}

// interaction writes one interaction and all its messages, oldest first.
func interaction(ctx context.Context, s store.Store, tenant string, it *related.Interaction, enc *json.Encoder) error {
	ir := interactionRecord{Type: "interaction", ID: related.GlobalID(related.NodeInteraction, it.ID),
		ContactID: related.GlobalID(related.NodeContact, it.ContactID), Channel: string(it.Channel), ThreadRef: it.ThreadRef,
		Queue: it.QueueName, Status: string(it.Status), ClosedState: string(it.ClosedState), CreatedAt: it.CreatedAt}
	if !it.ClosedAt.IsZero() {
		at := it.ClosedAt
		ir.ClosedAt = &at
	}
	if err := enc.Encode(ir); err != nil {
		return fmt.Errorf("export: write: %w", err)
	}
	page := store.Page{First: store.MaxPageSize}
	for {
		ms, err := s.ListMessages(ctx, tenant, it.ID, page, true)
		if err != nil {
			return err
		}
		for _, m := range ms.Items {
			if err := enc.Encode(messageRecord{Type: "message", ID: related.GlobalID(related.NodeMessage, m.ID),
				InteractionID: ir.ID, Direction: string(m.Direction), Body: m.Body, SentAt: m.SentAt, Author: m.Author}); err != nil {
				return fmt.Errorf("export: write: %w", err)
			}
		}
		if !ms.HasNextPage || len(ms.Items) == 0 {
			return nil
		}
		c := store.MessageCursor(ms.Items[len(ms.Items)-1])
		page.After = &c
	}
}

func source(attested bool) string {
	if attested {
		return "ATTESTED"
	}
	return "CLAIMED"
}
