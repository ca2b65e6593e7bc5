package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

const profileCols = `id, tenant, custom_name, auto_name, channels, identifiers, contacts, merged_into, created_at, updated_at, anchor`

func profileScan() ([]any, func() (*related.Profile, error)) {
	var (
		p                related.Profile
		chans, ids       string
		created, updated int64
	)
	dest := []any{&p.ID, &p.Tenant, &p.CustomName, &p.AutoName, &chans, &ids, &p.ContactCount, &p.MergedInto, &created, &updated, &p.Anchor}
	return dest, func() (*related.Profile, error) {
		p.CreatedAt, p.UpdatedAt = fromMS(created), fromMS(updated)
		if err := json.Unmarshal([]byte(chans), &p.Channels); err != nil {
			return nil, fmt.Errorf("profile %s: decode channels: %w", p.ID, err)
		}
		var err error
		if p.Identifiers, err = decodeProfileIdentifiers(ids); err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.ID, err)
		}
		p.Name = p.DisplayName()
		return &p, nil
	}
}

func scanProfile(r scanner) (*related.Profile, error) {
	dest, finish := profileScan()
	if err := r.Scan(dest...); err != nil {
		return nil, err
	}
	return finish()
}

// ProfileRules implements store.ProfileStore.
func (s *Store) ProfileRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	return s.rules(ctx, s.r, tenant)
}

// SaveProfileRule implements store.ProfileStore.
func (s *Store) SaveProfileRule(ctx context.Context, tenant string, r identity.Rule) (identity.Rule, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		stored, err := s.storedRules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		current := identity.WithDefaults(tenant, stored)
		var prev *identity.Rule
		if r.ID != "" {
			i := slices.IndexFunc(current, func(x identity.Rule) bool { return x.ID == r.ID })
			if i < 0 {
				return nil, related.NotFound("no such rule", "id")
			}
			prev = &current[i]
		} else {
			if len(current) >= identity.MaxRules {
				return nil, related.Invalid(fmt.Sprintf("a tenant has at most %d rules", identity.MaxRules), "attribute")
			}
			r.ID = related.NewID()
		}
		for _, x := range current {
			if x.Attribute == r.Attribute && x.ID != r.ID {
				return nil, &related.Error{Code: related.CodeConflict, Field: []string{"attribute"},
					Message: fmt.Sprintf("a rule for %q exists already; update it instead", r.Attribute)}
			}
		}
		r.Tenant, r.UpdatedAt, r.CreatedAt = tenant, now, now
		if prev != nil && !prev.CreatedAt.IsZero() {
			r.CreatedAt = prev.CreatedAt
		}
		blocked, _ := json.Marshal(r.BlockedValues) // strings always marshal
		if blocked == nil || string(blocked) == "null" {
			blocked = []byte("[]")
		}
		// A deleted row of the same attribute (a deleted default) makes
		// room for the new rule.
		if _, err := s.exec(ctx, tx, `DELETE FROM profile_rules WHERE tenant = ? AND attribute = ? AND deleted = 1`, tenant, r.Attribute); err != nil {
			return nil, fmt.Errorf("sqlite: save rule: %w", err)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_rules (`+ruleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET attribute = excluded.attribute, normalizer = excluded.normalizer,
				enabled = excluded.enabled, priority = excluded.priority, max_per_profile = excluded.max_per_profile,
				blocked_values = excluded.blocked_values, default_region = excluded.default_region, deleted = 0,
				updated_at = excluded.updated_at, auto_merge = excluded.auto_merge, max_contacts_per_value = excluded.max_contacts_per_value`,
			r.ID, tenant, r.Attribute, r.Normalizer, r.Enabled, r.Priority, r.MaxPerProfile, string(blocked), r.DefaultRegion,
			ms(r.CreatedAt), ms(now), r.AutoMerge, r.MaxContactsPerValue); err != nil {
			return nil, fmt.Errorf("sqlite: save rule: %w", err)
		}
		quarantined, err := s.remarkValues(ctx, tx, tenant, r, now)
		if err != nil {
			return nil, err
		}
		next := slices.Clone(current)
		if prev != nil {
			next[slices.IndexFunc(next, func(x identity.Rule) bool { return x.ID == r.ID })] = r
		} else {
			next = append(next, r)
		}
		scope := store.EvaluationScope{Keys: store.ChangedKeys(current, next)}
		return nil, s.startEvaluation(ctx, tx, tenant, scope, quarantined, now)
	})
	s.ruleCache.drop(tenant)
	return r, err
}

