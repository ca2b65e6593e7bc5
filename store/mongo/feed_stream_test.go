package mongo

import (
	"context"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/storetest"
)

// TestFeedChangeStream reads the events of another replica's writes
// through a change stream. It needs MONGODB_URI naming a replica set (or
// sharded cluster): FerretDB has no change streams and a standalone
// MongoDB offers none, and the poll reader is tested there instead.
func TestFeedChangeStream(t *testing.T) {
	if !server.atomic {
		t.Skip("needs MONGODB_URI naming a MongoDB replica set: FerretDB has no change streams")
	}
	d := newTestDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := new(storetest.Recorder)
	f, err := StartFeed(ctx, FeedOptions{URI: server.uri, Database: d.name, Publisher: rec, Mode: FeedChangeStream, Logger: testLogger()})
	if err != nil {
		t.Skipf("the server offers no change stream (not a replica set?): %v", err)
	}
	defer f.Close()
	if !f.Stream() {
		t.Fatal("FeedChangeStream started a feed that polls")
	}
	in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: "cs", Direction: related.Inbound, Body: "via the stream",
		Contact: related.ContactInput{Address: "cs@example.com"}}.Normalize(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.cur.RecordMessage(ctx, "t1", in)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, ev := range rec.Events() {
			if ev.InteractionID == res.Interaction.ID && ev.Kind == store.InteractionCreated {
				return
			}
		}
	}
	t.Fatalf("the change stream delivered no event for the write; got %+v", rec.Events())
}
