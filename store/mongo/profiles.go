package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// The store.ProfileStore methods: rules, their re-evaluation, and the
// reads of profiles, pairs, history and hub values, with the SQLite
// adapter's semantics. Linking is in link.go, manual control in
// manual.go.

var _ store.ProfileStore = (*Store)(nil)

// Evaluation states.
const (
	evaluationRunning = "RUNNING"
	evaluationDone    = "DONE"
)

func evaluationID(tenant string) string { return related.DerivedID(tenant, "rule-evaluation") }

// ProfileRules implements store.ProfileStore.
func (s *Store) ProfileRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	r, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile rules: %w", err)
	}
	return slices.Clone(r), nil
}

// SaveProfileRule implements store.ProfileStore.
func (s *Store) SaveProfileRule(ctx context.Context, tenant string, r identity.Rule) (identity.Rule, error) {
	ts := now()
	defer s.cache.forget(tenant)
	stored, err := s.storedRules(ctx, tenant)
	if err != nil {
		return r, fmt.Errorf("mongo: save rule: %w", err)
	}
	current := identity.WithDefaults(tenant, stored)
	var prev *identity.Rule
	if r.ID != "" {
		i := slices.IndexFunc(current, func(x identity.Rule) bool { return x.ID == r.ID })
		if i < 0 {
			return r, related.NotFound("no such rule", "id")
		}
		prev = &current[i]
	} else {
		if len(current) >= identity.MaxRules {
			return r, related.Invalid(fmt.Sprintf("a tenant has at most %d rules", identity.MaxRules), "attribute")
		}
		r.ID = related.NewID()
	}
	conflict := func() error {
		return &related.Error{Code: related.CodeConflict, Field: []string{"attribute"},
			Message: fmt.Sprintf("a rule for %q exists already; update it instead", r.Attribute)}
	}
	for _, x := range current {
		if x.Attribute == r.Attribute && x.ID != r.ID {
			return r, conflict()
		}
	}
	if r.AutoMerge == "" {
		r.AutoMerge = identity.DefaultAutoMerge(r.Attribute, r.Normalizer)
	}
	r.Tenant, r.UpdatedAt, r.CreatedAt, r.Deleted = tenant, ts, ts, false
	if prev != nil && !prev.CreatedAt.IsZero() {
		r.CreatedAt = prev.CreatedAt
	}
	rules := s.coll(collProfileRules)
	// A deleted rule of the same attribute (a deleted default) makes room
	// for the new one.
	for _, x := range stored {
		if x.Deleted && x.Attribute == r.Attribute && x.ID != r.ID {
			if _, err := rules.DeleteOne(ctx, byID(tenant, x.ID)); err != nil {
				return r, fmt.Errorf("mongo: save rule: %w", err)
			}
		}
	}
	blocked := r.BlockedValues
	if blocked == nil {
		blocked = []string{}
	}
	maxContacts := r.MaxContactsPerValue
	doc := &ruleDoc{
		ID: r.ID, Tenant: tenant, Attribute: r.Attribute, Normalizer: string(r.Normalizer), Enabled: r.Enabled,
		Priority: r.Priority, MaxPerProfile: r.MaxPerProfile, BlockedValues: blocked, DefaultRegion: r.DefaultRegion,
		AutoMerge: string(r.AutoMerge), MaxContactsPerValue: &maxContacts, CreatedAt: r.CreatedAt, UpdatedAt: ts,
	}
	if _, err := rules.ReplaceOne(ctx, byID(tenant, r.ID), doc, options.Replace().SetUpsert(true)); err != nil {
		if maybeDuplicate(err) {
			// The unique {tenant, attribute}: a concurrent save of another
			// rule for the attribute won.
			if again, rerr := s.storedRules(ctx, tenant); rerr == nil && slices.ContainsFunc(again, func(x identity.Rule) bool {
				return x.Attribute == r.Attribute && x.ID != r.ID && !x.Deleted
			}) {
				return r, conflict()
			}
		}
		return r, fmt.Errorf("mongo: save rule: %w", err)
	}
	quarantined, err := s.remarkValues(ctx, tenant, r, ts)
	if err != nil {
		return r, err
	}
	next := slices.Clone(current)
	if prev != nil {
		next[slices.IndexFunc(next, func(x identity.Rule) bool { return x.ID == r.ID })] = r
	} else {
		next = append(next, r)
	}
	if err := s.startEvaluation(ctx, tenant, store.EvaluationScope{Keys: store.ChangedKeys(current, next)}, quarantined, ts); err != nil {
		return r, err
	}
	return r, nil
}

