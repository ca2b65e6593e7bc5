package live

import (
	"testing"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

func TestListKind(t *testing.T) {
	open := &related.Interaction{Status: related.StatusOpen}
	closed := &related.Interaction{Status: related.StatusClosed, ClosedState: related.ClosedStateSpam}
	for _, c := range []struct {
		name   string
		event  store.EventKind
		filter related.Status
		it     *related.Interaction
		want   ChangeKind
		shown  bool
	}{
		{"new, open list", store.InteractionCreated, related.StatusOpen, open, Added, true},
		{"new, every status", store.InteractionCreated, "", open, Added, true},
		{"new, closed list: never in it", store.InteractionCreated, related.StatusClosed, open, "", false},
		{"message, open list", store.InteractionUpdated, related.StatusOpen, open, Updated, true},
		{"message, closed list", store.InteractionUpdated, related.StatusClosed, open, Removed, true},
		{"close, open list", store.InteractionUpdated, related.StatusOpen, closed, Removed, true},
		{"close, closed list", store.InteractionUpdated, related.StatusClosed, closed, Updated, true},
		{"close, every status", store.InteractionUpdated, "", closed, Updated, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, shown := listKind(c.event, c.filter, c.it)
			if got != c.want || shown != c.shown {
				t.Fatalf("listKind = %q, %v; want %q, %v", got, shown, c.want, c.shown)
			}
		})
	}
}
