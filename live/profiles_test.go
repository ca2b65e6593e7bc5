package live_test

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"
)

// TestProfileChanges follows a panel's scope as profiles change: a contact
// on another channel joining the profile brings its interactions in
// (ADDED, and the scope becomes PROFILE), and unlinking it takes them out
// again (REMOVED); a confirmed suggestion brings a claimed chat in, and
// blocking the shared value takes out what only it linked.
func TestProfileChanges(t *testing.T) {
	r := newSQLite(t)
	a := r.record(r.key, "a", "ann@example.com", "by email", "")
	c := r.dial(r.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r.waitSubs(1)

	// A web chat visitor signed in as Ann (the website attests her
	// email): the rules link the visitor into Ann's profile, and the chat
	// appears in her email's panel.
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
			"contact": map[string]any{"address": "visitor-1", "attributes": []any{map[string]any{"key": "email", "value": "Ann@Example.com", "attested": true}}}}}, &chat)
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

	// A visitor who only typed Ann's email is a suggestion, not a link;
	// confirmed by an admin, the chat joins the panel.
	r.gql(r.key, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id contact { id } } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"channel": "WEBCHAT", "threadRef": "chat-2", "direction": "INBOUND", "body": "typed",
			"contact": map[string]any{"address": "visitor-2", "attributes": []any{map[string]any{"key": "email", "value": "ann@example.com"}}}}}, &chat)
	typed := chat.RecordMessage.Interaction.ID
	var sug struct {
		ProfileSuggestions struct {
			Edges []struct {
				Node struct {
					ID       string
					Contacts []struct{ ID string }
				}
			}
		}
	}
	r.gql(r.key, `{ profileSuggestions { edges { node { id contacts { id } } } } }`, nil, &sug)
	// The suggestion between Ann's email and the typed chat (the chat and
	// the unlinked visitor make another).
	var ann struct {
		Interaction struct{ Contact struct{ ID string } }
	}
	r.gql(r.key, `query($id: ID!) { interaction(id: $id) { contact { id } } }`, map[string]any{"id": a}, &ann)
	var sugID string
	for _, e := range sug.ProfileSuggestions.Edges {
		names := map[string]bool{}
		for _, c := range e.Node.Contacts {
			names[c.ID] = true
		}
		if names[chat.RecordMessage.Interaction.Contact.ID] && names[ann.Interaction.Contact.ID] {
			sugID = e.Node.ID
		}
	}
	if sugID == "" {
		t.Fatalf("no suggestion for the typed email: %+v", sug)
	}
	r.gql(r.key, `mutation($id: ID!) { confirmSuggestion(input: {id: $id}) { userErrors { message } } }`, map[string]any{"id": sugID}, nil)
	for range 10 {
		if got = c.nextChange("rel"); got.Kind == "ADDED" && got.InteractionID == typed {
			break
		}
	}
	expect(t, got, "ADDED", typed)

	// A third visitor signs in as Ann; blocking her address takes out the
	// chat only the address linked (the confirmed one stays: an admin
	// decided it).
	r.gql(r.key, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id contact { id } } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"channel": "WEBCHAT", "threadRef": "chat-3", "direction": "INBOUND", "body": "signed in",
			"contact": map[string]any{"address": "visitor-3", "attributes": []any{map[string]any{"key": "email", "value": "ann@example.com", "attested": true}}}}}, &chat)
	third := chat.RecordMessage.Interaction.ID
	for range 10 {
		if got = c.nextChange("rel"); got.Kind == "ADDED" && got.InteractionID == third {
			break
		}
	}
	expect(t, got, "ADDED", third)
	var rules struct {
		ProfileRules []struct{ ID, Attribute string }
	}
	r.gql(r.key, `{ profileRules { id attribute } }`, nil, &rules)
	r.gql(r.key, `mutation($rule: ID!) { setValueQuarantine(input: {ruleId: $rule, value: "ann@example.com", state: BLOCKED}) { userErrors { message } } }`,
		map[string]any{"rule": rules.ProfileRules[0].ID}, nil)
	for range 10 {
		if got = c.nextChange("rel"); got.Kind == "REMOVED" {
			break
		}
	}
	if got.Kind != "REMOVED" || got.InteractionID != third {
		t.Fatalf("after blocking: %+v, want the third chat REMOVED", got)
	}
}