// remarkValues recomputes which values of r's key are quarantined under
// its (new) threshold, for the hub list: one bulk of updateManys, each
// bumping the documents' versions so a count in flight retries. The
// re-evaluation relinks. It returns how many values held by someone the
// (enabled) rule newly quarantines, for the re-evaluation's summary.
func (s *Store) remarkValues(ctx context.Context, tenant string, r identity.Rule, ts time.Time) (int, error) {
	base := func(more ...bson.E) bson.D {
		return append(bson.D{{Key: "tenant", Value: tenant}, {Key: "key", Value: r.Attribute}}, more...)
	}
	mark := func(quarantined, isListed bool) bson.D {
		return bson.D{{Key: "$set", Value: bson.D{{Key: "quarantined", Value: quarantined}, {Key: "listed", Value: isListed}, {Key: "updatedAt", Value: ts}}},
			{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}}
	}
	automatic := bson.E{Key: "state", Value: string(identity.QuarantineAutomatic)}
	var newly int64
	if r.Enabled && r.MaxContactsPerValue > 0 {
		var err error
		if newly, err = s.coll(collValueStats).CountDocuments(ctx, base(automatic,
			bson.E{Key: "contacts", Value: bson.D{{Key: "$gt", Value: r.MaxContactsPerValue}}}, bson.E{Key: "quarantined", Value: false})); err != nil {
			return 0, fmt.Errorf("mongo: count values: %w", err)
		}
	}
	models := []mongodriver.WriteModel{
		mongodriver.NewUpdateManyModel().SetFilter(base(bson.E{Key: "state", Value: string(identity.QuarantineBlocked)})).SetUpdate(mark(true, true)),
		mongodriver.NewUpdateManyModel().SetFilter(base(bson.E{Key: "state", Value: string(identity.QuarantineAllowed)})).SetUpdate(mark(false, true)),
	}
	if r.MaxContactsPerValue > 0 {
		models = append(models,
			mongodriver.NewUpdateManyModel().SetFilter(base(automatic, bson.E{Key: "contacts", Value: bson.D{{Key: "$gt", Value: r.MaxContactsPerValue}}})).SetUpdate(mark(true, true)),
			mongodriver.NewUpdateManyModel().SetFilter(base(automatic, bson.E{Key: "contacts", Value: bson.D{{Key: "$lte", Value: r.MaxContactsPerValue}}})).SetUpdate(mark(false, false)))
	} else {
		models = append(models, mongodriver.NewUpdateManyModel().SetFilter(base(automatic)).SetUpdate(mark(false, false)))
	}
	if _, err := s.coll(collValueStats).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err != nil {
		return 0, fmt.Errorf("mongo: mark values: %w", err)
	}
	return int(newly), nil
}

// DeleteProfileRule implements store.ProfileStore.
func (s *Store) DeleteProfileRule(ctx context.Context, tenant, id string) error {
	ts := now()
	defer s.cache.forget(tenant)
	stored, err := s.storedRules(ctx, tenant)
	if err != nil {
		return fmt.Errorf("mongo: delete rule: %w", err)
	}
	current := identity.WithDefaults(tenant, stored)
	i := slices.IndexFunc(current, func(x identity.Rule) bool { return x.ID == id })
	if i < 0 {
		return related.NotFound("no such rule", "id")
	}
	r := current[i]
	// Keep a deleted document, so a deleted default rule stays deleted.
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "deleted", Value: true}, {Key: "enabled", Value: false}, {Key: "updatedAt", Value: ts}}},
		{Key: "$setOnInsert", Value: bson.D{
			{Key: "attribute", Value: r.Attribute}, {Key: "normalizer", Value: string(r.Normalizer)}, {Key: "priority", Value: r.Priority},
			{Key: "maxPerProfile", Value: 0}, {Key: "blockedValues", Value: []string{}}, {Key: "defaultRegion", Value: ""},
			{Key: "autoMerge", Value: string(r.AutoMerge)}, {Key: "maxContactsPerValue", Value: r.MaxContactsPerValue}, {Key: "createdAt", Value: ts},
		}},
	}
	if _, err := s.coll(collProfileRules).UpdateOne(ctx, byID(tenant, r.ID), update, options.UpdateOne().SetUpsert(true)); err != nil {
		return fmt.Errorf("mongo: delete rule: %w", err)
	}
	return s.startEvaluation(ctx, tenant, store.EvaluationScope{Keys: []string{r.Attribute}}, 0, ts)
}

