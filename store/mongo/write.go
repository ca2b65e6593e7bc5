package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// maxVersionRetries bounds the optimistic retries of a contact's
// read-modify-write: more concurrent writers than this on one contact is a
// fault worth reporting, not spinning on.
const maxVersionRetries = 8

// RecordMessage stores a message. Without transactions the steps are
// ordered so that a crash between two of them leaves a state that readers
// can live with and that a retry with the same ClientMutationID (or the
// recovery of link.go) repairs:
//
//  1. the address is put in canonical form under the tenant's region, and
//     with a ClientMutationID a repeat is answered from the stored message;
//  2. the contact is upserted on its derived _id before any interaction
//     points at it; a new contact with claims is marked dirty in the same
//     write (link.go);
//  3. the queue, when named, is upserted on its derived _id before any
//     interaction points at it;
//  4. the thread's open interaction is found or created by one
//     findAndModify upsert on {tenant, openKey}, which the unique index
//     makes a single winner; a new one carries this message as its
//     lastMessage already, and its contact's profile as read in step 2;
//  5. an existing contact's name and attributes are updated when they
//     change (with the interaction as their provenance); a change that
//     matters to linking adds a dirty marker in the same write;
//  6. the message is inserted (a repeated ClientMutationID is a
//     duplicate _id: the repeat is answered as in step 1);
//  7. an existing interaction's lastMessage and lastAt are set only when
//     this message is not older than the current one (the filter decides,
//     so out-of-order deliveries never move it backwards), and its queue
//     when one is named; a new one follows its contact if the contact
//     moved since step 2 (follow);
//  8. when the contact's claims changed (or another write left them
//     unlinked), the contact is relinked (link.go), which moves its
//     interactions when its profile changes, and its marker is removed.
//
// A crash between 4 and 6 leaves a new interaction whose lastMessage copy
// has no message document yet; one between 6 and 7 leaves a stored message
// that is not yet the interaction's lastMessage. The retry inserts the
// message under the same derived id, or finds it and finishes step 7; a
// crash during 8 leaves the contact marked, and the recovery relinks it.
func (s *Store) RecordMessage(ctx context.Context, tenant string, in related.RecordMessage) (*store.RecordResult, error) {
	ts := now()
	settings, err := s.settings(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}
	warnings, err := in.CanonicalizeAddress(settings.DefaultRegion)
	if err != nil {
		return nil, err
	}
	contactID := related.ContactID(tenant, in.Channel, in.Contact.Address)
	msgID := related.NewID()
	if in.ClientMutationID != "" {
		msgID = related.DerivedID(tenant, "message", in.ClientMutationID)
		res, err := s.repeat(ctx, tenant, msgID, ts)
		if err != nil || res != nil {
			return res, err
		}
	}
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}
	if err := identity.CheckAttributes(rules, in.Contact.Attributes); err != nil {
		return nil, err.At("contact")
	}

	m := &messageDoc{
		ID: msgID, Tenant: tenant, Direction: string(in.Direction), Body: in.Body,
		SentAt: in.SentAt.UTC().Truncate(time.Millisecond), Author: in.Author, CreatedAt: ts,
	}
	fresh := &interactionDoc{
		ID: related.NewID(), Tenant: tenant, Channel: string(in.Channel), ThreadRef: in.ThreadRef,
		OpenKey: related.OpenKey(in.Channel, in.ThreadRef), ContactID: contactID,
		Status: string(related.StatusOpen), LastMessage: m.last(), LastAt: m.SentAt,
		CreatedAt: related.Began(m.SentAt, ts), UpdatedAt: ts,
	}
	// A new contact names the interaction this message will most likely
	// create as the provenance of what it brings.
	contact, contactCreated, marker, err := s.upsertContact(ctx, tenant, contactID, in, fresh.ID, rules, ts)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}

	var queueID string
	if in.Queue != "" {
		queueID = related.DerivedID(tenant, "queue", in.Queue)
		if err := s.upsertQueue(ctx, tenant, queueID, in.Queue); err != nil {
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
	}

	fresh.QueueID, fresh.QueueName, fresh.ProfileID = queueID, in.Queue, contact.ProfileID
	it, created, err := s.openInteraction(ctx, fresh)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}
	wrote := false
	switch {
	case !contactCreated:
		next, mk, err := s.updateContact(ctx, contact, in.Contact.Name, in.Contact.FallbackName,
			related.WithProvenance(in.Contact.Attributes, it.ID, ts), rules, ts)
		if err != nil {
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
		wrote, contact, marker = next != contact, next, mk
	case !created:
		// The thread had an open interaction already: the new contact's
		// provenance names it instead.
		if err := s.renameProvenance(ctx, contact, it.ID, in.Contact.Attributes, ts); err != nil {
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
	}

	m.InteractionID = it.ID
	if _, err := s.messages.InsertOne(ctx, m); err != nil {
		if in.ClientMutationID != "" && isDuplicate(err) {
			// The same clientMutationId raced this call and won.
			res, rerr := s.repeat(ctx, tenant, msgID, ts)
			if rerr != nil || res != nil {
				return res, rerr
			}
		}
		return nil, fmt.Errorf("mongo: record message: insert message: %w", err)
	}

	switch {
	case !created:
		if it, err = s.applyMessage(ctx, it, m, queueID, in.Queue, ts); err != nil {
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
	case !contactCreated:
		// The interaction took the contact's profile as read before it was
		// inserted; read it again (unless step 5 just did) and follow a
		// move. A new contact moves first in its own relink below, which
		// moves this interaction with it.
		if !wrote {
			if contact, err = s.contactByID(ctx, tenant, contact.ID); err != nil {
				return nil, fmt.Errorf("mongo: record message: %w", err)
			}
		}
		if err := s.follow(ctx, it, fresh.ProfileID, contact.ProfileID, ts); err != nil {
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
	}

	var linkEvents []store.Event
	if marker != "" || sigOf(rules, contact) != contact.ClaimsSig {
		var markers map[string][]string
		if marker != "" {
			markers = map[string][]string{contact.ID: {marker}}
		}
		var assign map[string]string
		linkEvents, assign, err = s.relink(ctx, tenant, []string{contact.ID}, markers, in.By, ts)
		if err != nil {
			s.publishEvents(ctx, linkEvents)
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
		contact.ProfileID = assign[contact.ID]
		if it.ContactID == contact.ID {
			it.ProfileID = contact.ProfileID
		}
	}

	kind := store.InteractionUpdated
	if created {
		kind = store.InteractionCreated
	}
	s.publishEvents(ctx, append([]store.Event{{
		ID: related.NewID(), Tenant: tenant, Kind: kind,
		InteractionID: it.ID, ContactID: it.ContactID, ProfileID: it.ProfileID, At: ts,
	}}, linkEvents...))
	return &store.RecordResult{
		Interaction: it.domain(),
		Message:     m.domain(),
		Contact:     contact.domain(),
		Created:     created,
		Warnings:    warnings,
	}, nil
}

// follow moves a new interaction, inserted with profile p0 (its
// contact's as read before the insert), to its contact's profile p as read
// after the insert, where it still has p0. A recompute that moved the
// contact meanwhile moves the contact first and then its interactions: if
// that came after the insert, the interaction has moved already and the
// filter leaves it; if before, this move is the one it needed. Either way
// no move of a later recompute is undone (see link.go).
func (s *Store) follow(ctx context.Context, it *interactionDoc, p0, p string, ts time.Time) error {
	if p == p0 {
		return nil
	}
	filter := bson.D{{Key: "_id", Value: it.ID}, {Key: "tenant", Value: it.Tenant}, {Key: "profileId", Value: p0}}
	if p0 == "" {
		filter[2].Value = bson.D{{Key: "$exists", Value: false}}
	}
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: p}, {Key: "updatedAt", Value: ts}}}}
	if p == "" {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: "profileId", Value: ""}}}, {Key: "$set", Value: bson.D{{Key: "updatedAt", Value: ts}}}}
	}
	res, err := s.interactions.UpdateOne(ctx, filter, update)
	if err != nil {
		return fmt.Errorf("interaction %s follows its contact: %w", it.ID, err)
	}
	if res.MatchedCount == 1 {
		it.ProfileID = p
	}
	return nil
}

