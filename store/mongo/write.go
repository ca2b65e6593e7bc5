package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// maxVersionRetries bounds the optimistic retries of a contact's
// read-modify-write: more concurrent writers than this on one contact is a
// fault worth reporting, not spinning on.
const maxVersionRetries = 8

// RecordMessage stores a message. Without transactions the steps are
// ordered so that a crash between two of them leaves a state that readers
// can live with and that a retry with the same ClientMutationID repairs:
//
//  1. with a ClientMutationID, a repeat is answered from the stored message;
//  2. the contact is upserted on its derived _id and its name and
//     attributes updated when they change;
//  3. the queue, when named, is upserted on its derived _id before any
//     interaction points at it;
//  4. the thread's open interaction is found or created by one
//     findAndModify upsert on {tenant, openKey}, which the unique index
//     makes a single winner; a new one carries this message as its
//     lastMessage already;
//  5. the message is inserted (a repeated ClientMutationID is a
//     duplicate _id: the repeat is answered as in step 1);
//  6. an existing interaction's lastMessage and lastAt are set only when
//     this message is not older than the current one (the filter decides,
//     so out-of-order deliveries never move it backwards), and its queue
//     when one is named;
//  7. the contact is linked by what it brings (link.go), which moves its
//     interactions when its profile changes, and the interaction is made
//     to follow a contact that moved meanwhile.
//
// A crash between 4 and 5 leaves a new interaction whose lastMessage copy
// has no message document yet; one between 5 and 6 leaves a stored message
// that is not yet the interaction's lastMessage. The retry inserts the
// message under the same derived id, or finds it and finishes step 6; a
// crash during 7 leaves the contact unlinked, which the retry (or the
// contact's next write) links.
func (s *Store) RecordMessage(ctx context.Context, tenant string, in related.RecordMessage) (*store.RecordResult, error) {
	ts := now()
	contactID := related.DerivedID(tenant, "contact", string(in.Channel), in.Contact.Address)
	msgID := related.NewID()
	if in.ClientMutationID != "" {
		msgID = related.DerivedID(tenant, "message", in.ClientMutationID)
		res, err := s.repeat(ctx, tenant, msgID, contactID, ts)
		if err != nil || res != nil {
			return res, err
		}
	}

	contact, contactCreated, err := s.upsertContact(ctx, tenant, contactID, in, ts)
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

	m := &messageDoc{
		ID: msgID, Tenant: tenant, Direction: string(in.Direction), Body: in.Body,
		SentAt: in.SentAt.UTC().Truncate(time.Millisecond), Author: in.Author, CreatedAt: ts,
	}
	fresh := &interactionDoc{
		ID: related.NewID(), Tenant: tenant, Channel: string(in.Channel), ThreadRef: in.ThreadRef,
		OpenKey: related.OpenKey(in.Channel, in.ThreadRef), ContactID: contact.ID, ProfileID: contact.ProfileID,
		QueueID: queueID, QueueName: in.Queue, Status: string(related.StatusOpen),
		LastMessage: m.last(), LastAt: m.SentAt, CreatedAt: ts, UpdatedAt: ts,
	}
	it, created, err := s.openInteraction(ctx, fresh)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: %w", err)
	}

	m.InteractionID = it.ID
	if _, err := s.messages.InsertOne(ctx, m); err != nil {
		if in.ClientMutationID != "" && isDuplicate(err) {
			// The same clientMutationId raced this call and won.
			res, rerr := s.repeat(ctx, tenant, msgID, contactID, ts)
			if rerr != nil || res != nil {
				return res, rerr
			}
		}
		return nil, fmt.Errorf("mongo: record message: insert message: %w", err)
	}

	if !created {
		it, err = s.applyMessage(ctx, it, m, queueID, in.Queue, ts)
		if err != nil {
			return nil, fmt.Errorf("mongo: record message: %w", err)
		}
	}

	// Link the contact by what it brings (link.go); a change of profile
	// moves its interactions, this one included.
	contact, linkEvents, err := s.linkRecorded(ctx, contact, it, contactCreated, created, ts)
	if err != nil {
		s.publishEvents(ctx, linkEvents)
		return nil, fmt.Errorf("mongo: record message: %w", err)
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
	}, nil
}

// repeat answers a RecordMessage whose message msgID is already stored:
// the stored message with its interaction and contact, marked Duplicate.
// It returns nil, nil when there is no such message. When the first call
// stopped before making the message its interaction's lastMessage (a crash
// between steps 5 and 6), the repeat finishes that step.
func (s *Store) repeat(ctx context.Context, tenant, msgID, contactID string, ts time.Time) (*store.RecordResult, error) {
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
	if err := s.contacts.FindOne(ctx, byID(tenant, contactID)).Decode(&c); err != nil {
		return nil, fmt.Errorf("mongo: record message: contact %s of repeated message %s: %w", contactID, msgID, err)
	}
	// A first call that stopped before its linking was done (a crash) is
	// finished here; after one that finished, this sends nothing (link.go).
	next, linkEvents, err := s.linkRecorded(ctx, &c, &it, false, false, ts)
	s.publishEvents(ctx, linkEvents)
	if err != nil {
		return nil, fmt.Errorf("mongo: record message: link the contact of repeated message %s: %w", msgID, err)
	}
	return &store.RecordResult{Interaction: it.domain(), Message: m.domain(), Contact: next.domain(), Duplicate: true}, nil
}

