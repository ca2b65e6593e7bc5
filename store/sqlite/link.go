package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
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

// Linking on SQLite: a write that changes what a contact holds stores its
// claims (contact_values, one row per value, with provenance), counts the
// values for hub quarantine (value_stats), then recomputes the clusters it
// touches (store.Recompute) and applies the changes, all inside the
// write's transaction: a write and its linking commit together or not at
// all.

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

const ruleCols = `id, tenant, attribute, normalizer, enabled, priority, max_per_profile, blocked_values, default_region, deleted, created_at, updated_at, auto_merge, max_contacts_per_value`

func scanRule(r scanner) (identity.Rule, error) {
	var (
		x                identity.Rule
		blocked          string
		created, updated int64
	)
	if err := r.Scan(&x.ID, &x.Tenant, &x.Attribute, &x.Normalizer, &x.Enabled, &x.Priority, &x.MaxPerProfile,
		&blocked, &x.DefaultRegion, &x.Deleted, &created, &updated, &x.AutoMerge, &x.MaxContactsPerValue); err != nil {
		return x, err
	}
	x.CreatedAt, x.UpdatedAt = fromMS(created), fromMS(updated)
	if x.AutoMerge == "" {
		x.AutoMerge = identity.DefaultAutoMerge(x.Attribute, x.Normalizer)
	}
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
	settings, err := s.settings(ctx, q, tenant)
	if err != nil {
		return nil, err
	}
	r := identity.WithDefaults(tenant, stored)
	for i := range r {
		r[i].TenantRegion = settings.DefaultRegion
	}
	s.ruleCache.put(tenant, r)
	return r, nil
}

// contactByID reads one contact.
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

// claimsSig is a digest of what linking reads of a contact: the facts its
// claims state (not their provenance) and its name (which names its
// profile). A write whose contact's digest is unchanged has nothing to
// relink, and knows it without a statement.
func claimsSig(claims []identity.Claim, name string) string {
	if len(claims) == 0 && name == "" {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s;", len(name), name)
	for _, c := range claims {
		fmt.Fprintf(h, "%d:%s%d:%s%s/%t/%s;", len(c.Key), c.Key, len(c.Value), c.Value, c.Source, c.Agent, c.RuleID)
	}
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil)[:12])
}

// linkContact brings contact c's stored claims up to date with its
// address and attributes under the tenant's rules and, when they changed,
// recomputes the profiles of the clusters it touches. It returns the live
// events of the interactions whose profile changed. c.ProfileID is updated.
func (s *Store) linkContact(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, by related.Actor, now time.Time) ([]store.Event, error) {
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return nil, err
	}
	seeds, history, err := s.syncClaims(ctx, tx, tenant, c, rules, now)
	if err != nil || len(seeds) == 0 {
		return nil, err // the common case: nothing new to link
	}
	events, err := s.recompute(ctx, tx, tenant, rules, seeds, by, now)
	if err != nil {
		return nil, err
	}
	if err := s.recordEvents(ctx, tx, tenant, history, by, now); err != nil {
		return nil, err
	}
	cur, err := s.contactByID(ctx, tx, tenant, c.ID)
	if err != nil {
		return nil, err
	}
	c.ProfileID = cur.ProfileID
	return events, nil
}