// renameProvenance makes a contact this message created name interaction
// id as where it was first seen and where its attributes came from, if no
// other write changed it since.
func (s *Store) renameProvenance(ctx context.Context, c *contactDoc, id string, attrs []related.Attribute, ts time.Time) error {
	set := bson.D{{Key: "firstInteraction", Value: id},
		{Key: "attributes", Value: attributeDocs(related.MergeAttributes(nil, related.WithProvenance(attrs, id, ts)))}}
	if _, err := s.contacts.UpdateOne(ctx, bson.D{{Key: "_id", Value: c.ID}, {Key: "tenant", Value: c.Tenant}, {Key: "version", Value: c.Version}},
		bson.D{{Key: "$set", Value: set}}); err != nil {
		return fmt.Errorf("contact %s names its interaction: %w", c.ID, err)
	}
	c.FirstInteraction = id
	return nil
}

// repeat answers a RecordMessage whose message msgID is already stored:
// the stored message with its interaction and contact, marked Duplicate.
// It returns nil, nil when there is no such message. When the first call
// stopped early (a crash), the repeat finishes it: the message becomes
// its interaction's lastMessage, a new interaction follows its contact,
// and a contact left unlinked is relinked.
func (s *Store) repeat(ctx context.Context, tenant, msgID string, ts time.Time) (*store.RecordResult, error) {
	var m messageDoc
	err := s.messages.FindOne(ctx, bson.D{{Key: "_id", Value: msgID}, {Key: "tenant", Value: tenant}}).Decode(&m)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: look up clientMutationId: %w", err)
	}
	var it interactionDoc
	if err := s.interactions.FindOne(ctx, byID(tenant, m.InteractionID)).Decode(&it); err != nil {
		return nil, fmt.Errorf("mongo: record message: interaction %s of repeated message %s: %w", m.InteractionID, msgID, err)
	}
	if it.LastAt.Before(m.SentAt) {
		next, err := s.applyMessage(ctx, &it, &m, "", "", ts)
		if err != nil {
			return nil, fmt.Errorf("mongo: record message: finish repeated message %s: %w", msgID, err)
		}
		it = *next
		s.publish(ctx, tenant, store.InteractionUpdated, it.ID, it.ContactID, it.ProfileID, ts)
	}
	var c contactDoc
	if err := s.contacts.FindOne(ctx, byID(tenant, it.ContactID)).Decode(&c); err != nil {
		return nil, fmt.Errorf("mongo: record message: contact %s of repeated message %s: %w", it.ContactID, msgID, err)
	}
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}
	if len(c.Dirty) > 0 || sigOf(rules, &c) != c.ClaimsSig {
		// The first call's markers are taken over only once they are
		// older than a lease: a live writer removes its own.
		cutoff := markerAt(time.Now().Add(-s.leaseTTL))
		markers := map[string][]string{}
		for _, mk := range c.Dirty {
			if mk < cutoff {
				markers[c.ID] = append(markers[c.ID], mk)
			}
		}
		events, assign, err := s.relink(ctx, tenant, []string{c.ID}, markers, related.System, ts)
		s.publishEvents(ctx, events)
		if err != nil {
			return nil, fmt.Errorf("mongo: record message: link the contact of repeated message %s: %w", msgID, err)
		}
		c.ProfileID = assign[c.ID]
		it.ProfileID = c.ProfileID
	} else if err := s.follow(ctx, &it, it.ProfileID, c.ProfileID, ts); err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}
	return &store.RecordResult{Interaction: it.domain(), Message: m.domain(), Contact: c.domain(), Duplicate: true}, nil
}

