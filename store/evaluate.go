package store

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// A rule evaluation (EvaluateRules) runs in two phases, each a pass over
// the tenant's contacts in id order, batch by batch, with its position
// stored after every batch so a restart resumes there:
//
//  1. EvaluationValues: each contact's stored values are brought up to
//     date with the rules, with the counts of contacts per value (so the
//     quarantine of hub values). No profile is decided.
//  2. EvaluationProfiles: the clusters of the contacts the change touches
//     (EvaluationScope) are recomputed over the final values, each cluster
//     once: the contacts a batch's recompute gathered beyond the batch are
//     remembered (Covered) and not recomputed again.
//
// Deciding a cluster while only some of its contacts hold their new
// values would make profiles no rule makes: three contacts share a value
// of a new rule that allows two holders; the batch that syncs the second
// would merge two of them, and the batch that syncs the third would split
// them again, a merge agents could see. In the second phase every value
// and count is final (but for writes made meanwhile, which recompute
// their own clusters), so each cluster is decided once, from its state
// before the run to its state after, and no two batches decide the same
// contacts: the sum of the batches' summaries is the whole run's, over
// the clusters a preview of the change (PreviewRules) decides. Values
// newly quarantined are counted where a count makes them so (in the first
// phase), or by the rule's new bound when it is saved.
//
// Progress counts steps: every contact is one step in each phase, so a
// run over n contacts has 2n steps, and Processed never passes Total.
// Contacts written during the run are counted as they come.
const (
	EvaluationValues   = "VALUES"
	EvaluationProfiles = "PROFILES"
)

// EvaluationScope is what a rule evaluation decides again: the clusters of
// the contacts holding a value of one of Keys, under the rules before the
// change or after (ChangedKeys), or, with All, every contact's (a change
// of region, an upgrade). A contact that lost its last value of Keys in
// the first phase is marked by the adapter so the second still finds it.
type EvaluationScope struct {
	All  bool     `json:"all,omitempty"`
	Keys []string `json:"keys,omitempty"`
}

// Union is the scope of a run restarted by another change before it
// finished: both changes' contacts.
func (s EvaluationScope) Union(o EvaluationScope) EvaluationScope {
	if s.All || o.All {
		return EvaluationScope{All: true}
	}
	keys := append(slices.Clone(s.Keys), o.Keys...)
	slices.Sort(keys)
	return EvaluationScope{Keys: slices.Compact(keys)}
}

// Touches reports whether a contact holding claims is in the scope.
func (s EvaluationScope) Touches(claims []identity.Claim) bool {
	return s.All || slices.ContainsFunc(claims, func(c identity.Claim) bool { return slices.Contains(s.Keys, c.Key) })
}

// Covered returns the contacts of covered and of in whose ids sort after
// after: those the second phase has decided already, ahead of its
// position, and must not decide (or count) again.
func Covered(covered []string, in identity.Input, after string) []string {
	out := slices.DeleteFunc(slices.Clone(covered), func(id string) bool { return id <= after })
	for _, c := range in.Contacts {
		if c.ID > after {
			out = append(out, c.ID)
		}
	}
	return uniq(out)
}

// RuleEvaluation is the progress of re-evaluating a tenant's contacts
// after its rules changed, and what the run changed so far.
type RuleEvaluation struct {
	Tenant    string
	State     related.JobState
	Processed int
	Total     int
	// Summary counts what the run changed so far, as a preview of the
	// change counts it (PreviewRules), with the run's first samples.
	Summary   identity.Summary
	StartedAt time.Time
	UpdatedAt time.Time
}

// EvaluationBatch is how many contacts one EvaluateRules or
// CanonicalizeContacts call handles: small enough that one batch's
// transaction stays short beside live traffic.
const EvaluationBatch = 200

// RunEvaluations keeps tenants' identity current in the background, until
// ctx ends: every interval it looks for running address canonicalizations
// (after an upgrade or a change of a tenant's region) and rule
// re-evaluations, and works each to its end, batch by batch,
// canonicalizations first (a rule reads canonical addresses). Progress is
// in the database, so a restart resumes where the last batch stopped.
func RunEvaluations(ctx context.Context, s Store, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		run(ctx, log, "address canonicalization", s.PendingCanonicalizations, s.CanonicalizeContacts)
		run(ctx, log, "rule evaluation", s.PendingEvaluations, s.EvaluateRules)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// run works every pending job of one kind to its end, logging progress.
func run(ctx context.Context, log *slog.Logger, what string, pending func(context.Context) ([]string, error),
	step func(ctx context.Context, tenant string, batch int) (bool, error)) {
	tenants, err := pending(ctx)
	if err != nil && ctx.Err() == nil {
		log.Warn(what+": list pending", "err", err)
	}
	for _, tenant := range tenants {
		batches := 0
		for ctx.Err() == nil {
			done, err := step(ctx, tenant, EvaluationBatch)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn(what+" failed; retrying", "tenant", tenant, "err", err)
				}
				break
			}
			batches++
			if done {
				log.Info(what+" done", "tenant", tenant, "batches", batches)
				break
			}
			if batches%50 == 0 {
				log.Info(what+" in progress", "tenant", tenant, "contacts", batches*EvaluationBatch)
			}
		}
	}
}
