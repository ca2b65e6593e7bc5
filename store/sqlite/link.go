package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// ruleCache keeps each tenant's rules in memory: linking reads them on
// every write, and they change only through this process (one node).
type ruleCache struct {
	mu    sync.Mutex
	rules map[string][]identity.Rule
}

func (c *ruleCache) get(tenant string) ([]identity.Rule, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rules[tenant]
	return r, ok
}

func (c *ruleCache) put(tenant string, r []identity.Rule) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rules == nil {
		c.rules = map[string][]identity.Rule{}
	}
	c.rules[tenant] = r
}

func (c *ruleCache) drop(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rules, tenant)
}

const ruleCols = `id, tenant, attribute, normalizer, enabled, priority, max_per_profile, blocked_values, default_region, deleted, created_at, updated_at`

func scanRule(r scanner) (identity.Rule, error) {
	var (
		x                identity.Rule
		blocked          string
		created, updated int64
	)
	if err := r.Scan(&x.ID, &x.Tenant, &x.Attribute, &x.Normalizer, &x.Enabled, &x.Priority, &x.MaxPerProfile,
		&blocked, &x.DefaultRegion, &x.Deleted, &created, &updated); err != nil {
		return x, err
	}
	x.CreatedAt, x.UpdatedAt = fromMS(created), fromMS(updated)
	if err := json.Unmarshal([]byte(blocked), &x.BlockedValues); err != nil {
		return x, fmt.Errorf("rule %s: decode blocked values: %w", x.ID, err)
	}
	return x, nil
}

// storedRules reads a tenant's rule rows, deleted ones included.
func (s *Store) storedRules(ctx context.Context, q querier, tenant string) ([]identity.Rule, error) {
	rows, err := s.query(ctx, q, `SELECT `+ruleCols+` FROM profile_rules WHERE tenant = ?`, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read rules: %w", err)
	}
	return collect(rows, scanRule, "rules")
}

// rules returns the tenant's effective rules, from the cache when it can.
func (s *Store) rules(ctx context.Context, q querier, tenant string) ([]identity.Rule, error) {
	if r, ok := s.ruleCache.get(tenant); ok {
		return r, nil
	}
	stored, err := s.storedRules(ctx, q, tenant)
	if err != nil {
		return nil, err
	}
	r := identity.WithDefaults(tenant, stored)
	s.ruleCache.put(tenant, r)
	return r, nil
}