// upsertContact finds or creates the contact of in. A new one gets in's
// name and attributes (with interactionID as their provenance) and, when
// it has claims, a dirty marker in the same write (link.go); an existing
// one is returned as found, for updateContact. It reports whether it
// created the contact, and the marker it added, "" if none.
func (s *Store) upsertContact(ctx context.Context, tenant, id string, in related.RecordMessage, interactionID string, rules []identity.Rule, ts time.Time) (*contactDoc, bool, string, error) {
	set := related.WithProvenance(in.Contact.Attributes, interactionID, ts)
	status := in.Contact.AddressStatus
	if status == "" {
		status = related.AddressValid
	}
	// A name given wins; a name the address carried fills only a blank.
	name := in.Contact.Name
	if name == "" {
		name = in.Contact.FallbackName
	}
	fresh := &contactDoc{
		ID: id, Tenant: tenant, Channel: string(in.Channel), Address: in.Contact.Address, AddressStatus: string(status),
		Name: name, Attributes: attributeDocs(related.MergeAttributes(nil, set)), FirstInteraction: interactionID,
		CreatedAt: ts, UpdatedAt: ts,
	}
	marker := ""
	if sigOf(rules, fresh) != "" {
		marker = newMarker()
		fresh.Dirty = []string{marker}
	}
	onInsert, err := fieldsOf(fresh, "_id", "tenant")
	if err != nil {
		return nil, false, "", err
	}
	filter := byID(tenant, id)
	var cur contactDoc
	err = s.contacts.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$setOnInsert", Value: onInsert}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)).Decode(&cur)
	switch {
	case notFound(err):
		return fresh, true, marker, nil // inserted: fresh is the document
	case isDuplicate(err):
		// A concurrent first message created it between the upsert's
		// match and its insert.
		if ferr := s.contacts.FindOne(ctx, filter).Decode(&cur); ferr != nil {
			return nil, false, "", fmt.Errorf("upsert contact %s: %w", id, errors.Join(err, ferr))
		}
		s.log.DebugContext(ctx, "contact upsert lost a race; using the winner's", "tenant", tenant, "contact", id)
	case err != nil:
		return nil, false, "", fmt.Errorf("upsert contact %s: %w", id, err)
	}
	return &cur, false, "", nil
}

