package store

import (
	"context"
	"log/slog"
	"time"
)

// EvaluationBatch is how many contacts one EvaluateRules call re-links:
// small enough that one batch's transaction stays short beside live
// traffic.
const EvaluationBatch = 200

// RunEvaluations re-evaluates contacts after rule changes, in the
// background, until ctx ends: it looks for running evaluations every
// interval and works each to its end, batch by batch. Progress is in the
// database, so a restart resumes where the last batch stopped.
func RunEvaluations(ctx context.Context, s ProfileStore, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		tenants, err := s.PendingEvaluations(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("rule evaluation: list pending", "err", err)
		}
		for _, tenant := range tenants {
			for ctx.Err() == nil {
				done, err := s.EvaluateRules(ctx, tenant, EvaluationBatch)
				if err != nil {
					if ctx.Err() == nil {
						log.Warn("rule evaluation failed; retrying", "tenant", tenant, "err", err)
					}
					break
				}
				if done {
					log.Info("rule evaluation done", "tenant", tenant)
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