// contactByID reads one contact in tx.
func (s *Store) contactByID(ctx context.Context, q querier, tenant, id string) (*related.Contact, error) {
	c, err := scanContact(s.queryRow(ctx, q, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND id = ?`, tenant, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, related.NotFound("no such contact", "contactId")
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read contact: %w", err)
	}
	return c, nil
}

// linkContact links c by the identifiers it brings, applying
// identity.Decide's plan inside tx. interactionID and by are provenance.
// It returns the events of the interactions whose profile changed.
func (s *Store) linkContact(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, interactionID, by string, now time.Time) ([]store.Event, error) {
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return nil, err
	}
	claims := identity.Claims(rules, c)
	if len(claims) == 0 || c.ProfileID != "" && allLinked(claims, c.Identifiers) {
		return nil, nil // the common case: nothing new to link
	}
	in := identity.PlanInput{Home: c.ProfileID, Claims: claims, Owners: map[related.Identifier]string{},
		Profiles: map[string]identity.ProfileFacts{}, DoNotLink: map[string]bool{}, Rules: rules}
	// Who holds each claimed identifier: one seek of the primary key
	// (tenant, key, value) per pair. Without statistics SQLite prefers to
	// walk the covering (tenant, profile_id, key, value) index over the
	// whole tenant, so the primary key is named (its automatic index); pairs
	// crossing one claim's key with another's value are dropped below.
	keys, values := make([]any, 0, len(claims)), make([]any, 0, len(claims))
	for _, cl := range claims {
		keys, values = append(keys, cl.Key), append(values, cl.Value)
	}
	rows, err := s.query(ctx, tx, `SELECT key, value, profile_id FROM identifiers INDEXED BY sqlite_autoindex_identifiers_1 WHERE tenant = ? AND key IN (`+placeholders(len(keys))+
		`) AND value IN (`+placeholders(len(values))+`)`, append(append([]any{tenant}, keys...), values...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read identifiers: %w", err)
	}
	found, err := collect(rows, func(r scanner) ([3]string, error) {
		var v [3]string
		return v, r.Scan(&v[0], &v[1], &v[2])
	}, "identifiers")
	if err != nil {
		return nil, err
	}
	var owners [][3]string
	for _, o := range found {
		if slices.ContainsFunc(claims, func(cl identity.Claim) bool { return cl.Key == o[0] && cl.Value == o[1] }) {
			owners = append(owners, o)
		}
	}
	ids := []string{}
	if c.ProfileID != "" {
		ids = append(ids, c.ProfileID)
	}
	for _, o := range owners {
		in.Owners[related.Identifier{Key: o[0], Value: o[1]}] = o[2]
		if !slices.Contains(ids, o[2]) {
			ids = append(ids, o[2])
		}
	}
	if err := s.profileFacts(ctx, tx, tenant, ids, in.Profiles); err != nil {
		return nil, err
	}
	rows, err = s.query(ctx, tx, `SELECT profile_id FROM do_not_link WHERE tenant = ? AND contact_id = ?`, tenant, c.ID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read do-not-link: %w", err)
	}
	dnl, err := collect(rows, func(r scanner) (string, error) { var v string; return v, r.Scan(&v) }, "do-not-link")
	if err != nil {
		return nil, err
	}
	for _, p := range dnl {
		in.DoNotLink[p] = true
	}
	plan := identity.Decide(in)
	return s.apply(ctx, tx, tenant, c, plan, interactionID, by, now)
}

func allLinked(claims []identity.Claim, linked []related.Identifier) bool {
	for _, c := range claims {
		if !slices.Contains(linked, c.Identifier) {
			return false
		}
	}
	return true
}

// profileFacts reads the age and identifier counts of profiles.
func (s *Store) profileFacts(ctx context.Context, q querier, tenant string, ids []string, out map[string]identity.ProfileFacts) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.query(ctx, q, `SELECT p.id, p.created_at, i.key, count(i.key) FROM profiles p
		LEFT JOIN identifiers i ON i.tenant = p.tenant AND i.profile_id = p.id
		WHERE p.tenant = ? AND p.id IN (`+placeholders(len(ids))+`) GROUP BY p.id, i.key`, args...)
	if err != nil {
		return fmt.Errorf("sqlite: read profile facts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      string
			created int64
			key     sql.NullString
			n       int
		)
		if err := rows.Scan(&id, &created, &key, &n); err != nil {
			return fmt.Errorf("sqlite: scan profile facts: %w", err)
		}
		f, ok := out[id]
		if !ok {
			f = identity.ProfileFacts{ID: id, CreatedAt: fromMS(created), Counts: map[string]int{}}
		}
		if key.Valid {
			f.Counts[key.String] = n
		}
		out[id] = f
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read profile facts: %w", err)
	}
	return nil
}

// apply carries out a plan for contact c.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, plan identity.Plan, interactionID, by string, now time.Time) ([]store.Event, error) {
	var events []store.Event
	for _, cf := range plan.Conflicts {
		if err := s.recordConflict(ctx, tx, tenant, c.ID, cf, now); err != nil {
			return nil, err
		}
	}
	target := plan.Profile
	if plan.NewProfile {
		target = related.NewID()
		if _, err := s.exec(ctx, tx, `INSERT INTO profiles (tenant, id, created_at, updated_at) VALUES (?, ?, ?, ?)`,
			tenant, target, ms(now), ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: create profile: %w", err)
		}
	}
	if target == "" {
		return nil, nil
	}
	for _, loser := range plan.Merges {
		ev, err := s.merge(ctx, tx, tenant, target, loser, by, now)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	for _, cl := range plan.Claim {
		if _, err := s.exec(ctx, tx, `INSERT INTO identifiers (tenant, key, value, profile_id, created_at) VALUES (?, ?, ?, ?, ?)`,
			tenant, cl.Key, cl.Value, target, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: claim identifier: %w", err)
		}
	}
	linked := slices.Clone(c.Identifiers)
	if c.ProfileID != "" && c.ProfileID != target && !slices.Contains(plan.Merges, c.ProfileID) {
		linked = nil // the contact moves: its old links stay with the old profile's history
	}
	for _, cl := range plan.Links {
		if slices.Contains(linked, cl.Identifier) {
			continue
		}
		linked = append(linked, cl.Identifier)
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_links (tenant, id, profile_id, contact_id, reason, key, value, rule_id, source, interaction_id, by, linked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tenant, related.NewID(), target, c.ID, related.LinkRule, cl.Key, cl.Value, cl.RuleID, cl.Source, interactionID, by, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: record link: %w", err)
		}
	}
	ev, err := s.moveContact(ctx, tx, tenant, c, target, linked, now)
	if err != nil {
		return nil, err
	}
	events = append(events, ev...)
	return events, s.refreshProfile(ctx, tx, tenant, target, now)
}

// moveContact puts c into profile target with the given link identifiers,
// and its interactions along with it.
func (s *Store) moveContact(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, target string, linked []related.Identifier, now time.Time) ([]store.Event, error) {
	if _, err := s.exec(ctx, tx, `UPDATE contacts SET profile_id = ?, identifiers = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		target, encodeIdentifiers(linked), ms(now), tenant, c.ID); err != nil {
		return nil, fmt.Errorf("sqlite: move contact: %w", err)
	}
	from := c.ProfileID
	c.ProfileID, c.Identifiers = target, linked
	if from == target {
		return nil, nil
	}
	return s.moveInteractions(ctx, tx, tenant, "contact_id = ?", c.ID, from, target, now)
}

// moveInteractions sets the profile of the interactions matching cond and
// returns an event for each.
func (s *Store) moveInteractions(ctx context.Context, tx *sql.Tx, tenant, cond, arg, from, to string, now time.Time) ([]store.Event, error) {
	rows, err := s.query(ctx, tx, `UPDATE interactions SET profile_id = ?, updated_at = ? WHERE tenant = ? AND `+cond+` RETURNING id, contact_id`,
		to, ms(now), tenant, arg)
	if err != nil {
		return nil, fmt.Errorf("sqlite: move interactions: %w", err)
	}
	moved, err := collect(rows, func(r scanner) ([2]string, error) { var v [2]string; return v, r.Scan(&v[0], &v[1]) }, "interactions")
	if err != nil {
		return nil, err
	}
	events := make([]store.Event, len(moved))
	for i, m := range moved {
		events[i] = store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.ProfileChanged, InteractionID: m[0],
			ContactID: m[1], ProfileID: to, FromProfileID: from, At: now}
	}
	return events, nil
}