// startEvaluation (re)starts the re-evaluation of a tenant's contacts from
// the first contact, as a new run in its first phase over scope, with a
// summary that counts the values the change quarantined before any
// contact's (quarantined). A finished run starts afresh; a run still going
// is restarted with both changes' scope ($addToSet, so two changes at once
// both count) and keeps the id it marks contacts with, so the contacts it
// marked are still found.
func (s *Store) startEvaluation(ctx context.Context, tenant string, scope store.EvaluationScope, quarantined int, ts time.Time) error {
	n, err := s.contacts.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}})
	if err != nil {
		return fmt.Errorf("mongo: start rule evaluation: count contacts: %w", err)
	}
	id, jobs := evaluationID(tenant), s.coll(collEvaluations)
	run := bson.D{
		{Key: "run", Value: related.NewID()}, {Key: "state", Value: evaluationRunning}, {Key: "phase", Value: store.EvaluationValues},
		{Key: "processed", Value: 0}, {Key: "total", Value: 2 * int(n)}, {Key: "afterId", Value: ""}, {Key: "covered", Value: bson.A{}},
		{Key: "merged", Value: 0}, {Key: "split", Value: 0}, {Key: "created", Value: 0}, {Key: "removed", Value: 0}, {Key: "moved", Value: 0},
		{Key: "quarantined", Value: quarantined}, {Key: "suggestions", Value: 0}, {Key: "unchanged", Value: 0}, {Key: "samples", Value: bson.A{}},
		{Key: "startedAt", Value: ts}, {Key: "updatedAt", Value: ts},
	}
	keys := scope.Keys
	if keys == nil {
		keys = []string{}
	}
	afresh := append(slices.Clone(run), bson.E{Key: "scoped", Value: !scope.All}, bson.E{Key: "scopeKeys", Value: keys},
		bson.E{Key: "mark", Value: related.NewID()})
	res, err := jobs.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "state", Value: evaluationDone}},
		bson.D{{Key: "$set", Value: afresh}})
	if err != nil {
		return fmt.Errorf("mongo: start rule evaluation: %w", err)
	}
	if res.MatchedCount == 1 {
		return nil
	}
	// None yet, or one running.
	update := bson.D{{Key: "$set", Value: run}}
	onInsert := bson.D{{Key: "mark", Value: related.NewID()}}
	if scope.All {
		update[0].Value = append(run, bson.E{Key: "scoped", Value: false})
	} else {
		onInsert = append(onInsert, bson.E{Key: "scoped", Value: true})
	}
	update = append(update, bson.E{Key: "$setOnInsert", Value: onInsert})
	if len(scope.Keys) > 0 {
		update = append(update, bson.E{Key: "$addToSet", Value: bson.D{{Key: "scopeKeys", Value: bson.D{{Key: "$each", Value: scope.Keys}}}}})
	}
	for attempt := 0; ; attempt++ {
		_, err = jobs.UpdateOne(ctx, byID(tenant, id), update, options.UpdateOne().SetUpsert(true))
		if err == nil || !isDuplicate(err) || attempt > 0 {
			break
		}
		// A concurrent start inserted it first: update that one.
	}
	if err != nil {
		return fmt.Errorf("mongo: start rule evaluation: %w", err)
	}
	return nil
}

// startJob (re)starts a tenant's resumable job over its contacts (a
// canonicalization) as a new run from the first contact.
func (s *Store) startJob(ctx context.Context, coll, id, tenant string, ts time.Time) error {
	total, err := s.contacts.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}})
	if err != nil {
		return fmt.Errorf("mongo: start %s: count contacts: %w", coll, err)
	}
	update := bson.D{{Key: "$set", Value: bson.D{
		{Key: "run", Value: related.NewID()}, {Key: "state", Value: evaluationRunning}, {Key: "processed", Value: 0},
		{Key: "merged", Value: 0}, {Key: "split", Value: 0}, {Key: "created", Value: 0}, {Key: "removed", Value: 0}, {Key: "moved", Value: 0},
		{Key: "quarantined", Value: 0}, {Key: "suggestions", Value: 0},
		{Key: "total", Value: int(total)}, {Key: "afterId", Value: ""}, {Key: "startedAt", Value: ts}, {Key: "updatedAt", Value: ts},
	}}}
	for attempt := 0; ; attempt++ {
		_, err = s.coll(coll).UpdateOne(ctx, byID(tenant, id), update, options.UpdateOne().SetUpsert(true))
		if err == nil || !isDuplicate(err) || attempt > 0 {
			break
		}
		// A concurrent start inserted it first: update that one.
	}
	if err != nil {
		return fmt.Errorf("mongo: start %s: %w", coll, err)
	}
	return nil
}

// RuleEvaluation implements store.ProfileStore.
func (s *Store) RuleEvaluation(ctx context.Context, tenant string) (*store.RuleEvaluation, error) {
	var d evaluationDoc
	err := s.coll(collEvaluations).FindOne(ctx, byID(tenant, evaluationID(tenant))).Decode(&d)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read rule evaluation: %w", err)
	}
	return d.domain(), nil
}

// PendingEvaluations implements store.ProfileStore. The background worker
// calls it on every round, so it first relinks what crashed writers left
// unfinished (link.go).
func (s *Store) PendingEvaluations(ctx context.Context) ([]string, error) {
	if err := s.recover(ctx); err != nil {
		s.log.WarnContext(ctx, "mongo: recovery failed; retrying on the next round", "err", err)
	}
	return s.pendingJobs(ctx, collEvaluations)
}