// upsertContact finds or creates the contact of in and applies its name
// and attributes. It reports whether it created the contact.
func (s *Store) upsertContact(ctx context.Context, tenant, id string, in related.RecordMessage, ts time.Time) (*contactDoc, bool, error) {
	fresh := &contactDoc{
		ID: id, Tenant: tenant, Channel: string(in.Channel), Address: in.Contact.Address, Name: in.Contact.Name,
		Attributes: attributeDocs(related.MergeAttributes(nil, in.Contact.Attributes)), CreatedAt: ts, UpdatedAt: ts,
	}
	onInsert, err := fieldsOf(fresh, "_id", "tenant")
	if err != nil {
		return nil, false, err
	}
	filter := byID(tenant, id)
	var cur contactDoc
	err = s.contacts.FindOneAndUpdate(ctx, filter, bson.D{{Key: "$setOnInsert", Value: onInsert}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.Before)).Decode(&cur)
	switch {
	case notFound(err):
		return fresh, true, nil // inserted: fresh is the document
	case isDuplicate(err):
		// A concurrent first message created it between the upsert's
		// match and its insert.
		if ferr := s.contacts.FindOne(ctx, filter).Decode(&cur); ferr != nil {
			return nil, false, fmt.Errorf("upsert contact %s: %w", id, errors.Join(err, ferr))
		}
		s.log.DebugContext(ctx, "contact upsert lost a race; using the winner's", "tenant", tenant, "contact", id)
	case err != nil:
		return nil, false, fmt.Errorf("upsert contact %s: %w", id, err)
	}
	next, _, err := s.updateContact(ctx, &cur, in.Contact.Name, in.Contact.Attributes, ts)
	return next, false, err
}

// updateContact sets cur's name (when name is not empty) and merges attrs
// into its attributes (related.MergeAttributes). It writes nothing when
// that changes nothing, and reports whether it wrote. The write is filtered
// on the version cur was read at; when another writer got in between, it
// re-reads and tries again.
func (s *Store) updateContact(ctx context.Context, cur *contactDoc, name string, attrs []related.Attribute, ts time.Time) (*contactDoc, bool, error) {
	for attempt := 0; ; attempt++ {
		old := cur.attributes()
		merged := related.MergeAttributes(old, attrs)
		set := bson.D{}
		if name != "" && name != cur.Name {
			set = append(set, bson.E{Key: "name", Value: name})
		}
		if !sameAttributes(merged, old) {
			set = append(set, bson.E{Key: "attributes", Value: attributeDocs(merged)})
		}
		if len(set) == 0 {
			return cur, false, nil
		}
		set = append(set, bson.E{Key: "updatedAt", Value: ts})
		filter := bson.D{{Key: "_id", Value: cur.ID}, {Key: "tenant", Value: cur.Tenant}, {Key: "version", Value: cur.Version}}
		update := bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}}
		var next contactDoc
		err := s.contacts.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&next)
		if err == nil {
			return &next, true, nil
		}
		if !notFound(err) {
			return nil, false, fmt.Errorf("update contact %s: %w", cur.ID, err)
		}
		if attempt == maxVersionRetries {
			return nil, false, fmt.Errorf("update contact %s: still changing after %d attempts", cur.ID, attempt+1)
		}
		// Another writer changed the contact since it was read.
		var again contactDoc
		if err := s.contacts.FindOne(ctx, byID(cur.Tenant, cur.ID)).Decode(&again); err != nil {
			return nil, false, fmt.Errorf("re-read contact %s: %w", cur.ID, err)
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

// SetContactAttributes merges attrs into contact id's attributes.
func (s *Store) SetContactAttributes(ctx context.Context, tenant, id string, attrs []related.Attribute) (*related.Contact, error) {
	var cur contactDoc
	err := s.contacts.FindOne(ctx, byID(tenant, id)).Decode(&cur)
	if notFound(err) {
		return nil, related.NotFound("no such contact", "contactId")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: set contact attributes of %s: %w", id, err)
	}
	ts := now()
	next, changed, err := s.updateContact(ctx, &cur, "", attrs, ts)
	if err != nil {
		return nil, fmt.Errorf("mongo: set contact attributes: %w", err)
	}
	// Link the contact by what it now says (link.go).
	next, moved, linkEvents, err := s.linkContact(ctx, next, linkRun{by: "rule", ts: ts})
	if err != nil {
		s.publishEvents(ctx, linkEvents)
		return nil, fmt.Errorf("mongo: set contact attributes: %w", err)
	}
	if changed || moved || len(linkEvents) > 0 {
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