// updateContact sets cur's name (name when not empty, else fallback when
// it has none) and merges attrs into its attributes
// (related.MergeAttributes). It writes nothing when that changes nothing.
// A change of claims, or of the name of a contact that may be in a
// profile, adds a dirty marker in the same write, and the marker is
// returned. The write is filtered on the version cur was read at; when
// another writer got in between, it re-reads and tries again.
func (s *Store) updateContact(ctx context.Context, cur *contactDoc, name, fallback string, attrs []related.Attribute, rules []identity.Rule, ts time.Time) (*contactDoc, string, error) {
	for attempt := 0; ; attempt++ {
		old := cur.attributes()
		merged := related.MergeAttributes(old, attrs)
		next := *cur
		next.Attributes = attributeDocs(merged)
		switch {
		case name != "":
			next.Name = name
		case cur.Name == "" && fallback != "":
			next.Name = fallback
		}
		set := bson.D{}
		if next.Name != cur.Name {
			set = append(set, bson.E{Key: "name", Value: next.Name})
		}
		if !sameFacts(merged, old) {
			set = append(set, bson.E{Key: "attributes", Value: next.Attributes})
		}
		if len(set) == 0 {
			return cur, "", nil
		}
		set = append(set, bson.E{Key: "updatedAt", Value: ts})
		update := bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}}
		marker := ""
		oldSig, newSig := sigOf(rules, cur), sigOf(rules, &next)
		if oldSig != newSig || next.Name != cur.Name && (newSig != "" || cur.ProfileID != "") {
			marker = newMarker()
			update = append(update, bson.E{Key: "$push", Value: bson.D{{Key: "dirty", Value: marker}}})
		}
		filter := bson.D{{Key: "_id", Value: cur.ID}, {Key: "tenant", Value: cur.Tenant}, {Key: "version", Value: cur.Version}}
		var out contactDoc
		err := s.contacts.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&out)
		if err == nil {
			return &out, marker, nil
		}
		if !notFound(err) {
			return nil, "", fmt.Errorf("update contact %s: %w", cur.ID, err)
		}
		if attempt == maxVersionRetries {
			return nil, "", fmt.Errorf("update contact %s: still changing after %d attempts", cur.ID, attempt+1)
		}
		// Another writer changed the contact since it was read.
		var again contactDoc
		if err := s.contacts.FindOne(ctx, byID(cur.Tenant, cur.ID)).Decode(&again); err != nil {
			return nil, "", fmt.Errorf("re-read contact %s: %w", cur.ID, err)
		}
		cur = &again
	}
}

// upsertQueue makes sure queue id exists. The _id is derived from the
// name, so any number of concurrent first uses make one queue.
func (s *Store) upsertQueue(ctx context.Context, tenant, id, name string) error {
	filter := byID(tenant, id)
	update := bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "name", Value: name}}}}
	_, err := s.queues.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if isDuplicate(err) {
		// Lost the race to create it: the winner's insert is what
		// failed this one, so the queue exists.
		return nil
	}
	if err != nil {
		return fmt.Errorf("upsert queue %q: %w", name, err)
	}
	return nil
}