func (s *Store) pendingJobs(ctx context.Context, coll string) ([]string, error) {
	docs, err := findEvery[evaluationDoc](ctx, s.coll(coll), bson.D{{Key: "state", Value: evaluationRunning}},
		options.Find().SetProjection(bson.D{{Key: "tenant", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: list %s: %w", coll, err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Tenant
	}
	return out, nil
}

// EvaluateRules implements store.ProfileStore: one batch of contacts in
// _id order, in the run's phase (store.EvaluationValues brings their
// values up to date, store.EvaluationProfiles decides their clusters),
// under leases; then it records where it stopped and what changed,
// filtered on the run and position it read, so a restart resumes there
// and a batch of an older run (or one another replica did first) records
// nothing. The first phase's last batch starts the second.
func (s *Store) EvaluateRules(ctx context.Context, tenant string, batch int) (bool, error) {
	ts := now()
	batch = max(batch, 1)
	jobs := s.coll(collEvaluations)
	var ev evaluationDoc
	err := jobs.FindOne(ctx, byID(tenant, evaluationID(tenant))).Decode(&ev)
	if notFound(err) || err == nil && ev.State != evaluationRunning {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongo: read rule evaluation: %w", err)
	}
	docs, err := findAll[contactDoc](ctx, s.contacts,
		bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: ev.AfterID}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), batch)
	if err != nil {
		return false, fmt.Errorf("mongo: rule evaluation: read contacts: %w", err)
	}
	phase, after, covered := ev.phase(), ev.AfterID, ev.Covered
	if len(docs) > 0 {
		after = docs[len(docs)-1].ID
	}
	var sum identity.Summary
	if len(docs) > 0 && phase == store.EvaluationProfiles {
		var in identity.Input
		if in, sum, err = s.evaluateProfiles(ctx, tenant, &ev, docs, ts); err != nil {
			return false, fmt.Errorf("mongo: rule evaluation: %w", err)
		}
		covered = store.Covered(covered, in, after)
	} else if len(docs) > 0 {
		ids := make([]string, len(docs))
		for i, d := range docs {
			ids[i] = d.ID
		}
		if sum, err = s.evaluateValues(ctx, tenant, &ev, ids, ts); err != nil {
			return false, fmt.Errorf("mongo: rule evaluation: %w", err)
		}
	}
	covered = slices.DeleteFunc(covered, func(id string) bool { return id <= after })
	processed := ev.Processed + len(docs)
	// The total is what is done and what is left: contacts written during
	// the run are counted as they come. In the first phase what is left
	// is the rest of it, and the second over every contact, those behind
	// as many as it processed.
	left, err := s.contacts.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}})
	if err != nil {
		return false, fmt.Errorf("mongo: rule evaluation: count contacts: %w", err)
	}
	state, done, total := evaluationRunning, false, 0
	switch {
	case len(docs) == batch && phase == store.EvaluationProfiles:
		total = processed + int(left)
	case len(docs) == batch:
		total = 2 * (processed + int(left))
	case phase == store.EvaluationProfiles:
		state, done, total = evaluationDone, true, processed
	default:
		// The values are all up to date: decide the clusters.
		phase, after, covered = store.EvaluationProfiles, "", nil
		all, err := s.contacts.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}})
		if err != nil {
			return false, fmt.Errorf("mongo: rule evaluation: count contacts: %w", err)
		}
		total = processed + int(all)
	}
	samples := ev.Samples
	for _, c := range sum.Samples {
		if len(samples) < identity.MaxSamples {
			samples = append(samples, c)
		}
	}
	if samples == nil {
		samples = []identity.SampleChange{}
	}
	if covered == nil {
		covered = []string{}
	}
	res, err := jobs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: ev.ID}, {Key: "tenant", Value: tenant}, {Key: "run", Value: ev.Run}, {Key: "afterId", Value: ev.AfterID},
			{Key: "processed", Value: ev.Processed}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: state}, {Key: "phase", Value: phase}, {Key: "processed", Value: processed},
			{Key: "total", Value: total}, {Key: "afterId", Value: after}, {Key: "covered", Value: covered},
			{Key: "merged", Value: ev.Merged + sum.Merged}, {Key: "split", Value: ev.Split + sum.Split}, {Key: "created", Value: ev.Created + sum.Created},
			{Key: "removed", Value: ev.Removed + sum.Removed}, {Key: "unchanged", Value: ev.Unchanged + sum.Unchanged},
			{Key: "moved", Value: ev.Moved + sum.ContactsMoved}, {Key: "quarantined", Value: ev.Quarantined + sum.Quarantined},
			{Key: "suggestions", Value: ev.Suggestions + sum.Suggestions}, {Key: "samples", Value: samples}, {Key: "updatedAt", Value: ts}}}})
	if err != nil {
		return false, fmt.Errorf("mongo: record rule evaluation: %w", err)
	}
	if res.MatchedCount == 0 {
		return false, nil // restarted or advanced meanwhile: read it again
	}
	return done, nil
}

