package store

import (
	"context"
	"time"
)

// EventKind says what a committed write changed.
type EventKind string

// The kinds of store events.
const (
	InteractionCreated EventKind = "interaction.created"
	InteractionUpdated EventKind = "interaction.updated" // a message, a close, a reopen, a queue change
	ContactUpdated     EventKind = "contact.updated"
	// ProfileChanged: a contact joined or left a profile, or profiles
	// merged or split. The event's InteractionID names one interaction
	// whose Related scope changed; ProfileID is its new profile.
	ProfileChanged EventKind = "profile.changed"
	// InteractionErased: the interaction was erased with its contact (a
	// right-to-erasure request); ContactID and ProfileID are what it had.
	InteractionErased EventKind = "interaction.erased"
)

// Event describes one committed change, for the live package to fan out
// to subscribers. It names the keys a Related panel is scoped by, so a
// subscriber can tell whether the change concerns it without a lookup.
type Event struct {
	ID            string // unique per event, for de-duplication across feeds
	Tenant        string
	Kind          EventKind
	InteractionID string
	ContactID     string
	ProfileID     string
	// FromProfileID is, for ProfileChanged, the profile the interaction
	// left ("" when it had none).
	FromProfileID string
	At            time.Time
}

// Publisher receives events after the write that caused them committed.
// It must not block: the store calls it on the writer's goroutine.
type Publisher interface {
	Publish(ctx context.Context, events []Event)
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(ctx context.Context, events []Event)

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, events []Event) { f(ctx, events) }

// Discard is a Publisher that drops every event.
var Discard Publisher = PublisherFunc(func(context.Context, []Event) {})