// syncClaims stores c's claims under rules and returns the contacts whose
// clusters must be recomputed: none when nothing changed; else c, and the
// holders of any value whose quarantine the change flipped. It also
// returns the history of those flips.
func (s *Store) syncClaims(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, rules []identity.Rule, now time.Time) ([]string, []identity.Event, error) {
	claims := identity.Claims(rules, c)
	sig := claimsSig(claims, c.Name)
	if sig == c.ClaimsSig {
		return nil, nil, nil
	}
	rows, err := s.query(ctx, tx, `SELECT `+valueCols+` FROM contact_values WHERE tenant = ? AND contact_id = ?`, tenant, c.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: read contact values: %w", err)
	}
	stored, err := collect(rows, scanHolder, "contact values")
	if err != nil {
		return nil, nil, err
	}
	var added, removed []identity.Identifier
	for _, old := range stored {
		i := slices.IndexFunc(claims, func(cl identity.Claim) bool { return cl.Identifier == old.Identifier })
		if i < 0 {
			removed = append(removed, old.Identifier)
			if _, err := s.exec(ctx, tx, `DELETE FROM contact_values WHERE tenant = ? AND key = ? AND value = ? AND contact_id = ?`,
				tenant, old.Key, old.Value, c.ID); err != nil {
				return nil, nil, fmt.Errorf("sqlite: remove contact value: %w", err)
			}
		}
	}
	for _, cl := range claims {
		i := slices.IndexFunc(stored, func(h identity.Holder) bool { return h.Identifier == cl.Identifier })
		if i >= 0 && stored[i].Source == cl.Source && stored[i].Agent == cl.Agent && stored[i].RuleID == cl.RuleID {
			continue
		}
		if i < 0 {
			added = append(added, cl.Identifier)
		}
		at := cl.At
		if at.IsZero() {
			at = now
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO contact_values (`+valueCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, key, value, contact_id) DO UPDATE SET rule_id = excluded.rule_id, source = excluded.source,
				agent = excluded.agent, interaction_id = excluded.interaction_id, by_name = excluded.by_name,
				by_role = excluded.by_role, at = excluded.at`,
			tenant, cl.Key, cl.Value, c.ID, cl.RuleID, cl.Source, cl.Agent, cl.InteractionID, cl.By.Name, cl.By.Role, ms(at)); err != nil {
			return nil, nil, fmt.Errorf("sqlite: store contact value: %w", err)
		}
	}
	if _, err := s.exec(ctx, tx, `UPDATE contacts SET claims_sig = ? WHERE tenant = ? AND id = ?`, sig, tenant, c.ID); err != nil {
		return nil, nil, fmt.Errorf("sqlite: update contact: %w", err)
	}
	c.ClaimsSig = sig
	seeds := []string{c.ID}
	flipped, err := s.countValues(ctx, tx, tenant, rules, added, removed, now)
	if err != nil {
		return nil, nil, err
	}
	var history []identity.Event
	for _, f := range flipped {
		hs, err := s.holders(ctx, tx, tenant, []related.Identifier{f.id})
		if err != nil {
			return nil, nil, err
		}
		var holders []string
		for _, h := range hs {
			holders = append(holders, h.Contact)
		}
		seeds = append(seeds, holders...)
		cur, err := clusterReader{s, tx}.CurrentProfiles(ctx, tenant, holders)
		if err != nil {
			return nil, nil, err
		}
		kind := identity.EventReleased
		if f.quarantined {
			kind = identity.EventQuarantined
		}
		history = append(history, identity.Event{Kind: kind, Profiles: distinctValues(cur), Identifier: f.id})
	}
	return seeds, history, nil
}

// distinctValues returns the non-empty values of m, sorted, once each.
func distinctValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		if v != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// flip is a value whose quarantine a count changed.
type flip struct {
	id          identity.Identifier
	quarantined bool
}

// countValues keeps value_stats' counts of contacts per value and returns
// the values whose quarantine the counts flipped.
func (s *Store) countValues(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, added, removed []identity.Identifier, now time.Time) ([]flip, error) {
	byKey := map[string]identity.Rule{}
	for _, r := range rules {
		byKey[r.Attribute] = r
	}
	var flipped []flip
	step := func(id identity.Identifier, delta int) error {
		var (
			n     int
			state identity.Quarantine
		)
		if err := s.queryRow(ctx, tx, `INSERT INTO value_stats (tenant, key, value, id, contacts, updated_at) VALUES (?, ?, ?, ?, max(?, 0), ?)
			ON CONFLICT (tenant, key, value) DO UPDATE SET contacts = max(value_stats.contacts + ?, 0)
			RETURNING contacts, state`, tenant, id.Key, id.Value, valueID(id), delta, ms(now), delta).Scan(&n, &state); err != nil {
			return fmt.Errorf("sqlite: count value: %w", err)
		}
		if n == 0 && state == identity.QuarantineAutomatic {
			// Nobody holds it any more: forget it (it may be an erased
			// person's), unless an admin set a state for it.
			if _, err := s.exec(ctx, tx, `DELETE FROM value_stats WHERE tenant = ? AND key = ? AND value = ?`, tenant, id.Key, id.Value); err != nil {
				return fmt.Errorf("sqlite: forget value: %w", err)
			}
		}
		r := byKey[id.Key]
		before := r.Quarantined(identity.ValueFacts{Contacts: n - delta, State: state})
		after := r.Quarantined(identity.ValueFacts{Contacts: n, State: state})
		if before == after {
			return nil
		}
		flipped = append(flipped, flip{id, after})
		return s.markValue(ctx, tx, tenant, id, after, state, now)
	}
	for _, id := range added {
		if err := step(id, 1); err != nil {
			return nil, err
		}
	}
	for _, id := range removed {
		if err := step(id, -1); err != nil {
			return nil, err
		}
	}
	return flipped, nil
}

// markValue records whether a value is quarantined, for the hub list.
func (s *Store) markValue(ctx context.Context, tx *sql.Tx, tenant string, id identity.Identifier, quarantined bool, state identity.Quarantine, now time.Time) error {
	listed := quarantined || state != "" && state != identity.QuarantineAutomatic
	if _, err := s.exec(ctx, tx, `UPDATE value_stats SET quarantined = ?, listed = ?, updated_at = ? WHERE tenant = ? AND key = ? AND value = ?`,
		quarantined, listed, ms(now), tenant, id.Key, id.Value); err != nil {
		return fmt.Errorf("sqlite: mark value: %w", err)
	}
	return nil
}

// valueID is the id a hub value is paged by.
func valueID(id identity.Identifier) string { return related.DerivedID("value", id.Key, id.Value) }

// recompute decides the clusters of seeds and applies the result.
func (s *Store) recompute(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, seeds []string, by related.Actor, now time.Time) ([]store.Event, error) {
	events, _, err := s.recomputeSummary(ctx, tx, tenant, rules, seeds, by, now)
	return events, err
}

// recomputeSummary is recompute that also says what changed.
func (s *Store) recomputeSummary(ctx context.Context, tx *sql.Tx, tenant string, rules []identity.Rule, seeds []string, by related.Actor, now time.Time) ([]store.Event, identity.Summary, error) {
	in, ch, err := store.Recompute(ctx, clusterReader{s, tx}, tenant, rules, seeds)
	if err != nil {
		return nil, identity.Summary{}, err
	}
	events, err := s.apply(ctx, tx, tenant, in, ch, by, now)
	return events, ch.Summary, err
}

// apply writes a recompute's changes and returns the live events of the
// interactions that changed profile.
func (s *Store) apply(ctx context.Context, tx *sql.Tx, tenant string, in identity.Input, ch store.Changes, by related.Actor, now time.Time) ([]store.Event, error) {
	var events []store.Event
	// Contacts and their interactions, batched by destination.
	from := map[string]string{}
	byTarget := map[string][]string{}
	var targets []string
	for _, m := range ch.Moves {
		from[m.Contact] = m.From
		if _, ok := byTarget[m.To]; !ok {
			targets = append(targets, m.To)
		}
		byTarget[m.To] = append(byTarget[m.To], m.Contact)
	}
	slices.Sort(targets)
	for _, to := range targets {
		ids := byTarget[to]
		args := append([]any{to, ms(now), tenant}, anys(ids)...)
		if _, err := s.exec(ctx, tx, `UPDATE contacts SET profile_id = ?, updated_at = ? WHERE tenant = ? AND id IN (`+placeholders(len(ids))+`)`, args...); err != nil {
			return nil, fmt.Errorf("sqlite: move contacts: %w", err)
		}
		rows, err := s.query(ctx, tx, `UPDATE interactions SET profile_id = ?, updated_at = ? WHERE tenant = ? AND contact_id IN (`+placeholders(len(ids))+`) RETURNING id, contact_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: move interactions: %w", err)
		}
		moved, err := collect(rows, func(r scanner) ([2]string, error) { var v [2]string; return v, r.Scan(&v[0], &v[1]) }, "interactions")
		if err != nil {
			return nil, err
		}
		for _, m := range moved {
			events = append(events, store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.ProfileChanged, InteractionID: m[0],
				ContactID: m[1], ProfileID: to, FromProfileID: from[m[1]], At: now})
		}
	}
	// Profiles: the decided ones written, the gone ones deleted.
	for _, p := range ch.Profiles {
		chans, _ := json.Marshal(p.Channels) // strings always marshal
		if _, err := s.exec(ctx, tx, `INSERT INTO profiles (tenant, id, anchor, custom_name, auto_name, channels, identifiers, contacts, merged_into, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET anchor = excluded.anchor, custom_name = excluded.custom_name,
				auto_name = excluded.auto_name, channels = excluded.channels, identifiers = excluded.identifiers,
				contacts = excluded.contacts, merged_into = '', updated_at = excluded.updated_at
			WHERE profiles.custom_name <> excluded.custom_name OR profiles.auto_name <> excluded.auto_name
				OR profiles.channels <> excluded.channels OR profiles.identifiers <> excluded.identifiers
				OR profiles.contacts <> excluded.contacts OR profiles.anchor <> excluded.anchor OR profiles.merged_into <> ''`,
			tenant, p.ID, p.Anchor, p.CustomName, p.AutoName, string(chans), encodeProfileIdentifiers(p.Identifiers), len(p.Contacts),
			ms(now), ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: write profile: %w", err)
		}
	}
	if len(ch.Deleted) > 0 {
		if _, err := s.exec(ctx, tx, `DELETE FROM profiles WHERE tenant = ? AND id IN (`+placeholders(len(ch.Deleted))+`)`,
			append([]any{tenant}, anys(ch.Deleted)...)...); err != nil {
			return nil, fmt.Errorf("sqlite: delete profiles: %w", err)
		}
	}
	// Suggestions and conflicts.
	if len(ch.DeletePairs) > 0 {
		if _, err := s.exec(ctx, tx, `DELETE FROM profile_pairs WHERE tenant = ? AND id IN (`+placeholders(len(ch.DeletePairs))+`)`,
			append([]any{tenant}, anys(ch.DeletePairs)...)...); err != nil {
			return nil, fmt.Errorf("sqlite: delete pairs: %w", err)
		}
	}
	for _, p := range ch.InsertPairs {
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_pairs (tenant, id, kind, key, value, rule_id, contact_a, contact_b, source_a, source_b, reason, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO NOTHING`,
			tenant, p.ID(), p.Kind, p.Key, p.Value, p.RuleID, p.A, p.B, p.SourceA, p.SourceB, p.Reason, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: write pair: %w", err)
		}
	}
	return events, s.recordEvents(ctx, tx, tenant, ch.Events, by, now)
}

// recordEvents appends history entries, indexed by every profile they
// name.
func (s *Store) recordEvents(ctx context.Context, tx *sql.Tx, tenant string, evs []identity.Event, by related.Actor, now time.Time) error {
	for _, e := range evs {
		id := related.NewID()
		profiles, _ := json.Marshal(e.Profiles) // strings always marshal
		if profiles == nil || string(profiles) == "null" {
			profiles = []byte("[]")
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_events (tenant, id, kind, profiles, contact_id, key, value, by_name, by_role, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, tenant, id, e.Kind, string(profiles), e.Contact, e.Identifier.Key, e.Identifier.Value,
			by.Name, by.Role, ms(now)); err != nil {
			return fmt.Errorf("sqlite: record history: %w", err)
		}
		for _, p := range slices.Compact(slices.Sorted(slices.Values(e.Profiles))) {
			if p == "" {
				continue
			}
			if _, err := s.exec(ctx, tx, `INSERT OR IGNORE INTO profile_event_refs (tenant, profile_id, event_id) VALUES (?, ?, ?)`, tenant, p, id); err != nil {
				return fmt.Errorf("sqlite: index history: %w", err)
			}
		}
	}
	return nil
}

func anys(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// The stored JSON form of a profile's identifiers.
type profileIdentifier struct {
	Key      string `json:"k"`
	Value    string `json:"v"`
	Attested bool   `json:"a,omitempty"`
}

func encodeProfileIdentifiers(ids []related.ProfileIdentifier) string {
	out := make([]profileIdentifier, len(ids))
	for i, id := range ids {
		out[i] = profileIdentifier{id.Key, id.Value, id.Attested}
	}
	b, _ := json.Marshal(out) // plain strings and bools always marshal
	return string(b)
}

func decodeProfileIdentifiers(s string) ([]related.ProfileIdentifier, error) {
	var in []profileIdentifier
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode identifiers: %w", err)
	}
	out := make([]related.ProfileIdentifier, len(in))
	for i, id := range in {
		out[i] = related.ProfileIdentifier{Identifier: related.Identifier{Key: id.Key, Value: id.Value}, Attested: id.Attested}
	}
	return out, nil
}
