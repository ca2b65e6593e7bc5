package sqlite_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// TestFullDiskErrorSaysOnlyThat: a write refused by a full database is
// unavailable, and its error is the disk's, not also a failed rollback of
// the transaction SQLite had already rolled back itself.
func TestFullDiskErrorSaysOnlyThat(t *testing.T) {
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), MaxBytes: 600 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := strings.Repeat("x", 30<<10)
	for i := range 100 {
		in, nerr := related.RecordMessage{
			Channel: related.ChannelEmail, ThreadRef: fmt.Sprint("t", i), Direction: related.Inbound, Body: body,
			SentAt: time.Date(2026, 3, 1, 9, 0, i, 0, time.UTC), Contact: related.ContactInput{Address: "full@example.com"},
		}.Normalize(time.Now())
		if nerr != nil {
			t.Fatal(nerr)
		}
		_, err = st.RecordMessage(context.Background(), "t1", in)
		if err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("100 writes of 30 KiB fit in 600 KiB")
	}
	if !store.Unavailable(st, err) || strings.Contains(err.Error(), "rollback") {
		t.Fatalf("the refused write's error: %v", err)
	}
}