// openInteraction finds the open interaction of fresh's thread or inserts
// fresh as it, and reports whether it inserted.
func (s *Store) openInteraction(ctx context.Context, fresh *interactionDoc) (*interactionDoc, bool, error) {
	onInsert, err := fieldsOf(fresh, "tenant", "openKey")
	if err != nil {
		return nil, false, err
	}
	filter := bson.D{{Key: "tenant", Value: fresh.Tenant}, {Key: "openKey", Value: fresh.OpenKey}}
	var cur interactionDoc
	err = s.interactions.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$setOnInsert", Value: onInsert}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)).Decode(&cur)
	switch {
	case notFound(err):
		return fresh, true, nil
	case isDuplicate(err):
		// Another message opened the thread between the upsert's match
		// and its insert: the unique openKey made it the one winner.
		if ferr := s.interactions.FindOne(ctx, filter).Decode(&cur); ferr != nil {
			return nil, false, fmt.Errorf("open interaction of %s: %w", fresh.OpenKey, errors.Join(err, ferr))
		}
		s.log.DebugContext(ctx, "interaction upsert lost a race; using the winner's", "tenant", fresh.Tenant, "interaction", cur.ID)
	case err != nil:
		return nil, false, fmt.Errorf("open interaction of %s: %w", fresh.OpenKey, err)
	}
	return &cur, false, nil
}

// applyMessage records m on the existing interaction it: as its
// lastMessage when m is not older than the current one, and queueID as its
// queue when one is named. It returns the interaction as it now is.
func (s *Store) applyMessage(ctx context.Context, it *interactionDoc, m *messageDoc, queueID, queueName string, ts time.Time) (*interactionDoc, error) {
	set := bson.D{
		{Key: "lastMessage", Value: m.last()},
		{Key: "lastAt", Value: m.SentAt},
		{Key: "updatedAt", Value: ts},
	}
	if queueID != "" {
		set = append(set, bson.E{Key: "queueId", Value: queueID}, bson.E{Key: "queueName", Value: queueName})
	}
	filter := bson.D{{Key: "_id", Value: it.ID}, {Key: "tenant", Value: it.Tenant}, {Key: "lastAt", Value: bson.D{{Key: "$lte", Value: m.SentAt}}}}
	after := options.FindOneAndUpdate().SetReturnDocument(options.After)
	var next interactionDoc
	err := s.interactions.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$set", Value: set}}, after).Decode(&next)
	if err == nil {
		return &next, nil
	}
	if !notFound(err) {
		return nil, fmt.Errorf("set last message of %s: %w", it.ID, err)
	}
	// m is older than the interaction's last message: only the queue
	// changes, and only when it is another one.
	if queueID == "" || queueID == it.QueueID {
		return it, nil
	}
	set = bson.D{{Key: "queueId", Value: queueID}, {Key: "queueName", Value: queueName}, {Key: "updatedAt", Value: ts}}
	if err := s.interactions.FindOneAndUpdate(ctx, byID(it.Tenant, it.ID), bson.D{{Key: "$set", Value: set}}, after).Decode(&next); err != nil {
		return nil, fmt.Errorf("set queue of %s: %w", it.ID, err)
	}
	return &next, nil
}

