package live_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store/mongo/mongotest"
)

// Two gateway replicas on one database: a write through either reaches a
// subscriber on the other within the feed's poll (250 ms here), and
// exactly once on the replica that took it (the local publish and the
// feed's copy are de-duplicated by event id).
func TestTwoReplicas(t *testing.T) {
	db := mongotest.FreshDB()
	r1 := newReplica(t, replicaOpts{mongo: ferret.URI, db: db})
	r2 := newReplica(t, replicaOpts{mongo: ferret.URI, db: db})
	a := r1.record(r1.key, "a", "ann@example.com", "first", "")
	c := r2.dial(r2.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r2.waitSubs(1)

	start := time.Now()
	b := r1.record(r1.key, "b", "ann@example.com", "through replica 1", "")
	expect(t, c.nextChange("rel"), "ADDED", b)
	t.Logf("replica 1 -> subscriber on replica 2: %s", time.Since(start).Round(time.Millisecond))

	r2.record(r2.key, "b", "ann@example.com", "through replica 2", "")
	expect(t, c.nextChange("rel"), "UPDATED", b)
	r1.record(r1.key, "b", "ann@example.com", "through replica 1 again", "")
	expect(t, c.nextChange("rel"), "UPDATED", b)
	// No repeats once the feed has re-read its overlap window.
	c.none("rel", 2500*time.Millisecond)
}

// A replica whose database restarts keeps its subscribers: its feed
// retries, resumes after the last event it read and delivers what was
// written meanwhile, once.
func TestFeedResumesAfterRestart(t *testing.T) {
	if os.Getenv("MONGODB_URI") != "" {
		t.Log("restarts an embedded FerretDB, whatever MONGODB_URI says")
	}
	db, err := mongotest.StartRestartable(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	name := mongotest.FreshDB()
	r1 := newReplica(t, replicaOpts{mongo: db.URI, db: name})
	r2 := newReplica(t, replicaOpts{mongo: db.URI, db: name})
	a := r1.record(r1.key, "a", "ann@example.com", "first", "")
	c := r2.dial(r2.key, transportWS)
	c.subscribe("rel", relatedSub, map[string]any{"id": a})
	r2.waitSubs(1)
	b := r1.record(r1.key, "b", "ann@example.com", "before", "")
	expect(t, c.nextChange("rel"), "ADDED", b)

	if err := db.Stop(); err != nil {
		t.Fatal(err)
	}
	// Long enough for replica 2's feed to fail a few polls and back off.
	time.Sleep(time.Second)
	if err := db.Start(); err != nil {
		t.Fatal(err)
	}
	// Writes through replica 1 as soon as the database answers, while
	// replica 2's feed may still be backing off.
	deadline := time.Now().Add(20 * time.Second)
	var bodies []string
	for i := 0; len(bodies) < 3; i++ {
		body := "after restart " + string(rune('a'+len(bodies)))
		if _, err := r1.st.RecordMessage(context.Background(), server.DemoTenant, mustInput(t, "b", "ann@example.com", body)); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("the database did not come back: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		bodies = append(bodies, body)
	}
	got := map[string]int{}
	for range bodies {
		ch := c.next("rel", 15*time.Second)
		if ch.Type != "next" {
			t.Fatalf("got %s %s", ch.Type, ch.Payload)
		}
		got[string(ch.Payload)]++
	}
	c.none("rel", 2500*time.Millisecond)
	last := ""
	for p := range got {
		if strings.Contains(p, bodies[2]) {
			last = p
		}
	}
	if last == "" {
		t.Fatalf("the last write after the restart never showed: %v", got)
	}
}