// remarkValues recomputes which values of r's key are quarantined under
// its (new) threshold, for the hub list; the re-evaluation relinks. It
// returns how many values held by someone the (enabled) rule newly
// quarantines, for the re-evaluation's summary.
func (s *Store) remarkValues(ctx context.Context, tx *sql.Tx, tenant string, r identity.Rule, now time.Time) (int, error) {
	var newly int
	if r.Enabled && r.MaxContactsPerValue > 0 {
		if err := s.queryRow(ctx, tx, `SELECT count(*) FROM value_stats WHERE tenant = ? AND key = ? AND state = 'AUTOMATIC'
			AND quarantined = 0 AND contacts > ?`, tenant, r.Attribute, r.MaxContactsPerValue).Scan(&newly); err != nil {
			return 0, fmt.Errorf("sqlite: count values: %w", err)
		}
	}
	if _, err := s.exec(ctx, tx, `UPDATE value_stats SET
			quarantined = CASE state WHEN 'BLOCKED' THEN 1 WHEN 'ALLOWED' THEN 0 ELSE (? > 0 AND contacts > ?) END,
			listed = CASE state WHEN 'AUTOMATIC' THEN (? > 0 AND contacts > ?) ELSE 1 END,
			updated_at = ?
		WHERE tenant = ? AND key = ?`, r.MaxContactsPerValue, r.MaxContactsPerValue, r.MaxContactsPerValue, r.MaxContactsPerValue,
		ms(now), tenant, r.Attribute); err != nil {
		return 0, fmt.Errorf("sqlite: mark values: %w", err)
	}
	return newly, nil
}