// CloseInteraction closes interaction id. Its openKey becomes its own
// "closed:<id>", which frees the thread: the next message on it opens a
// new interaction.
func (s *Store) CloseInteraction(ctx context.Context, tenant, id string, state related.ClosedState, at time.Time) (*related.Interaction, error) {
	if !state.Valid() {
		return nil, related.Invalid(fmt.Sprintf("unknown closed state %q", state), "state")
	}
	ts := now()
	at = at.UTC().Truncate(time.Millisecond)
	set := bson.D{
		{Key: "status", Value: string(related.StatusClosed)},
		{Key: "closedState", Value: string(state)},
		{Key: "closedAt", Value: at},
		{Key: "openKey", Value: "closed:" + id},
		{Key: "updatedAt", Value: ts},
	}
	var d interactionDoc
	err := s.interactions.FindOneAndUpdate(ctx, byID(tenant, id), bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	if notFound(err) {
		return nil, related.NotFound("no such interaction", "id")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: close interaction %s: %w", id, err)
	}
	s.publish(ctx, tenant, store.InteractionUpdated, d.ID, d.ContactID, d.ProfileID, ts)
	return d.domain(), nil
}

// ReopenInteraction reopens interaction id by giving it back its thread's
// open key; the unique index refuses that while another interaction of the
// thread is open, which is reported as CONFLICT. Reopening an open
// interaction changes nothing.
func (s *Store) ReopenInteraction(ctx context.Context, tenant, id string) (*related.Interaction, error) {
	var cur interactionDoc
	err := s.interactions.FindOne(ctx, byID(tenant, id)).Decode(&cur)
	if notFound(err) {
		return nil, related.NotFound("no such interaction", "id")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: reopen interaction %s: %w", id, err)
	}
	if cur.Status == string(related.StatusOpen) {
		return cur.domain(), nil
	}
	ts := now()
	key := related.OpenKey(related.Channel(cur.Channel), cur.ThreadRef)
	set := bson.D{
		{Key: "status", Value: string(related.StatusOpen)},
		{Key: "closedState", Value: ""},
		{Key: "closedAt", Value: nil},
		{Key: "openKey", Value: key},
		{Key: "updatedAt", Value: ts},
	}
	filter := bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "status", Value: string(related.StatusClosed)}}
	var d interactionDoc
	err = s.interactions.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$set", Value: set}},
		options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&d)
	switch {
	case err == nil:
		s.publish(ctx, tenant, store.InteractionUpdated, d.ID, d.ContactID, d.ProfileID, ts)
		return d.domain(), nil
	case notFound(err):
		// Reopened by a concurrent call since it was read: the result is
		// the same, and that call published the event.
		if err := s.interactions.FindOne(ctx, byID(tenant, id)).Decode(&d); err != nil {
			return nil, fmt.Errorf("mongo: reopen interaction %s: re-read: %w", id, err)
		}
		return d.domain(), nil
	case maybeDuplicate(err):
		var other interactionDoc
		ferr := s.interactions.FindOne(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "openKey", Value: key}}).Decode(&other)
		if ferr == nil && other.ID != id {
			return nil, &related.Error{
				Code:    related.CodeConflict,
				Field:   []string{"id"},
				Message: "the thread already has another open interaction (" + related.GlobalID(related.NodeInteraction, other.ID) + "); close it first",
			}
		}
		if ferr != nil && !notFound(ferr) {
			err = errors.Join(err, ferr)
		}
	}
	return nil, fmt.Errorf("mongo: reopen interaction %s: %w", id, err)
}

// SetContactAttributes merges attrs into contact id's attributes and
// relinks it when its claims changed. A value a rule of its key cannot
// parse is INVALID and nothing is stored.
func (s *Store) SetContactAttributes(ctx context.Context, tenant, id string, attrs []related.Attribute, by related.Actor) (*related.Contact, error) {
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: set contact attributes: %w", err)
	}
	if err := identity.CheckAttributes(rules, attrs); err != nil {
		return nil, err
	}
	var cur contactDoc
	err = s.contacts.FindOne(ctx, byID(tenant, id)).Decode(&cur)
	if notFound(err) {
		return nil, related.NotFound("no such contact", "contactId")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: set contact attributes of %s: %w", id, err)
	}
	ts := now()
	next, marker, err := s.updateContact(ctx, &cur, "", "", related.WithProvenance(attrs, "", ts), rules, ts)
	if err != nil {
		return nil, fmt.Errorf("mongo: set contact attributes: %w", err)
	}
	changed := next != &cur
	var linkEvents []store.Event
	if marker != "" || sigOf(rules, next) != next.ClaimsSig {
		var markers map[string][]string
		if marker != "" {
			markers = map[string][]string{next.ID: {marker}}
		}
		var assign map[string]string
		linkEvents, assign, err = s.relink(ctx, tenant, []string{next.ID}, markers, by, ts)
		if err != nil {
			s.publishEvents(ctx, linkEvents)
			return nil, fmt.Errorf("mongo: set contact attributes: %w", err)
		}
		next.ProfileID = assign[next.ID]
	}
	if changed || len(linkEvents) > 0 {
		s.publishEvents(ctx, append([]store.Event{{
			ID: related.NewID(), Tenant: tenant, Kind: store.ContactUpdated, ContactID: next.ID, ProfileID: next.ProfileID, At: ts,
		}}, linkEvents...))
	}
	return next.domain(), nil
}

// publish hands one event to the publisher. It runs after the write it
// describes has been acknowledged.
func (s *Store) publish(ctx context.Context, tenant string, kind store.EventKind, interactionID, contactID, profileID string, at time.Time) {
	s.publishEvents(ctx, []store.Event{{ // events.go: the events collection, then the publisher
		ID: related.NewID(), Tenant: tenant, Kind: kind,
		InteractionID: interactionID, ContactID: contactID, ProfileID: profileID, At: at,
	}})
}

// byID is the filter of one document of tenant: the _id index finds it and
// the tenant check keeps an id of another tenant from naming it.
func byID(tenant, id string) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}}
}
