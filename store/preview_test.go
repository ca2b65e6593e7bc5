package store_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// TestPreviewCountsASuggestionOnce previews a rule whose value an attested
// and a claimed contact share, gathering one touched contact at a time: the
// suggestion between their clusters is new to both gatherings, and the
// preview counts it once, as the change's run does.
func TestPreviewCountsASuggestionOnce(t *testing.T) {
	defer store.SetPreviewChunk(1)()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, sqlite.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, attested := range []bool{true, false} {
		in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: "t", Direction: related.Inbound, Body: "hi",
			Contact: related.ContactInput{Address: []string{"a@x.io", "b@x.io"}[i], Attributes: []related.Attribute{
				{Key: "loyaltyId", Value: "L-1", Attested: attested, By: "crm", Role: related.RoleIntegration}}},
		}.Normalize(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.RecordMessage(ctx, "t1", in); err != nil {
			t.Fatal(err)
		}
	}
	rule, err := identity.Rule{Attribute: "loyaltyId", Normalizer: identity.NormalizeExact, Enabled: true,
		AutoMerge: identity.AutoMergeAttested, MaxContactsPerValue: identity.DefaultMaxContactsPerValue}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := s.ProfileRules(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	pv, err := s.PreviewRules(ctx, "t1", append(rules, rule))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveProfileRule(ctx, "t1", rule); err != nil {
		t.Fatal(err)
	}
	for done := false; !done; {
		if done, err = s.EvaluateRules(ctx, "t1", 1); err != nil {
			t.Fatal(err)
		}
	}
	ev, err := s.RuleEvaluation(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if pv.Suggestions != 1 || ev.Summary.Suggestions != 1 {
		t.Fatalf("suggestions: the preview says %d, the run %d; want 1", pv.Suggestions, ev.Summary.Suggestions)
	}
}