// evaluateValues is a batch of the first phase, under the leases of its
// contacts ids (read again under them): their values are brought up to
// date with the rules and counted, the flips of quarantine recorded (and
// their marks cleared: the second phase recomputes every holder), but no
// cluster is decided. A contact whose values changed though it holds none
// of the scope's attributes now (it lost them) is marked with the run's
// mark for the second phase; so are the holders of a value of another
// attribute whose quarantine flipped (values out of step with the rules,
// which a rule change does not make).
func (s *Store) evaluateValues(ctx context.Context, tenant string, ev *evaluationDoc, ids []string, ts time.Time) (identity.Summary, error) {
	scope := ev.scope()
	var sum identity.Summary
	err := s.withLeases(ctx, tenant, ids, func(l *leases) error {
		sum = identity.Summary{}
		rules, err := s.freshRules(ctx, tenant)
		if err != nil {
			return err
		}
		docs, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}}, nil)
		if err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		var marks []string
		for i := range docs {
			d := &docs[i]
			if claims := identity.Claims(rules, d.domain()); claimsSig(claims) != d.ClaimsSig && !scope.Touches(claims) {
				marks = append(marks, d.ID)
			}
		}
		flips, _, err := s.syncValues(ctx, tenant, rules, docs, ts)
		if err != nil {
			return err
		}
		history, err := s.flipHistory(ctx, tenant, flips)
		if err != nil {
			return err
		}
		var foreign []flip
		for _, f := range flips {
			if !scope.All && !slices.Contains(scope.Keys, f.id.Key) {
				foreign = append(foreign, f)
			}
		}
		if len(foreign) > 0 {
			holders, err := s.flipSeeds(ctx, tenant, nil, foreign)
			if err != nil {
				return err
			}
			marks = append(marks, holders...)
		}
		if len(marks) > 0 && !scope.All && ev.Mark != "" {
			if _, err := s.contacts.UpdateMany(ctx, bson.D{{Key: "_id", Value: idIn(uniqSorted(marks))}, {Key: "tenant", Value: tenant}},
				bson.D{{Key: "$set", Value: bson.D{{Key: "evaluationMark", Value: ev.Mark}}}}); err != nil {
				return fmt.Errorf("mark contacts: %w", err)
			}
		}
		for _, h := range history {
			if h.Kind == identity.EventQuarantined {
				sum.Quarantined++
			}
		}
		return s.finishRelink(ctx, tenant, rules, docs, nil, flips, history, related.System, ts)
	})
	return sum, err
}

// evaluateProfiles is a batch of the second phase: the clusters of the
// batch's contacts in scope that no earlier batch decided are decided and
// applied under leases (as a write's recompute is), and it returns what
// they gathered and what changed (its samples named before the change
// while the run has fewer than identity.MaxSamples).
func (s *Store) evaluateProfiles(ctx context.Context, tenant string, ev *evaluationDoc, docs []contactDoc, ts time.Time) (identity.Input, identity.Summary, error) {
	var (
		in    identity.Input
		sum   identity.Summary
		seeds []string
	)
	rules, err := s.freshRules(ctx, tenant) // another replica may have changed them within cacheTTL
	if err != nil {
		return in, sum, err
	}
	scope := ev.scope()
	for i := range docs {
		d := &docs[i]
		marked := ev.Mark != "" && d.EvaluationMark == ev.Mark
		if !slices.Contains(ev.Covered, d.ID) && (marked || scope.Touches(identity.Claims(rules, d.domain()))) {
			seeds = append(seeds, d.ID)
		}
	}
	if len(seeds) == 0 {
		return in, sum, nil
	}
	var events []store.Event
	err = s.withLeases(ctx, tenant, seeds, func(l *leases) error {
		rules, err := s.freshRules(ctx, tenant)
		if err != nil {
			return err
		}
		if in, err = s.cover(ctx, l, rules, seeds); err != nil {
			return err
		}
		if err := l.renew(ctx); err != nil {
			return err
		}
		res := identity.Partition(in)
		sum = identity.Summarize(in, res)
		if len(ev.Samples) >= identity.MaxSamples {
			sum.Samples = nil
		} else if err := store.NameSamples(ctx, clusterReader{s: s}, tenant, sum.Samples); err != nil {
			return err
		}
		events, err = s.apply(ctx, tenant, in, store.Plan(in, res), related.System, ts)
		return err
	})
	s.publishEvents(ctx, events)
	return in, sum, err
}

