package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// testOpenReader holds a store's OpenReader to its PanelReader: the flat
// rows of the compiled plan must say what the documents of the resolvers
// say, for both scopes, every paging direction, empty pages, long last
// messages, closed interactions and interactions without a queue or a
// profile. It also runs every statement the OpenReader sends, so the
// adapters' plan checks see them.
func testOpenReader(t *testing.T, open Opener) {
	e := open(t)
	or, ok := e.Store.(store.OpenReader)
	pr, ok2 := e.Store.(store.PanelReader)
	if !ok || !ok2 {
		t.Skip("the store reads the panel through the generic path")
	}
	ctx := context.Background()
	var ids []string
	var contact string
	for i := range 9 {
		body := fmt.Sprint("body ", i)
		if i%4 == 1 {
			body = strings.Repeat("long ", related.InlineBodyLength)
		}
		in := msg(t, related.ChannelEmail, fmt.Sprint("open-", i), "open@x.io", body, base.Add(time.Duration(i)*time.Minute))
		if i%3 == 0 {
			in.Queue = "Billing"
		}
		in.Author = []string{"", "Agent Smith"}[i%2]
		r := record(t, e.Store, "t1", in)
		ids = append(ids, r.Interaction.ID)
		contact = r.Contact.ID
		if i%3 == 2 {
			if _, err := e.Store.CloseInteraction(ctx, "t1", r.Interaction.ID, related.ClosedStateIgnored, base.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Views: each interaction, and one that is not there.
	for _, id := range append(ids, "nosuch") {
		views, err := pr.InteractionViews(ctx, "t1", []string{id})
		if err != nil {
			t.Fatal(err)
		}
		var v store.OpenView
		found, err := or.OpenView(ctx, "t1", id, &v)
		if err != nil {
			t.Fatal(err)
		}
		if found != (len(views) == 1) {
			t.Fatalf("OpenView(%s) found %v, InteractionViews %d", id, found, len(views))
		}
		if !found {
			continue
		}
		want := views[0]
		if got, w := openViewText(&v), viewText(want); got != w {
			t.Fatalf("OpenView(%s) =\n%s\nwant (InteractionViews)\n%s", id, got, w)
		}
	}
	// Pages: forward, backward, windows, empty ones, by contact.
	q := store.RelatedQuery{ContactID: contact, Exclude: ids[4]}
	mid := store.Cursor{At: base.Add(6 * time.Minute), ID: ids[6]}
	low := store.Cursor{At: base.Add(2 * time.Minute), ID: ids[2]}
	pages := []store.Page{{First: 20}, {First: 3}, {First: 0}, {First: 2, After: &mid}, {Last: 2}, {Last: 3, Before: &low},
		{First: 20, After: &mid, Before: &low}, {First: 5, After: &low}, {Last: 0}}
	for _, p := range pages {
		want, err := pr.RelatedPanel(ctx, "t1", q, p)
		if err != nil {
			t.Fatal(err)
		}
		var got store.PanelRows
		if err := or.PanelRows(ctx, "t1", q, p, &got); err != nil {
			t.Fatal(err)
		}
		if g, w := rowsText(&got), pageText(want); g != w {
			t.Fatalf("PanelRows(%+v) =\n%s\nwant (RelatedPanel)\n%s", p, g, w)
		}
	}
	// A query names exactly one of contact and profile.
	if err := or.PanelRows(ctx, "t1", store.RelatedQuery{}, store.Page{First: 1}, &store.PanelRows{}); err == nil {
		t.Fatalf("PanelRows without a contact or profile: no error")
	}
}

// The texts below put both readers' answers in one form to compare them.

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func messageText(m *related.Message) string {
	if m == nil {
		return "no message"
	}
	return fmt.Sprintf("message %s %q %s %q %d partial=%v", m.ID, m.Body, m.Direction, m.Author, ms(m.SentAt), m.Partial)
}

func openMessageText(m store.OpenMessage, author bool) string {
	if m.ID == "" {
		return "no message"
	}
	if !author {
		m.Author = "-"
	}
	return fmt.Sprintf("message %s %q %s %q %d partial=%v", m.ID, m.Body, m.Direction, m.Author, m.SentAt, m.Partial)
}

func viewText(v *store.InteractionView) string {
	i, c := v.Interaction, v.Contact
	s := fmt.Sprintf("%s %s %s %q %d %d contact %s %q %q profile-id %q queue %q %q\n%s\n", i.ID, i.Channel, i.Status, i.ClosedState, ms(i.ClosedAt), ms(i.CreatedAt),
		c.ID, c.Name, c.Address, i.ProfileID, i.QueueID, i.QueueName, messageText(i.LastMessage))
	if p := v.Profile; p != nil {
		chans := make([]string, len(p.Channels))
		for k, ch := range p.Channels {
			chans[k] = `"` + string(ch) + `"`
		}
		s += fmt.Sprintf("profile %s %q %q [%s] %d %q", p.ID, p.CustomName, p.AutoName, strings.Join(chans, ","), p.ContactCount, p.MergedInto)
	} else {
		s += "no profile"
	}
	return s
}

func openViewText(v *store.OpenView) string {
	s := fmt.Sprintf("%s %s %s %q %d %d contact %s %q %q profile-id %q queue %q %q\n%s\n", v.ID, v.Channel, v.Status, v.ClosedState, v.ClosedAt, v.CreatedAt,
		v.ContactID, v.ContactName, v.ContactAddress, v.ProfileID, v.QueueID, v.QueueName, openMessageText(v.Last, true))
	if p := v.Profile; p.ID != "" {
		s += fmt.Sprintf("profile %s %q %q %s %d %q", p.ID, p.CustomName, p.AutoName, p.Channels, p.Contacts, p.MergedInto)
	} else {
		s += "no profile"
	}
	return s
}

func pageText(p *store.InteractionPage) string {
	s := fmt.Sprintf("total %d next %v prev %v\n", p.Total, p.HasNextPage, p.HasPreviousPage)
	names := map[string]string{}
	for _, c := range p.Contacts {
		names[c.ID] = c.Name
	}
	for _, i := range p.Items {
		m := i.LastMessage
		if m != nil {
			c := *m
			c.Author = "-"
			m = &c
		}
		s += fmt.Sprintf("%s %s %s %q %d %d contact %s %q queue %q %q %s\n", i.ID, i.Channel, i.Status, i.ClosedState, ms(i.ClosedAt), ms(i.CreatedAt),
			i.ContactID, names[i.ContactID], i.QueueID, i.QueueName, messageText(m))
	}
	return s
}

func rowsText(p *store.PanelRows) string {
	s := fmt.Sprintf("total %d next %v prev %v\n", p.Total, p.HasNextPage, p.HasPreviousPage)
	for _, r := range p.Rows {
		s += fmt.Sprintf("%s %s %s %q %d %d contact %s %q queue %q %q %s\n", r.ID, r.Channel, r.Status, r.ClosedState, r.ClosedAt, r.CreatedAt,
			r.ContactID, r.ContactName, r.QueueID, r.QueueName, openMessageText(r.Last, false))
	}
	return s
}
