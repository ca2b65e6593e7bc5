package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// TestUpgradeFromLinkedProfiles opens a database of the version before
// identity was a function of the facts (schema 4), with duplicate contacts
// its normalization let through and an admin's manual work, and checks
// that the upgrade keeps everything: duplicates merged with their
// interactions and messages, the manual link and the custom name carried
// over as facts, the old profile id still leading to the profile.
func TestUpgradeFromLinkedProfiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: filepath.Join(dir, FileName)}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:4] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	id := func(ch related.Channel, addr string) string {
		return related.DerivedID("t1", "contact", string(ch), addr)
	}
	ann, annZW := id(related.ChannelEmail, "ann@x.io"), id(related.ChannelEmail, "ann@x.io\u200b")
	sms00, smsPlus := id(related.ChannelSMS, "00447400123456"), id(related.ChannelSMS, "+447400123456")
	chat, bob := id(related.ChannelWebChat, "v1"), id(related.ChannelEmail, "bob@x.io")
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO contacts (tenant, id, channel, address, name, profile_id, created_at, updated_at) VALUES
			('t1', ?, 'EMAIL', 'ann@x.io', 'Ann', 'old-p1', 1000, 1000),
			('t1', ?, 'EMAIL', 'ann@x.io` + "\u200b" + `', '', 'old-p3', 2000, 2000),
			('t1', ?, 'SMS', '00447400123456', 'Ann mobile', '', 1500, 1500),
			('t1', ?, 'SMS', '+447400123456', '', '', 3000, 3000),
			('t1', ?, 'WEBCHAT', 'v1', '', 'old-p1', 4000, 4000),
			('t1', ?, 'EMAIL', 'bob@x.io', 'Bob', 'old-p2', 5000, 5000)`, []any{ann, annZW, sms00, smsPlus, chat, bob}},
		{`INSERT INTO interactions (tenant, id, channel, thread_ref, open_key, contact_id, profile_id, status, last_at, created_at, updated_at) VALUES
			('t1', 'i1', 'SMS', 'a', 'SMS:a', ?, '', 'OPEN', 1500, 1500, 1500),
			('t1', 'i2', 'SMS', 'b', 'SMS:b', ?, '', 'OPEN', 3000, 3000, 3000),
			('t1', 'i3', 'EMAIL', 'c', 'EMAIL:c', ?, 'old-p3', 'OPEN', 2000, 2000, 2000)`, []any{sms00, smsPlus, annZW}},
		{`INSERT INTO messages (tenant, id, interaction_id, direction, body, sent_at, created_at) VALUES
			('t1', 'm1', 'i1', 'INBOUND', 'one', 1500, 1500), ('t1', 'm2', 'i2', 'INBOUND', 'two', 3000, 3000),
			('t1', 'm3', 'i3', 'INBOUND', 'three', 2000, 2000)`, nil},
		{`INSERT INTO profiles (tenant, id, custom_name, created_at, updated_at) VALUES
			('t1', 'old-p1', 'Ann VIP', 1000, 1000), ('t1', 'old-p2', '', 5000, 5000), ('t1', 'old-p3', '', 2000, 2000)`, nil},
		{`INSERT INTO profile_links (tenant, id, profile_id, contact_id, reason, by, linked_at) VALUES ('t1', 'l1', 'old-p1', ?, 'MANUAL', 'admin-key', 4000)`, []any{chat}},
		{`PRAGMA user_version = 4`, nil},
	}
	for _, st := range stmts {
		if _, err := db.Exec(st.q, st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := func(pending func(context.Context) ([]string, error), step func(context.Context, string, int) (bool, error)) {
		tenants, err := pending(ctx)
		if err != nil || len(tenants) != 1 {
			t.Fatalf("pending = %v, %v; want t1", tenants, err)
		}
		for done := false; !done; {
			if done, err = step(ctx, "t1", 2); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(s.PendingCanonicalizations, s.CanonicalizeContacts)
	run(s.PendingEvaluations, s.EvaluateRules)

	sms := related.ContactID("t1", related.ChannelSMS, "+447400123456")
	cs, err := s.Contacts(ctx, "t1", []string{ann, annZW, sms00, smsPlus, chat, bob})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*related.Contact{}
	for _, c := range cs {
		got[c.ID] = c
	}
	if len(cs) != 4 || got[ann] == nil || got[sms] == nil || got[chat] == nil || got[bob] == nil {
		t.Fatalf("contacts after the upgrade = %v, want the duplicates merged", cs)
	}
	if got[sms].Name != "Ann mobile" || !got[sms].CreatedAt.Equal(fromMS(1500)) {
		t.Fatalf("merged SMS contact = %+v, want the older one's name and creation", got[sms])
	}
	its, _ := s.Interactions(ctx, "t1", []string{"i1", "i2", "i3"})
	for _, i := range its {
		want := sms
		if i.ID == "i3" {
			want = ann
		}
		if i.ContactID != want {
			t.Fatalf("interaction %s on %s, want %s", i.ID, i.ContactID, want)
		}
		if ms, _ := s.ListMessages(ctx, "t1", i.ID, store.Page{First: 10}); len(ms.Items) != 1 {
			t.Fatalf("interaction %s has %d messages, want 1", i.ID, len(ms.Items))
		}
	}
	if got[ann].ProfileID == "" || got[chat].ProfileID != got[ann].ProfileID || got[bob].ProfileID == got[ann].ProfileID {
		t.Fatalf("profiles: ann %q chat %q bob %q; want the manual link kept", got[ann].ProfileID, got[chat].ProfileID, got[bob].ProfileID)
	}
	p, err := s.currentProfile(ctx, s.r, "t1", "old-p1", "id")
	if err != nil || p.ID != got[ann].ProfileID || p.Name != "Ann VIP" {
		t.Fatalf("the old profile id leads to %+v, %v; want %s named Ann VIP", p, err, got[ann].ProfileID)
	}
}