// runJob runs one batch of a tenant's resumable job: step handles the
// batch's contact ids (in _id order) and says what it changed.
func (s *Store) runJob(ctx context.Context, coll, id, tenant string, batch int, step func(ids []string, ts time.Time) (identity.Summary, error)) (bool, error) {
	ts := now()
	batch = max(batch, 1)
	jobs := s.coll(coll)
	var ev evaluationDoc
	err := jobs.FindOne(ctx, byID(tenant, id)).Decode(&ev)
	if notFound(err) || err == nil && ev.State != evaluationRunning {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("mongo: read %s: %w", coll, err)
	}
	docs, err := findAll[idDoc](ctx, s.contacts,
		bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: ev.AfterID}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}), batch)
	if err != nil {
		return false, fmt.Errorf("mongo: %s: read contacts: %w", coll, err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	var sum identity.Summary
	if len(ids) > 0 {
		if sum, err = step(ids, ts); err != nil {
			return false, fmt.Errorf("mongo: %s: %w", coll, err)
		}
	}
	after := ev.AfterID
	if len(ids) > 0 {
		after = ids[len(ids)-1]
	}
	state, done := evaluationRunning, false
	if len(ids) < batch {
		state, done = evaluationDone, true
	}
	// The total is what is done and what is left: contacts written during
	// the run are counted as they come.
	left, err := s.contacts.CountDocuments(ctx, bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}})
	if err != nil {
		return false, fmt.Errorf("mongo: %s: count contacts: %w", coll, err)
	}
	processed := ev.Processed + len(ids)
	res, err := jobs.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: ev.ID}, {Key: "tenant", Value: tenant}, {Key: "run", Value: ev.Run}, {Key: "afterId", Value: ev.AfterID}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: state}, {Key: "processed", Value: processed}, {Key: "total", Value: processed + int(left)},
			{Key: "merged", Value: ev.Merged + sum.Merged}, {Key: "split", Value: ev.Split + sum.Split}, {Key: "created", Value: ev.Created + sum.Created},
			{Key: "removed", Value: ev.Removed + sum.Removed}, {Key: "moved", Value: ev.Moved + sum.ContactsMoved},
			{Key: "quarantined", Value: ev.Quarantined + sum.Quarantined}, {Key: "suggestions", Value: ev.Suggestions + sum.Suggestions},
			{Key: "afterId", Value: after}, {Key: "updatedAt", Value: ts}}}})
	if err != nil {
		return false, fmt.Errorf("mongo: record %s: %w", coll, err)
	}
	if res.MatchedCount == 0 {
		return false, nil // restarted or advanced meanwhile: read it again
	}
	return done, nil
}

// Profiles implements store.ProfileStore. Ids that are not current are
// resolved through their anchor contact (or an alias, for ids of older
// versions and contacts merged into others) to the profile that holds it
// now, and come back as stubs pointing there.
func (s *Store) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	out, err := s.profiles(ctx, tenant, ids)
	if err != nil {
		return nil, fmt.Errorf("mongo: profiles: %w", err)
	}
	return out, nil
}

func (s *Store) profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	ids = uniqSorted(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := byIDs(ctx, s.coll(collProfiles), tenant, ids, (*profileDoc).domain)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, id := range ids {
		if !slices.ContainsFunc(out, func(p *related.Profile) bool { return p.ID == id }) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	anchors, err := s.anchors(ctx, tenant, missing)
	if err != nil {
		return nil, err
	}
	var contacts []string
	for _, a := range anchors {
		contacts = append(contacts, a)
	}
	cur, err := s.currentProfiles(ctx, tenant, contacts)
	if err != nil {
		return nil, err
	}
	for _, id := range missing {
		if p := cur[anchors[id]]; p != "" && p != id {
			out = append(out, &related.Profile{ID: id, Tenant: tenant, MergedInto: p})
		}
	}
	return out, nil
}

// anchors maps profile ids to their anchor contacts: the contact an id
// derives from, or, for ids of older versions and anchors merged into
// other contacts, the contact an alias names.
func (s *Store) anchors(ctx context.Context, tenant string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	var keys []string
	for _, id := range ids {
		if a, ok := related.AnchorOf(id); ok {
			out[id] = a
			keys = append(keys, aliasID(tenant, "contact", a))
		}
		keys = append(keys, aliasID(tenant, "profile", id))
	}
	docs, err := findEvery[aliasDoc](ctx, s.coll(collAliases), bson.D{{Key: "_id", Value: idIn(uniqSorted(keys))}, {Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read aliases: %w", err)
	}
	for _, a := range docs {
		for _, id := range ids {
			switch {
			case a.Kind == "profile" && a.Alias == id:
				out[id] = a.ContactID
			case a.Kind == "contact" && out[id] == a.Alias:
				out[id] = a.ContactID
			}
		}
	}
	return out, nil
}

// currentProfile returns the profile id names now, following a stale id
// to the profile its anchor is in; NOT_FOUND naming field if none.
func (s *Store) currentProfile(ctx context.Context, tenant, id, field string) (*related.Profile, error) {
	for range 2 {
		ps, err := s.profiles(ctx, tenant, []string{id})
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			break
		}
		if ps[0].MergedInto == "" {
			return ps[0], nil
		}
		id = ps[0].MergedInto
	}
	return nil, related.NotFound("no such profile", field)
}

// ProfileByIdentifier implements store.ProfileStore: the profile of the
// value's holder, attested holders first.
func (s *Store) ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error) {
	hs, err := s.holders(ctx, tenant, []related.Identifier{id})
	if err != nil || len(hs) == 0 {
		return nil, err
	}
	slices.SortFunc(hs, func(a, b identity.Holder) int {
		if a.Source != b.Source {
			if a.Source == identity.Attested {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Contact, b.Contact)
	})
	contacts := make([]string, len(hs))
	for i, h := range hs {
		contacts[i] = h.Contact
	}
	cur, err := s.currentProfiles(ctx, tenant, contacts)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile by identifier: %w", err)
	}
	for _, h := range hs {
		if p := cur[h.Contact]; p != "" {
			ps, err := s.profiles(ctx, tenant, []string{p})
			if err != nil || len(ps) == 0 {
				return nil, err
			}
			return ps[0], nil
		}
	}
	return nil, nil
}

// ProfileContacts implements store.ProfileStore.
func (s *Store) ProfileContacts(ctx context.Context, tenant string, profileIDs []string) ([]*related.Contact, error) {
	if len(profileIDs) == 0 {
		return nil, nil
	}
	docs, err := findEvery[contactDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: idIn(uniqSorted(profileIDs))}},
		options.Find().SetSort(bson.D{{Key: "createdAt", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("mongo: profile contacts: %w", err)
	}
	out := make([]*related.Contact, len(docs))
	for i := range docs {
		out[i] = docs[i].domain()
	}
	return out, nil
}

// ProfileLinks implements store.ProfileStore: the linkable values each
// member holds, and the keep-together decisions naming members.
func (s *Store) ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error) {
	members, err := s.members(ctx, tenant, profileID)
	if err != nil || len(members) == 0 {
		return nil, err
	}
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r := clusterReader{s: s}
	cs, err := r.ClusterContacts(ctx, tenant, members)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile links: %w", err)
	}
	var values []related.Identifier
	for _, c := range cs {
		for _, cl := range c.Claims {
			values = append(values, cl.Identifier)
		}
	}
	vf, err := r.ValueFacts(ctx, tenant, values)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile links: %w", err)
	}
	ds, err := r.Decisions(ctx, tenant, members)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile links: %w", err)
	}
	return store.Links(profileID, rules, vf, cs, ds), nil
}