// merge moves everything of profile loser into winner and leaves loser as
// a pointer to it.
func (s *Store) merge(ctx context.Context, tx *sql.Tx, tenant, winner, loser, by string, now time.Time) ([]store.Event, error) {
	for _, stmt := range []string{
		`UPDATE contacts SET profile_id = ? WHERE tenant = ? AND profile_id = ?`,
		`UPDATE identifiers SET profile_id = ? WHERE tenant = ? AND profile_id = ?`,
		`UPDATE profile_links SET profile_id = ? WHERE tenant = ? AND profile_id = ?`,
	} {
		if _, err := s.exec(ctx, tx, stmt, winner, tenant, loser); err != nil {
			return nil, fmt.Errorf("sqlite: merge profiles: %w", err)
		}
	}
	// The loser, and profiles merged into it before, now point at the
	// winner (two statements: an OR of the two would scan the tenant).
	for _, cond := range []string{"id = ?", "merged_into = ?"} {
		if _, err := s.exec(ctx, tx, `UPDATE profiles SET merged_into = ?, updated_at = ? WHERE tenant = ? AND `+cond,
			winner, ms(now), tenant, loser); err != nil {
			return nil, fmt.Errorf("sqlite: merge profiles: %w", err)
		}
	}
	if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO merges (tenant, loser, winner, by, at) VALUES (?, ?, ?, ?, ?)`,
		tenant, loser, winner, by, ms(now)); err != nil {
		return nil, fmt.Errorf("sqlite: record merge: %w", err)
	}
	if _, err := s.exec(ctx, tx, `UPDATE do_not_link SET profile_id = ? WHERE tenant = ? AND profile_id = ?
		AND contact_id NOT IN (SELECT contact_id FROM do_not_link WHERE tenant = ? AND profile_id = ?)`,
		winner, tenant, loser, tenant, winner); err != nil {
		return nil, fmt.Errorf("sqlite: carry do-not-link: %w", err)
	}
	return s.moveInteractions(ctx, tx, tenant, "profile_id = ?", loser, loser, winner, now)
}

// recordConflict stores a conflict unless the same one is open already.
func (s *Store) recordConflict(ctx context.Context, tx *sql.Tx, tenant, contactID string, cf identity.Conflict, now time.Time) error {
	var n int
	if err := s.queryRow(ctx, tx, `SELECT count(*) FROM profile_conflicts WHERE tenant = ? AND resolved_at = 0
		AND key = ? AND value = ? AND reason = ? AND contact_id = ?`, tenant, cf.Key, cf.Value, cf.Reason, contactID).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: read conflicts: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO profile_conflicts (tenant, id, key, value, reason, profile_a, profile_b, contact_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, tenant, related.NewID(), cf.Key, cf.Value, cf.Reason, cf.Profiles[0], cf.Profiles[1], contactID, ms(now)); err != nil {
		return fmt.Errorf("sqlite: record conflict: %w", err)
	}
	return nil
}

// refreshProfile recomputes the summary a profile keeps for the profile
// bar: its channels, identifiers and automatic name. A profile left with
// no contacts is deleted with its identifiers.
func (s *Store) refreshProfile(ctx context.Context, tx *sql.Tx, tenant, id string, now time.Time) error {
	// Grouped here rather than in SQL: a GROUP BY channel would make the
	// planner walk the (tenant, channel, address) index over the tenant.
	rows, err := s.query(ctx, tx, `SELECT channel FROM contacts WHERE tenant = ? AND profile_id = ?`, tenant, id)
	if err != nil {
		return fmt.Errorf("sqlite: read profile channels: %w", err)
	}
	chans, err := collect(rows, func(r scanner) (related.Channel, error) { var c related.Channel; return c, r.Scan(&c) }, "channels")
	if err != nil {
		return err
	}
	count := len(chans)
	if len(chans) == 0 {
		for _, stmt := range []string{`DELETE FROM identifiers WHERE tenant = ? AND profile_id = ?`, `DELETE FROM profiles WHERE tenant = ? AND id = ?`} {
			if _, err := s.exec(ctx, tx, stmt, tenant, id); err != nil {
				return fmt.Errorf("sqlite: delete empty profile: %w", err)
			}
		}
		return nil
	}
	rows, err = s.query(ctx, tx, `SELECT key, value FROM identifiers WHERE tenant = ? AND profile_id = ? ORDER BY key, value`, tenant, id)
	if err != nil {
		return fmt.Errorf("sqlite: read profile identifiers: %w", err)
	}
	ids, err := collect(rows, func(r scanner) (related.Identifier, error) {
		var i related.Identifier
		return i, r.Scan(&i.Key, &i.Value)
	}, "identifiers")
	if err != nil {
		return err
	}
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return err
	}
	chanJSON, _ := json.Marshal(related.SortChannels(chans)) // strings always marshal
	if _, err := s.exec(ctx, tx, `UPDATE profiles SET channels = ?, identifiers = ?, contacts = ?, auto_name = ?, updated_at = ? WHERE tenant = ? AND id = ?`,
		string(chanJSON), encodeIdentifiers(ids), count, identity.Name(ids, rules), ms(now), tenant, id); err != nil {
		return fmt.Errorf("sqlite: update profile: %w", err)
	}
	return nil
}