// DeleteProfileRule implements store.ProfileStore.
func (s *Store) DeleteProfileRule(ctx context.Context, tenant, id string) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		stored, err := s.storedRules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(identity.WithDefaults(tenant, stored), func(x identity.Rule) bool { return x.ID == id })
		if i < 0 {
			return nil, related.NotFound("no such rule", "id")
		}
		r := identity.WithDefaults(tenant, stored)[i]
		// Keep a deleted row, so a deleted default rule stays deleted.
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_rules (`+ruleCols+`) VALUES (?, ?, ?, ?, 0, ?, 0, '[]', '', 1, ?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET deleted = 1, enabled = 0, updated_at = excluded.updated_at`,
			r.ID, tenant, r.Attribute, r.Normalizer, r.Priority, ms(now), ms(now), r.AutoMerge, r.MaxContactsPerValue); err != nil {
			return nil, fmt.Errorf("sqlite: delete rule: %w", err)
		}
		return nil, s.startEvaluation(ctx, tx, tenant, store.EvaluationScope{Keys: []string{r.Attribute}}, 0, now)
	})
	s.ruleCache.drop(tenant)
	return err
}

// startEvaluation (re)starts the re-evaluation of a tenant's contacts from
// the first contact, in its first phase, with a summary that counts the
// values the change quarantined before any contact's (quarantined). A run
// still going is restarted with both changes' scope and keeps its id, so
// the contacts it marked are still found.
func (s *Store) startEvaluation(ctx context.Context, tx *sql.Tx, tenant string, scope store.EvaluationScope, quarantined int, now time.Time) error {
	var state, run, prev string
	err := s.queryRow(ctx, tx, `SELECT state, run, scope FROM rule_evaluations WHERE tenant = ?`, tenant).Scan(&state, &run, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: read evaluation: %w", err)
	}
	if err == nil && state == string(related.JobRunning) {
		var was store.EvaluationScope
		if err := json.Unmarshal([]byte(prev), &was); err != nil {
			return fmt.Errorf("sqlite: decode evaluation scope: %w", err)
		}
		scope = scope.Union(was)
	} else {
		run = ""
	}
	if run == "" {
		run = related.NewID()
	}
	var total int
	if err := s.queryRow(ctx, tx, `SELECT count(*) FROM contacts WHERE tenant = ?`, tenant).Scan(&total); err != nil {
		return fmt.Errorf("sqlite: count contacts: %w", err)
	}
	enc, _ := json.Marshal(identity.Summary{Quarantined: quarantined}) // counts always marshal
	scopeJSON, _ := json.Marshal(scope)                                // strings always marshal
	if _, err := s.exec(ctx, tx, `INSERT INTO rule_evaluations (tenant, state, phase, run, scope, covered, processed, total, after_id, summary, started_at, updated_at)
		VALUES (?, 'RUNNING', ?, ?, ?, '[]', 0, ?, '', ?, ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET state = 'RUNNING', phase = excluded.phase, run = excluded.run, scope = excluded.scope,
			covered = '[]', processed = 0, total = excluded.total, after_id = '', summary = excluded.summary,
			started_at = excluded.started_at, updated_at = excluded.updated_at`,
		tenant, store.EvaluationValues, run, string(scopeJSON), 2*total, string(enc), ms(now), ms(now)); err != nil {
		return fmt.Errorf("sqlite: start evaluation: %w", err)
	}
	return nil
}

// RuleEvaluation implements store.ProfileStore.
func (s *Store) RuleEvaluation(ctx context.Context, tenant string) (*store.RuleEvaluation, error) {
	var (
		e                store.RuleEvaluation
		started, updated int64
		sumJSON          string
	)
	err := s.queryRow(ctx, s.r, `SELECT tenant, state, processed, total, summary, started_at, updated_at FROM rule_evaluations WHERE tenant = ?`, tenant).
		Scan(&e.Tenant, &e.State, &e.Processed, &e.Total, &sumJSON, &started, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read evaluation: %w", err)
	}
	if err := json.Unmarshal([]byte(sumJSON), &e.Summary); err != nil {
		return nil, fmt.Errorf("sqlite: decode evaluation summary: %w", err)
	}
	e.StartedAt, e.UpdatedAt = fromMS(started), fromMS(updated)
	return &e, nil
}

// PendingEvaluations implements store.ProfileStore.
func (s *Store) PendingEvaluations(ctx context.Context) ([]string, error) {
	return s.idList(ctx, s.r, `SELECT tenant FROM rule_evaluations WHERE state = 'RUNNING'`)
}

// EvaluateRules implements store.ProfileStore: one transaction handles one
// batch of contacts in id order, in the run's phase (store.EvaluationValues
// brings their values up to date, store.EvaluationProfiles decides their
// clusters), then records where it stopped and what changed, so a restart
// resumes there. The first phase's last batch starts the second.
func (s *Store) EvaluateRules(ctx context.Context, tenant string, batch int) (bool, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	batch = max(batch, 1)
	done := false
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		var (
			ev                                     evaluationRow
			sumJSON, scopeJSON, coveredJSON, state string
		)
		err := s.queryRow(ctx, tx, `SELECT state, phase, run, scope, covered, after_id, processed, summary FROM rule_evaluations WHERE tenant = ?`, tenant).
			Scan(&state, &ev.phase, &ev.run, &scopeJSON, &coveredJSON, &ev.after, &ev.processed, &sumJSON)
		if errors.Is(err, sql.ErrNoRows) || err == nil && state != string(related.JobRunning) {
			done = true
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: read evaluation: %w", err)
		}
		for _, f := range []struct {
			text string
			into any
		}{{sumJSON, &ev.sum}, {scopeJSON, &ev.scope}, {coveredJSON, &ev.covered}} {
			if err := json.Unmarshal([]byte(f.text), f.into); err != nil {
				return nil, fmt.Errorf("sqlite: decode evaluation: %w", err)
			}
		}
		rules, err := s.rules(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		rows, err := s.query(ctx, tx, `SELECT `+contactCols+`, evaluation_mark = ? FROM contacts WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`,
			ev.run, tenant, ev.after, batch)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read contacts: %w", err)
		}
		contacts, err := collect(rows, func(r scanner) (markedContact, error) {
			dest, finish := contactScan()
			var m markedContact
			if err := r.Scan(append(dest, &m.marked)...); err != nil {
				return m, err
			}
			m.Contact, err = finish()
			return m, err
		}, "contacts")
		if err != nil {
			return nil, err
		}
		var events []store.Event
		if ev.phase == store.EvaluationProfiles {
			events, err = s.evaluateProfiles(ctx, tx, tenant, rules, &ev, contacts, now)
		} else {
			err = s.evaluateValues(ctx, tx, tenant, rules, &ev, contacts, now)
		}
		if err != nil {
			return nil, err
		}
		if len(contacts) > 0 {
			ev.after = contacts[len(contacts)-1].ID
		}
		ev.processed += len(contacts)
		ev.covered = slices.DeleteFunc(ev.covered, func(id string) bool { return id <= ev.after })
		// The total is what is done and what is left: contacts written
		// during the run are counted as they come. In the first phase
		// what is left is the rest of it, and the second over every
		// contact, those behind as many as it processed.
		var left, total int
		if err := s.queryRow(ctx, tx, `SELECT count(*) FROM contacts WHERE tenant = ? AND id > ?`, tenant, ev.after).Scan(&left); err != nil {
			return nil, fmt.Errorf("sqlite: count contacts: %w", err)
		}
		state = string(related.JobRunning)
		switch {
		case len(contacts) == batch && ev.phase == store.EvaluationProfiles:
			total = ev.processed + left
		case len(contacts) == batch:
			total = 2 * (ev.processed + left)
		case ev.phase == store.EvaluationProfiles:
			state, done, total = string(related.JobDone), true, ev.processed
		default:
			// The values are all up to date: decide the clusters.
			ev.phase, ev.after, ev.covered = store.EvaluationProfiles, "", nil
			if err := s.queryRow(ctx, tx, `SELECT count(*) FROM contacts WHERE tenant = ?`, tenant).Scan(&left); err != nil {
				return nil, fmt.Errorf("sqlite: count contacts: %w", err)
			}
			total = ev.processed + left
		}
		enc, _ := json.Marshal(ev.sum) // counts and strings always marshal
		covered, _ := json.Marshal(append([]string{}, ev.covered...))
		if _, err := s.exec(ctx, tx, `UPDATE rule_evaluations SET state = ?, phase = ?, covered = ?, processed = ?, total = ?, after_id = ?,
			summary = ?, updated_at = ? WHERE tenant = ?`,
			state, ev.phase, string(covered), ev.processed, total, ev.after, string(enc), ms(now), tenant); err != nil {
			return nil, fmt.Errorf("sqlite: record evaluation: %w", err)
		}
		return events, nil
	})
	return done, err
}

// evaluationRow is a running evaluation as one batch reads and advances
// it.
type evaluationRow struct {
	phase, run, after string
	scope             store.EvaluationScope
	covered           []string
	processed         int
	sum               identity.Summary
}

// markedContact is a contact, and whether the run marked it (it lost its
// values of the scope's attributes in the first phase).
type markedContact struct {
	*related.Contact
	marked bool
}

// evaluateValues is a batch of the first phase: the contacts' values are
// brought up to date with the rules and counted, and the flips of
// quarantine recorded, but no cluster is decided. A contact that loses its
// last value of the scope's attributes is marked for the second phase.
func (s *Store) evaluateValues(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, ev *evaluationRow, contacts []markedContact, now time.Time) error {
	var (
		history []identity.Event
		marks   []string
	)
	for _, c := range contacts {
		seeds, h, err := s.syncClaims(ctx, tx, tenant, c.Contact, rules, now)
		if err != nil {
			return err
		}
		history = append(history, h...)
		if len(seeds) == 0 || ev.scope.All {
			continue
		}
		// Something changed. The contact is in the second phase's scope
		// by what it holds now, or by the mark; so are the other holders
		// of a value whose quarantine flipped, which hold it now, unless
		// the value is of another attribute (values out of step with the
		// rules, which a rule change does not make).
		if !ev.scope.Touches(identity.Claims(rules, c.Contact)) {
			marks = append(marks, c.ID)
		}
		if slices.ContainsFunc(h, func(e identity.Event) bool { return !slices.Contains(ev.scope.Keys, e.Identifier.Key) }) {
			marks = append(marks, seeds[1:]...)
		}
	}
	if marks = slices.Compact(slices.Sorted(slices.Values(marks))); len(marks) > 0 {
		if _, err := s.exec(ctx, tx, `UPDATE contacts SET evaluation_mark = ? WHERE tenant = ? AND id IN (`+placeholders(len(marks))+`)`,
			append([]any{ev.run, tenant}, anys(marks)...)...); err != nil {
			return fmt.Errorf("sqlite: mark contacts: %w", err)
		}
	}
	for _, h := range history {
		if h.Kind == identity.EventQuarantined {
			ev.sum.Quarantined++
		}
	}
	return s.recordEvents(ctx, tx, tenant, history, related.System, now)
}

// evaluateProfiles is a batch of the second phase: the clusters of the
// batch's contacts in scope that no earlier batch decided are decided and
// applied, and what changed is added to the run's summary (with its
// first samples, named before the change).
func (s *Store) evaluateProfiles(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, ev *evaluationRow, contacts []markedContact, now time.Time) ([]store.Event, error) {
	var seeds []string
	for _, c := range contacts {
		if !slices.Contains(ev.covered, c.ID) && (c.marked || ev.scope.Touches(identity.Claims(rules, c.Contact))) {
			seeds = append(seeds, c.ID)
		}
	}
	if len(seeds) == 0 {
		return nil, nil
	}
	r := clusterReader{s, tx}
	in, ch, err := store.Recompute(ctx, r, tenant, rules, seeds)
	if err != nil {
		return nil, err
	}
	changed := ch.Summary
	if len(ev.sum.Samples) >= identity.MaxSamples {
		changed.Samples = nil
	} else if err := store.NameSamples(ctx, r, tenant, changed.Samples); err != nil {
		return nil, err
	}
	events, err := s.apply(ctx, tx, tenant, in, ch, related.System, now)
	if err != nil {
		return nil, err
	}
	ev.sum.Add(changed)
	ev.covered = store.Covered(ev.covered, in, contacts[len(contacts)-1].ID)
	return events, nil
}

// Profiles implements store.ProfileStore. Ids that are not current are
// resolved through their anchor contact (or an alias, for ids of older
// versions and contacts merged into others) to the profile that holds it
// now, and come back as stubs pointing there.
func (s *Store) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	return s.profiles(ctx, s.r, tenant, ids)
}

func (s *Store) profiles(ctx context.Context, q querier, tenant string, ids []string) ([]*related.Profile, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.query(ctx, q, `SELECT `+profileCols+` FROM profiles WHERE tenant = ? AND id IN (`+placeholders(len(ids))+`)`,
		append([]any{tenant}, anys(ids)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load profiles: %w", err)
	}
	out, err := collect(rows, scanProfile, "profiles")
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
	anchors, err := s.anchors(ctx, q, tenant, missing)
	if err != nil {
		return nil, err
	}
	var contacts []string
	for _, a := range anchors {
		contacts = append(contacts, a)
	}
	cur, err := clusterReader{s, q}.CurrentProfiles(ctx, tenant, contacts)
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
func (s *Store) anchors(ctx context.Context, q querier, tenant string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	var lookup []string
	for _, id := range ids {
		if a, ok := related.AnchorOf(id); ok {
			out[id] = a
			lookup = append(lookup, a)
		}
		lookup = append(lookup, id)
	}
	rows, err := s.query(ctx, q, `SELECT kind, alias, contact_id FROM aliases WHERE tenant = ? AND kind IN ('profile', 'contact') AND alias IN (`+
		placeholders(len(lookup))+`)`, append([]any{tenant}, anys(lookup)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read aliases: %w", err)
	}
	aliases, err := collect(rows, func(r scanner) ([3]string, error) {
		var v [3]string
		return v, r.Scan(&v[0], &v[1], &v[2])
	}, "aliases")
	if err != nil {
		return nil, err
	}
	for _, a := range aliases {
		for _, id := range ids {
			switch {
			case a[0] == "profile" && a[1] == id:
				out[id] = a[2]
			case a[0] == "contact" && out[id] == a[1]:
				out[id] = a[2]
			}
		}
	}
	return out, nil
}

// currentProfile returns the profile id names now, following a stale id
// to the profile its anchor is in; NOT_FOUND naming field if none.
func (s *Store) currentProfile(ctx context.Context, q querier, tenant, id, field string) (*related.Profile, error) {
	for range 2 {
		ps, err := s.profiles(ctx, q, tenant, []string{id})
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

// ProfileByIdentifier implements store.ProfileStore.
func (s *Store) ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error) {
	hs, err := s.holders(ctx, s.r, tenant, []related.Identifier{id})
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
	var contacts []string
	for _, h := range hs {
		contacts = append(contacts, h.Contact)
	}
	cur, err := clusterReader{s, s.r}.CurrentProfiles(ctx, tenant, contacts)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		if p := cur[h.Contact]; p != "" {
			ps, err := s.profiles(ctx, s.r, tenant, []string{p})
			if err != nil || len(ps) == 0 {
				return nil, err
			}
			return ps[0], nil
		}
	}
	return nil, nil
}

// prefixed qualifies a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// ProfileContacts implements store.ProfileStore.
func (s *Store) ProfileContacts(ctx context.Context, tenant string, profileIDs []string) ([]*related.Contact, error) {
	if len(profileIDs) == 0 {
		return nil, nil
	}
	rows, err := s.query(ctx, s.r, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND profile_id IN (`+placeholders(len(profileIDs))+`) ORDER BY created_at, id`,
		append([]any{tenant}, anys(profileIDs)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load profile contacts: %w", err)
	}
	return collect(rows, scanContact, "contacts")
}

// ProfileLinks implements store.ProfileStore: the linkable values each
// member holds, and the keep-together decisions naming members.
func (s *Store) ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error) {
	members, err := s.idList(ctx, s.r, `SELECT id FROM contacts WHERE tenant = ? AND profile_id = ?`, tenant, profileID)
	if err != nil || len(members) == 0 {
		return nil, err
	}
	rules, err := s.rules(ctx, s.r, tenant)
	if err != nil {
		return nil, err
	}
	r := clusterReader{s, s.r}
	cs, err := r.ClusterContacts(ctx, tenant, members)
	if err != nil {
		return nil, err
	}
	var values []related.Identifier
	for _, c := range cs {
		for _, cl := range c.Claims {
			values = append(values, cl.Identifier)
		}
	}
	vf, err := r.ValueFacts(ctx, tenant, values)
	if err != nil {
		return nil, err
	}
	ds, err := r.Decisions(ctx, tenant, members)
	if err != nil {
		return nil, err
	}
	return store.Links(profileID, rules, vf, cs, ds), nil
}

