package related

import "time"

// The methods in this file present the domain types the way the GraphQL
// schema does: global ids, and null for an absent optional value. They are
// plain accessors, so the API layer binds to them directly instead of
// running a resolver (and a goroutine) per field.

// GID is the interaction's global id.
func (i *Interaction) GID() string { return GlobalID(NodeInteraction, i.ID) }

// QueueRef is the interaction's queue, built from the copy of its name the
// interaction keeps; nil when it has none.
func (i *Interaction) QueueRef() *Queue {
	if i.QueueID == "" {
		return nil
	}
	return &Queue{ID: i.QueueID, Tenant: i.Tenant, Name: i.QueueName}
}

// ClosedStateOrNil is the closed state, nil while the interaction is open.
func (i *Interaction) ClosedStateOrNil() *ClosedState {
	if i.Status != StatusClosed || i.ClosedState == "" {
		return nil
	}
	s := i.ClosedState
	return &s
}

// ClosedAtOrNil is the closing time, nil while the interaction is open.
func (i *Interaction) ClosedAtOrNil() *time.Time {
	if i.Status != StatusClosed || i.ClosedAt.IsZero() {
		return nil
	}
	t := i.ClosedAt
	return &t
}

// GID is the message's global id.
func (m *Message) GID() string { return GlobalID(NodeMessage, m.ID) }

// AuthorOrNil is the author, nil when the channel named none.
func (m *Message) AuthorOrNil() *string { return orNil(m.Author) }

// GID is the contact's global id.
func (c *Contact) GID() string { return GlobalID(NodeContact, c.ID) }

// NameOrNil is the contact's name, nil while unknown.
func (c *Contact) NameOrNil() *string { return orNil(c.Name) }

// GID is the queue's global id.
func (q *Queue) GID() string { return GlobalID(NodeQueue, q.ID) }

// GID is the profile's global id.
func (p *Profile) GID() string { return GlobalID(NodeProfile, p.ID) }

// GID is the erasure's global id; Erasure is not a Node.
func (e *Erasure) GID() string { return GlobalID(TypeErasure, e.ID) }

func orNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
