package sqlite_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// TestErasureIsAllOrNothing interrupts an erasure between its steps (the
// context ends as soon as the first message has been deleted, as a crash
// would stop the process there) and checks that nothing of the person was
// erased, then that the erasure, asked again, finishes.
func TestErasureIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []string
	for i, ch := range []related.Channel{related.ChannelEmail, related.ChannelEmail, related.ChannelWebChat} {
		addr := "kim@example.com"
		if ch == related.ChannelWebChat {
			addr = "visitor-kim"
		}
		in, err := related.RecordMessage{Channel: ch, ThreadRef: "kim-" + string(rune('a'+i)), Direction: related.Inbound, Body: "hello",
			Contact: related.ContactInput{Address: addr, Attributes: []related.Attribute{{Key: "email", Value: "kim@example.com", Attested: true}}}}.Normalize(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.RecordMessage(ctx, "t1", in)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Interaction.ID)
	}
	its, _ := s.Interactions(ctx, "t1", ids)
	profile := its[0].ProfileID
	crash, stop := context.WithCancel(ctx)
	sqlite.Observe(s, func(q string, _ []any) {
		if strings.HasPrefix(q, "DELETE FROM messages") {
			stop() // the process dies here
		}
	})
	if _, err := s.EraseProfile(crash, "t1", profile, "request", related.System); err == nil {
		t.Fatal("an interrupted erasure reported success")
	}
	sqlite.Observe(s, nil)
	if its, _ := s.Interactions(ctx, "t1", ids); len(its) != 3 {
		t.Fatalf("after the interruption %d of 3 interactions remain: half-erased", len(its))
	}
	for _, id := range ids {
		if ms, _ := s.ListMessages(ctx, "t1", id, store.Page{First: 10}, true); len(ms.Items) != 1 {
			t.Fatalf("interaction %s lost its message to an interrupted erasure", id)
		}
	}
	if page, _ := s.Erasures(ctx, "t1", store.Page{First: 10}); len(page.Items) != 0 {
		t.Fatalf("an interrupted erasure left a tombstone: %+v", page.Items)
	}
	er, err := s.EraseProfile(ctx, "t1", profile, "request", related.System)
	if err != nil || er.Interactions != 3 {
		t.Fatalf("erasure asked again = %+v, %v", er, err)
	}
	if its, _ := s.Interactions(ctx, "t1", ids); len(its) != 0 {
		t.Fatalf("%d interactions remain", len(its))
	}
}

// TestRebuildAfterCrash: an erasure whose process stopped between its
// commit and the rebuild of the file (the rebuild is not recorded) has the
// file rebuilt at the next start, and only then.
func TestRebuildAfterCrash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var log strings.Builder
	open := func() *sqlite.Store {
		t.Helper()
		s, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: "lee", Direction: related.Inbound, Body: "hello",
		Contact: related.ContactInput{Address: "lee@example.com"}}.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.RecordMessage(ctx, "t1", in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.EraseContact(ctx, "t1", r.Contact.ID, "request", related.System); err != nil {
		t.Fatal(err)
	}
	rebuilds := func() int { return strings.Count(log.String(), "database rebuilt after an erasure") }
	if rebuilds() != 1 {
		t.Fatalf("%d rebuilds after one erasure", rebuilds())
	}
	s.Close()
	s = open()
	if rebuilds() != 1 {
		t.Fatal("a start rebuilt the file though the erasure's rebuild was done")
	}
	// The process stops after the commit, before the rebuild: as if the
	// rebuild had never been recorded.
	if err := sqlite.Exec(s, `DELETE FROM maintenance WHERE name = 'rebuilt'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open()
	defer s.Close()
	if rebuilds() != 2 || !strings.Contains(log.String(), `after="a crash"`) {
		t.Fatalf("the start after the crash did not rebuild: %s", log.String())
	}
}