// ProfilePairs implements store.ProfileStore.
func (s *Store) ProfilePairs(ctx context.Context, tenant string, kind identity.PairKind, profileID string, p store.Page) (*store.PairPage, error) {
	var (
		items []*store.PairRecord
		out   = &store.PairPage{}
	)
	if profileID != "" {
		// A profile's pairs: those naming its members, paged in memory
		// (a profile's pairs are few: MaxPairHolders bounds each value).
		members, err := s.idList(ctx, s.r, `SELECT id FROM contacts WHERE tenant = ? AND profile_id = ?`, tenant, profileID)
		if err != nil {
			return nil, err
		}
		all, err := s.pairsNaming(ctx, s.r, tenant, members)
		if err != nil {
			return nil, err
		}
		all = slices.DeleteFunc(all, func(x *store.PairRecord) bool { return x.Kind != kind })
		out.Total = len(all)
		items, out.HasNextPage, out.HasPreviousPage = store.PageInMemory(all, p, func(x *store.PairRecord) store.Cursor { return store.Cursor{At: x.CreatedAt, ID: x.ID} })
	} else {
		terms, kargs, order, limit := keyset(p, "created_at", "DESC")
		where := append([]string{"tenant = ?", "kind = ?"}, terms...)
		rows, err := s.query(ctx, s.r, `SELECT `+pairCols+` FROM profile_pairs WHERE `+strings.Join(where, " AND ")+order+` LIMIT ?`,
			append(append([]any{tenant, kind}, kargs...), limit)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list pairs: %w", err)
		}
		if items, err = collect(rows, scanPair, "pairs"); err != nil {
			return nil, err
		}
		items, out.HasNextPage, out.HasPreviousPage = page(items, p)
		if err := s.queryRow(ctx, s.r, `SELECT count(*) FROM profile_pairs WHERE tenant = ? AND kind = ?`, tenant, kind).Scan(&out.Total); err != nil {
			return nil, fmt.Errorf("sqlite: count pairs: %w", err)
		}
	}
	if err := s.pairProfiles(ctx, s.r, tenant, items); err != nil {
		return nil, err
	}
	out.Items = items
	return out, nil
}