// ProfilePairs implements store.ProfileStore.
func (s *Store) ProfilePairs(ctx context.Context, tenant string, kind identity.PairKind, profileID string, p store.Page) (*store.PairPage, error) {
	out := &store.PairPage{}
	var items []*store.PairRecord
	if profileID != "" {
		// A profile's pairs: those naming its members, paged in memory
		// (a profile's pairs are few: MaxPairHolders bounds each value).
		members, err := s.members(ctx, tenant, profileID)
		if err != nil {
			return nil, fmt.Errorf("mongo: profile pairs: %w", err)
		}
		all, err := s.pairsNaming(ctx, tenant, members)
		if err != nil {
			return nil, fmt.Errorf("mongo: profile pairs: %w", err)
		}
		all = slices.DeleteFunc(all, func(x *store.PairRecord) bool { return x.Kind != kind })
		out.Total = len(all)
		items, out.HasNextPage, out.HasPreviousPage = store.PageInMemory(all, p, func(x *store.PairRecord) store.Cursor { return store.Cursor{At: x.CreatedAt, ID: x.ID} })
	} else {
		base := bson.D{{Key: "tenant", Value: tenant}, {Key: "kind", Value: string(kind)}}
		docs, next, prev, err := page[pairDoc](ctx, s.coll(collPairs), base, "createdAt", true, p)
		if err != nil {
			return nil, fmt.Errorf("mongo: list pairs: %w", err)
		}
		items = make([]*store.PairRecord, len(docs))
		for i := range docs {
			items[i] = docs[i].record()
		}
		out.HasNextPage, out.HasPreviousPage = next, prev
		n, err := s.coll(collPairs).CountDocuments(ctx, base)
		if err != nil {
			return nil, fmt.Errorf("mongo: count pairs: %w", err)
		}
		out.Total = int(n)
	}
	if err := s.pairProfiles(ctx, tenant, items); err != nil {
		return nil, err
	}
	out.Items = items
	return out, nil
}

// pairProfiles fills in the current profiles of pairs' contacts.
func (s *Store) pairProfiles(ctx context.Context, tenant string, items []*store.PairRecord) error {
	var contacts []string
	for _, it := range items {
		contacts = append(contacts, it.A, it.B)
	}
	cur, err := s.currentProfiles(ctx, tenant, contacts)
	if err != nil {
		return fmt.Errorf("mongo: profiles of pairs: %w", err)
	}
	for _, it := range items {
		it.ProfileA, it.ProfileB = cur[it.A], cur[it.B]
	}
	return nil
}

// ProfilePair implements store.ProfileStore.
func (s *Store) ProfilePair(ctx context.Context, tenant, id string) (*store.PairRecord, error) {
	var d pairDoc
	err := s.coll(collPairs).FindOne(ctx, byID(tenant, id)).Decode(&d)
	if notFound(err) {
		return nil, related.NotFound("no such suggestion or conflict (it may have been resolved)", "id")
	}
	if err != nil {
		return nil, fmt.Errorf("mongo: read pair: %w", err)
	}
	p := d.record()
	return p, s.pairProfiles(ctx, tenant, []*store.PairRecord{p})
}

