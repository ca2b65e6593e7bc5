package mongo

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/relatedhq/related/store"
)

// collEvents holds the events of committed writes for the feed readers of
// every gateway replica (feed.go). It is the one collection read across
// tenants: the feed hands each event to the live hub, which keeps tenants
// apart.
const collEvents = "events"

// eventDoc is one store.Event in the events collection. Its _id is the
// event's id, made by related.NewID: time-ordered, so a reader can resume
// "after" an id and prune "before" a time.
type eventDoc struct {
	ID            string    `bson:"_id"`
	Tenant        string    `bson:"tenant"`
	Kind          string    `bson:"kind"`
	InteractionID string    `bson:"interactionId,omitempty"`
	ContactID     string    `bson:"contactId,omitempty"`
	ProfileID     string    `bson:"profileId,omitempty"`
	FromProfileID string    `bson:"fromProfileId,omitempty"`
	At            time.Time `bson:"at"`
}

func (d *eventDoc) event() store.Event {
	return store.Event{
		ID: d.ID, Tenant: d.Tenant, Kind: store.EventKind(d.Kind),
		InteractionID: d.InteractionID, ContactID: d.ContactID, ProfileID: d.ProfileID,
		FromProfileID: d.FromProfileID, At: d.At,
	}
}

// appendTimeout bounds the append of a write's events. The write has
// committed by then, so the append must not hang on a caller's deadline
// either: it runs detached from the request's cancellation.
const appendTimeout = 5 * time.Second

// publishEvents is how a committed write announces itself: it appends the
// events to the events collection, which every replica's feed reads, and
// hands them to this process's publisher (the local hub, for subscribers
// on this replica without the feed's delay; the hub drops the copy the
// feed brings back later by event id). Every write that publishes goes
// through here.
func (s *Store) publishEvents(ctx context.Context, events []store.Event) {
	if len(events) == 0 {
		return
	}
	docs := make([]any, len(events))
	for i, e := range events {
		docs[i] = &eventDoc{
			ID: e.ID, Tenant: e.Tenant, Kind: string(e.Kind),
			InteractionID: e.InteractionID, ContactID: e.ContactID, ProfileID: e.ProfileID,
			FromProfileID: e.FromProfileID, At: e.At,
		}
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	if _, err := s.db.Collection(collEvents).InsertMany(actx, docs); err != nil {
		// The write itself committed; failing it now would make the caller
		// retry what is done. Subscribers on other replicas miss this
		// change until they refetch, so it is logged as an error.
		s.log.ErrorContext(ctx, "mongo: appending events failed; other replicas will not see them",
			"tenant", events[0].Tenant, "kind", events[0].Kind, "err", fmt.Errorf("mongo: append events: %w", err))
	}
	s.pub.Publish(ctx, events)
}

// idEncoding is related.NewID's: lower-case base32hex without padding,
// whose order is the byte order.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// idAt returns the smallest id related.NewID can make at time t: every id
// made at t or later sorts after or equal to it, every id made before
// sorts before it.
func idAt(t time.Time) string {
	var b [16]byte
	ms := t.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	binary.BigEndian.PutUint64(b[:8], uint64(ms)<<16)
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// idTime returns the time an id made by related.NewID was made at, and
// false for an id of another shape.
func idTime(id string) (time.Time, bool) {
	if len(id) != 26 {
		return time.Time{}, false
	}
	b, err := idEncoding.DecodeString(strings.ToUpper(id))
	if err != nil || len(b) != 16 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[:8]) >> 16)), true
}