// pairsNaming reads the pairs naming any of the contacts.
func (s *Store) pairsNaming(ctx context.Context, q querier, tenant string, contacts []string) ([]*store.PairRecord, error) {
	if len(contacts) == 0 {
		return nil, nil
	}
	var out []*store.PairRecord
	for _, col := range []string{"contact_a", "contact_b"} {
		rows, err := s.query(ctx, q, `SELECT `+pairCols+` FROM profile_pairs WHERE tenant = ? AND `+col+` IN (`+placeholders(len(contacts))+`)`,
			append([]any{tenant}, anys(contacts)...)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read pairs: %w", err)
		}
		ps, err := collect(rows, scanPair, "pairs")
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !slices.ContainsFunc(out, func(o *store.PairRecord) bool { return o.ID == p.ID }) {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// pairProfiles fills in the current profiles of pairs' contacts.
func (s *Store) pairProfiles(ctx context.Context, q querier, tenant string, items []*store.PairRecord) error {
	var contacts []string
	for _, it := range items {
		contacts = append(contacts, it.A, it.B)
	}
	cur, err := clusterReader{s, q}.CurrentProfiles(ctx, tenant, contacts)
	if err != nil {
		return err
	}
	for _, it := range items {
		it.ProfileA, it.ProfileB = cur[it.A], cur[it.B]
	}
	return nil
}

// ProfilePair implements store.ProfileStore.
func (s *Store) ProfilePair(ctx context.Context, tenant, id string) (*store.PairRecord, error) {
	return s.profilePair(ctx, s.r, tenant, id)
}

func (s *Store) profilePair(ctx context.Context, q querier, tenant, id string) (*store.PairRecord, error) {
	p, err := scanPair(s.queryRow(ctx, q, `SELECT `+pairCols+` FROM profile_pairs WHERE tenant = ? AND id = ?`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, related.NotFound("no such suggestion or conflict (it may have been resolved)", "id")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read pair: %w", err)
	}
	return p, s.pairProfiles(ctx, q, tenant, []*store.PairRecord{p})
}

// ProfileHistory implements store.ProfileStore: the entries naming the
// profile's id or an id it had before (one anchored at any of its
// contacts), newest first.
func (s *Store) ProfileHistory(ctx context.Context, tenant, profileID string, p store.Page) (*store.HistoryPage, error) {
	members, err := s.idList(ctx, s.r, `SELECT id FROM contacts WHERE tenant = ? AND profile_id = ? LIMIT ?`, tenant, profileID, maxHistoryIDs)
	if err != nil {
		return nil, err
	}
	ids := []string{profileID}
	for _, m := range members {
		if id := related.ProfileIDFor(m); id != profileID {
			ids = append(ids, id)
		}
	}
	// Entries are paged by id alone (ids are time-ordered); the cursor's
	// time is the entry's.
	var terms []string
	var args []any
	order := " ORDER BY event_id DESC"
	if p.After != nil {
		terms, args = append(terms, "event_id < ?"), append(args, p.After.ID)
	}
	if p.Before != nil {
		terms, args = append(terms, "event_id > ?"), append(args, p.Before.ID)
	}
	if p.Backward() {
		order = " ORDER BY event_id ASC"
	}
	where := append([]string{"tenant = ?", "profile_id IN (" + placeholders(len(ids)) + ")"}, terms...)
	evIDs, err := s.idList(ctx, s.r, `SELECT DISTINCT event_id FROM profile_event_refs WHERE `+strings.Join(where, " AND ")+order+` LIMIT ?`,
		append(append(append([]any{tenant}, anys(ids)...), args...), max(p.Limit(), 0)+1)...)
	if err != nil {
		return nil, err
	}
	out := &store.HistoryPage{}
	evIDs, out.HasNextPage, out.HasPreviousPage = page(evIDs, p)
	if len(evIDs) == 0 {
		return out, nil
	}
	rows, err := s.query(ctx, s.r, `SELECT id, kind, profiles, contact_id, key, value, by_name, by_role, at FROM profile_events WHERE tenant = ? AND id IN (`+
		placeholders(len(evIDs))+`)`, append([]any{tenant}, anys(evIDs)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read history: %w", err)
	}
	evs, err := collect(rows, func(r scanner) (*store.HistoryEvent, error) {
		var (
			e        store.HistoryEvent
			profiles string
			at       int64
		)
		if err := r.Scan(&e.ID, &e.Kind, &profiles, &e.Contact, &e.Identifier.Key, &e.Identifier.Value, &e.By.Name, &e.By.Role, &at); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		return &e, json.Unmarshal([]byte(profiles), &e.Profiles)
	}, "history")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(evs, func(a, b *store.HistoryEvent) int { return strings.Compare(b.ID, a.ID) })
	out.Items = evs
	return out, nil
}

// maxHistoryIDs bounds the former ids a history lookup asks for.
const maxHistoryIDs = 200

// HubValues implements store.ProfileStore.
func (s *Store) HubValues(ctx context.Context, tenant string, p store.Page) (*store.HubValuePage, error) {
	rules, err := s.rules(ctx, s.r, tenant)
	if err != nil {
		return nil, err
	}
	terms, kargs, order, limit := keyset(p, "updated_at", "DESC")
	where := append([]string{"tenant = ?", "listed = 1"}, terms...)
	rows, err := s.query(ctx, s.r, `SELECT key, value, id, contacts, state, quarantined, updated_at FROM value_stats WHERE `+
		strings.Join(where, " AND ")+order+` LIMIT ?`, append(append([]any{tenant}, kargs...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list hub values: %w", err)
	}
	items, err := collect(rows, func(r scanner) (*store.HubValue, error) {
		var (
			h  store.HubValue
			id string
			at int64
		)
		err := r.Scan(&h.Key, &h.Value, &id, &h.Contacts, &h.State, &h.Quarantined, &at)
		h.ID, h.UpdatedAt = id, fromMS(at)
		for _, r := range rules {
			if r.Attribute == h.Key {
				h.RuleID = r.ID
			}
		}
		return &h, err
	}, "hub values")
	if err != nil {
		return nil, err
	}
	out := &store.HubValuePage{}
	out.Items, out.HasNextPage, out.HasPreviousPage = page(items, p)
	return out, nil
}

// TenantFacts implements store.ProfileStore.
func (s *Store) TenantFacts(ctx context.Context, tenant string) (identity.Input, error) {
	rules, err := s.rules(ctx, s.r, tenant)
	if err != nil {
		return identity.Input{}, err
	}
	ids, err := s.idList(ctx, s.r, `SELECT id FROM contacts WHERE tenant = ? ORDER BY id`, tenant)
	if err != nil {
		return identity.Input{}, err
	}
	return store.Gather(ctx, clusterReader{s, s.r}, tenant, rules, ids)
}

// ScanContacts implements store.ContactScanner: pages of 500 contacts in
// id order, each one indexed seek.
func (s *Store) ScanContacts(ctx context.Context, tenant string, fn func(*related.Contact) error) error {
	after := ""
	for {
		rows, err := s.query(ctx, s.r, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`, tenant, after, scanPage)
		if err != nil {
			return fmt.Errorf("sqlite: scan contacts: %w", err)
		}
		cs, err := collect(rows, scanContact, "contacts")
		if err != nil {
			return err
		}
		for _, c := range cs {
			if err := fn(c); err != nil {
				return err
			}
			after = c.ID
		}
		if len(cs) < scanPage {
			return nil
		}
	}
}

// scanPage is how many contacts ScanContacts reads at a time.
const scanPage = 500

// PreviewRules implements store.ProfileStore.
func (s *Store) PreviewRules(ctx context.Context, tenant string, next []identity.Rule) (*store.Preview, error) {
	old, err := s.rules(ctx, s.r, tenant)
	if err != nil {
		return nil, err
	}
	return store.PreviewRules(ctx, s, clusterReader{s, s.r}, tenant, old, next)
}
