package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
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
		if ms, _ := s.ListMessages(ctx, "t1", i.ID, store.Page{First: 10}, true); len(ms.Items) != 1 {
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

// TestUpgradeFinishesAnEvaluationInProgress stops a rule evaluation of
// the version before phases (schema 5) part of the way and upgrades: the
// run goes on bringing the values of the contacts it has not reached up to
// date, then decides every contact's cluster, with a total that counts
// each contact twice and never falls behind what it processed.
func TestUpgradeFinishesAnEvaluationInProgress(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *Store {
		s, err := Open(ctx, Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	var contacts []string
	for i := range 6 {
		in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: fmt.Sprint("t", i), Direction: related.Inbound, Body: "hi",
			Contact: related.ContactInput{Address: fmt.Sprintf("c%d@x.io", i), Attributes: []related.Attribute{
				{Key: "customerId", Value: fmt.Sprint("C-", i/2), Attested: true, By: "crm", Role: related.RoleIntegration}}},
		}.Normalize(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RecordMessage(ctx, "t1", in)
		if err != nil {
			t.Fatal(err)
		}
		contacts = append(contacts, r.Contact.ID)
	}
	rule, err := identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact, Enabled: true,
		MaxContactsPerValue: identity.DefaultMaxContactsPerValue}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveProfileRule(ctx, "t1", rule); err != nil {
		t.Fatal(err)
	}
	// The old run handled two contacts (their values are up to date),
	// then the server stopped and was upgraded.
	if done, err := s.EvaluateRules(ctx, "t1", 2); err != nil || done {
		t.Fatalf("first batch: done %v, %v", done, err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: filepath.Join(dir, FileName)}).EscapedPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE rule_evaluations SET processed = 2, total = 6`,
		`ALTER TABLE rule_evaluations DROP COLUMN phase`, `ALTER TABLE rule_evaluations DROP COLUMN run`,
		`ALTER TABLE rule_evaluations DROP COLUMN scope`, `ALTER TABLE rule_evaluations DROP COLUMN covered`,
		`ALTER TABLE contacts DROP COLUMN evaluation_mark`, `DROP TABLE maintenance`, `DROP INDEX erasures_at`, `PRAGMA user_version = 5`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s = open()
	defer s.Close()
	ev, err := s.RuleEvaluation(ctx, "t1")
	if err != nil || ev.State != related.JobRunning || ev.Processed != 2 || ev.Total != 12 {
		t.Fatalf("after the upgrade = %+v, %v; want 2 of 12 steps (six contacts, twice)", ev, err)
	}
	for done := false; !done; {
		if done, err = s.EvaluateRules(ctx, "t1", 2); err != nil {
			t.Fatal(err)
		}
		if ev, _ = s.RuleEvaluation(ctx, "t1"); ev.Processed > ev.Total {
			t.Fatalf("progress %d of %d", ev.Processed, ev.Total)
		}
	}
	if ev.State != related.JobDone || ev.Processed != ev.Total || ev.Summary.Merged != 3 {
		t.Fatalf("finished = %+v; want every step done and the three pairs merged", ev)
	}
	cs, err := s.Contacts(ctx, "t1", contacts)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for _, c := range cs {
		byID[c.ID] = c.ProfileID
	}
	for i := 0; i < 6; i += 2 {
		a, b := byID[contacts[i]], byID[contacts[i+1]]
		if a == "" || a != b || i > 0 && a == byID[contacts[0]] {
			t.Fatalf("contacts %d and %d in %q and %q; want each pair one profile of its own", i, i+1, a, b)
		}
	}
}