// TestErasure: erasing a contact drops its interactions from the panels
// they were in (REMOVED, with the id and no interaction), and ends a
// subscription on one of them with NOT_FOUND.
func TestErasure(t *testing.T) {
	r := newSQLite(t)
	a := r.record(r.key, "a", "ann@example.com", "Ann by email", "")
	var chat struct {
		RecordMessage struct {
			Interaction struct {
				ID      string
				Contact struct{ ID string }
			}
		}
	}
	r.gql(r.key, `mutation($in: RecordMessageInput!) { recordMessage(input: $in) { interaction { id contact { id } } userErrors { message } } }`,
		map[string]any{"in": map[string]any{"channel": "WEBCHAT", "threadRef": "chat-1", "direction": "INBOUND", "body": "Ann by chat",
			"contact": map[string]any{"address": "visitor-1", "attributes": []any{map[string]any{"key": "email", "value": "ann@example.com", "attested": true}}}}}, &chat)
	gone := chat.RecordMessage.Interaction.ID
	c := r.dial(r.key, transportWS)
	c.subscribe("panel", relatedSub, map[string]any{"id": a})
	c.subscribe("gone", interactionSub, map[string]any{"id": gone})
	r.waitSubs(2)
	var erased struct {
		EraseContact struct {
			Erasure    *struct{ Interactions int }
			UserErrors []struct{ Message string }
		}
	}
	r.gql(r.key, `mutation($id: ID!) { eraseContact(input: {id: $id, reason: "request 9"}) { erasure { interactions } userErrors { message } } }`,
		map[string]any{"id": chat.RecordMessage.Interaction.Contact.ID}, &erased)
	if erased.EraseContact.Erasure == nil || erased.EraseContact.Erasure.Interactions != 1 {
		t.Fatalf("erasure = %+v", erased)
	}
	var got change
	for range 10 {
		if got = c.nextChange("panel"); got.Kind == "REMOVED" {
			break
		}
	}
	if got.Kind != "REMOVED" || got.InteractionID != gone || got.Interaction.ID != "" {
		t.Fatalf("panel change = %+v, want the erased chat REMOVED without its interaction", got)
	}
	m := c.next("gone", 5*time.Second)
	if m.Type != "error" || !strings.Contains(string(m.Payload), "NOT_FOUND") {
		t.Fatalf("the erased interaction's subscription got %s %s, want an error with NOT_FOUND", m.Type, m.Payload)
	}
}

// TestErasureOverSSE: over server-sent events, a subscription on an erased
// interaction ends with a last event carrying NOT_FOUND before "complete",
// as the WebSocket's error message does, so a client can tell an erasure
// from an ordinary end.
func TestErasureOverSSE(t *testing.T) {
	r := newSQLite(t)
	gone := r.record(r.key, "a", "ann@example.com", "Ann by email", "")
	var it struct {
		Interaction struct{ Contact struct{ ID string } }
	}
	r.gql(r.key, `query($id: ID!) { interaction(id: $id) { contact { id } } }`, map[string]any{"id": gone}, &it)
	resp := r.sse(context.Background(), r.key, interactionSub, map[string]any{"id": gone})
	r.waitSubs(1)
	r.gql(r.key, `mutation($id: ID!) { eraseContact(input: {id: $id, reason: "request 10"}) { userErrors { message } } }`,
		map[string]any{"id": it.Interaction.Contact.ID}, nil)
	done := make(chan []string)
	go func() {
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event:") || strings.HasPrefix(l, "data:") {
				events = append(events, l)
			}
		}
		done <- events
	}()
	var events []string
	select {
	case events = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
	n := len(events)
	if n < 4 || events[n-2] != "event: complete" || !strings.Contains(events[n-3], `"NOT_FOUND"`) ||
		strings.Contains(events[n-3], `"data"`) || events[n-4] != "event: next" {
		t.Fatalf("the stream ended with %q, want a last next event with NOT_FOUND (and no data), then complete", events)
	}
}
