package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

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