// maxHistoryIDs bounds the former ids a history lookup asks for.
const maxHistoryIDs = 200

// ProfileHistory implements store.ProfileStore: the entries naming the
// profile's id or an id it had before (one anchored at any of its
// contacts), newest first, paged by entry id (ids are time-ordered; the
// cursor's time is the entry's).
func (s *Store) ProfileHistory(ctx context.Context, tenant, profileID string, p store.Page) (*store.HistoryPage, error) {
	members, err := findAll[idDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: profileID}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}), maxHistoryIDs)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile history: %w", err)
	}
	ids := []string{profileID}
	for _, m := range members {
		if id := related.ProfileIDFor(m.ID); id != profileID {
			ids = append(ids, id)
		}
	}
	filter := bson.D{{Key: "tenant", Value: tenant}, {Key: "profiles", Value: idIn(ids)}}
	var bounds bson.D
	if p.After != nil {
		bounds = append(bounds, bson.E{Key: "$lt", Value: p.After.ID})
	}
	if p.Before != nil {
		bounds = append(bounds, bson.E{Key: "$gt", Value: p.Before.ID})
	}
	if len(bounds) > 0 {
		filter = append(filter, bson.E{Key: "_id", Value: bounds})
	}
	dir := -1
	if p.Backward() {
		dir = 1
	}
	n := max(p.Limit(), 0)
	docs, err := findAll[historyDoc](ctx, s.coll(collHistory), filter, options.Find().SetSort(bson.D{{Key: "_id", Value: dir}}), n+1)
	if err != nil {
		return nil, fmt.Errorf("mongo: profile history: %w", err)
	}
	more := len(docs) > n
	if more {
		docs = docs[:n]
	}
	out := &store.HistoryPage{}
	if p.Backward() {
		slices.Reverse(docs)
		out.HasNextPage, out.HasPreviousPage = p.Before != nil, more
	} else {
		out.HasNextPage, out.HasPreviousPage = more, p.After != nil
	}
	for i := range docs {
		out.Items = append(out.Items, docs[i].event())
	}
	return out, nil
}

// HubValues implements store.ProfileStore: the listed values, last
// changed first.
func (s *Store) HubValues(ctx context.Context, tenant string, p store.Page) (*store.HubValuePage, error) {
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	docs, next, prev, err := pageBy[statDoc](ctx, s.coll(collValueStats), bson.D{{Key: "tenant", Value: tenant}, {Key: "listed", Value: true}},
		"updatedAt", "vid", true, p, nil)
	if err != nil {
		return nil, fmt.Errorf("mongo: list hub values: %w", err)
	}
	out := &store.HubValuePage{HasNextPage: next, HasPreviousPage: prev}
	for i := range docs {
		out.Items = append(out.Items, hubValue(rules, &docs[i]))
	}
	return out, nil
}

func hubValue(rules []identity.Rule, d *statDoc) *store.HubValue {
	h := &store.HubValue{ID: d.VID, Key: d.Key, Value: d.Value, Contacts: d.Contacts, State: identity.Quarantine(d.State),
		Quarantined: d.Quarantined, UpdatedAt: d.UpdatedAt.UTC()}
	for _, r := range rules {
		if r.Attribute == d.Key {
			h.RuleID = r.ID
		}
	}
	return h
}

// TenantFacts implements store.ProfileStore.
func (s *Store) TenantFacts(ctx context.Context, tenant string) (identity.Input, error) {
	rules, err := s.freshRules(ctx, tenant)
	if err != nil {
		return identity.Input{}, err
	}
	docs, err := findEvery[idDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return identity.Input{}, fmt.Errorf("mongo: tenant facts: %w", err)
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return store.Gather(ctx, clusterReader{s: s}, tenant, rules, ids)
}

// scanPage is how many contacts ScanContacts reads at a time.
const scanPage = 500

// ScanContacts implements store.ContactScanner: pages of scanPage
// contacts in _id order, each one find.
func (s *Store) ScanContacts(ctx context.Context, tenant string, fn func(*related.Contact) error) error {
	after := ""
	for {
		docs, err := findAll[contactDoc](ctx, s.contacts, bson.D{{Key: "tenant", Value: tenant}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
			options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}), scanPage)
		if err != nil {
			return fmt.Errorf("mongo: scan contacts: %w", err)
		}
		for i := range docs {
			if err := fn(docs[i].domain()); err != nil {
				return err
			}
			after = docs[i].ID
		}
		if len(docs) < scanPage {
			return nil
		}
	}
}

// PreviewRules implements store.ProfileStore.
func (s *Store) PreviewRules(ctx context.Context, tenant string, next []identity.Rule) (*store.Preview, error) {
	old, err := s.freshRules(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("mongo: preview rules: %w", err)
	}
	return store.PreviewRules(ctx, s, clusterReader{s: s}, tenant, old, next)
}
