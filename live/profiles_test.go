package live_test

import (
	"testing"
)

// TestProfileChanges follows a panel's scope as profiles change: a contact
// on another channel joining the profile brings its interactions in
// (ADDED, and the scope becomes PROFILE), and unlinking it takes them out
// again (REMOVED).
func TestProfileChanges(t *testing.T) {
	r := newSQLite(t)
	a := r.record(r.key, "a", "ann@example.com", "by email", "")
	c := r.dial(r.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r.waitSubs(1)

	// A web chat visitor gives Ann's email: the rules link the visitor
	// into Ann's profile, and the chat appears in her email's panel.
	var chat struct {
		RecordMessage struct {
			Interaction struct {
				ID      string
				Contact struct{ ID string }
			}
		}
	}
	r.gql(r.key, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id contact { id } } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"channel": "WEBCHAT", "threadRef": "chat-1", "direction": "INBOUND", "body": "hi from chat",
			"contact": map[string]any{"address": "visitor-1", "attributes": []any{map[string]any{"key": "email", "value": "Ann@Example.com"}}}}}, &chat)
	chatID := chat.RecordMessage.Interaction.ID
	got := c.nextChange("rel")
	expect(t, got, "ADDED", chatID)
	if got.Scope != "PROFILE" {
		t.Fatalf("scope after the link = %s, want PROFILE", got.Scope)
	}
	// An admin unlinks the visitor: its chat leaves the panel.
	r.gql(r.key, `mutation($id: ID!) { unlinkContact(input: {contactId: $id}) { userErrors { message } } }`,
		map[string]any{"id": chat.RecordMessage.Interaction.Contact.ID}, nil)
	// Updates the link caused may come first; the removal must follow.
	for range 10 {
		if got = c.nextChange("rel"); got.Kind == "REMOVED" {
			break
		}
	}
	if got.InteractionID != chatID {
		t.Fatalf("REMOVED %s, want the chat %s", got.InteractionID, chatID)
	}
}
