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

const profileCols = `id, tenant, custom_name, auto_name, channels, identifiers, contacts, merged_into, created_at, updated_at`

func profileScan() ([]any, func() (*related.Profile, error)) {
	var (
		p                related.Profile
		chans, ids       string
		created, updated int64
	)
	dest := []any{&p.ID, &p.Tenant, &p.CustomName, &p.AutoName, &chans, &ids, &p.ContactCount, &p.MergedInto, &created, &updated}
	return dest, func() (*related.Profile, error) {
		p.CreatedAt, p.UpdatedAt = fromMS(created), fromMS(updated)
		if err := json.Unmarshal([]byte(chans), &p.Channels); err != nil {
			return nil, fmt.Errorf("profile %s: decode channels: %w", p.ID, err)
		}
		var err error
		if p.Identifiers, err = decodeIdentifiers(ids); err != nil {
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
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_rules (`+ruleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET attribute = excluded.attribute, normalizer = excluded.normalizer,
				enabled = excluded.enabled, priority = excluded.priority, max_per_profile = excluded.max_per_profile,
				blocked_values = excluded.blocked_values, default_region = excluded.default_region, deleted = 0,
				updated_at = excluded.updated_at`,
			r.ID, tenant, r.Attribute, r.Normalizer, r.Enabled, r.Priority, r.MaxPerProfile, string(blocked), r.DefaultRegion,
			ms(r.CreatedAt), ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: save rule: %w", err)
		}
		return nil, s.startEvaluation(ctx, tx, tenant, now)
	})
	s.ruleCache.drop(tenant)
	return r, err
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
		if _, err := s.exec(ctx, tx, `INSERT INTO profile_rules (`+ruleCols+`) VALUES (?, ?, ?, ?, 0, ?, 0, '[]', '', 1, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET deleted = 1, enabled = 0, updated_at = excluded.updated_at`,
			r.ID, tenant, r.Attribute, r.Normalizer, r.Priority, ms(now), ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: delete rule: %w", err)
		}
		return nil, s.startEvaluation(ctx, tx, tenant, now)
	})
	s.ruleCache.drop(tenant)
	return err
}

// startEvaluation (re)starts the re-evaluation of a tenant's contacts from
// the first contact.
func (s *Store) startEvaluation(ctx context.Context, tx *sql.Tx, tenant string, now time.Time) error {
	var total int
	if err := s.queryRow(ctx, tx, `SELECT count(*) FROM contacts WHERE tenant = ?`, tenant).Scan(&total); err != nil {
		return fmt.Errorf("sqlite: count contacts: %w", err)
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO rule_evaluations (tenant, state, processed, total, after_id, started_at, updated_at)
		VALUES (?, 'RUNNING', 0, ?, '', ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET state = 'RUNNING', processed = 0, total = excluded.total, after_id = '',
			started_at = excluded.started_at, updated_at = excluded.updated_at`, tenant, total, ms(now), ms(now)); err != nil {
		return fmt.Errorf("sqlite: start evaluation: %w", err)
	}
	return nil
}

// RuleEvaluation implements store.ProfileStore.
func (s *Store) RuleEvaluation(ctx context.Context, tenant string) (*related.RuleEvaluation, error) {
	var (
		e                related.RuleEvaluation
		started, updated int64
	)
	err := s.queryRow(ctx, s.r, `SELECT tenant, state, processed, total, started_at, updated_at FROM rule_evaluations WHERE tenant = ?`, tenant).
		Scan(&e.Tenant, &e.State, &e.Processed, &e.Total, &started, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read evaluation: %w", err)
	}
	e.StartedAt, e.UpdatedAt = fromMS(started), fromMS(updated)
	return &e, nil
}

// PendingEvaluations implements store.ProfileStore.
func (s *Store) PendingEvaluations(ctx context.Context) ([]string, error) {
	rows, err := s.query(ctx, s.r, `SELECT tenant FROM rule_evaluations WHERE state = 'RUNNING'`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list evaluations: %w", err)
	}
	return collect(rows, func(r scanner) (string, error) { var t string; return t, r.Scan(&t) }, "evaluations")
}

// EvaluateRules implements store.ProfileStore: one transaction re-links one
// batch of contacts in id order and records where it stopped, so a restart
// resumes there.
func (s *Store) EvaluateRules(ctx context.Context, tenant string, batch int) (bool, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	done := false
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		var state, after string
		var processed int
		err := s.queryRow(ctx, tx, `SELECT state, after_id, processed FROM rule_evaluations WHERE tenant = ?`, tenant).Scan(&state, &after, &processed)
		if errors.Is(err, sql.ErrNoRows) || err == nil && state != "RUNNING" {
			done = true
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: read evaluation: %w", err)
		}
		rows, err := s.query(ctx, tx, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`, tenant, after, batch)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read contacts: %w", err)
		}
		contacts, err := collect(rows, scanContact, "contacts")
		if err != nil {
			return nil, err
		}
		var events []store.Event
		for _, c := range contacts {
			// Earlier contacts of the batch may have moved this one.
			cur, err := s.contactByID(ctx, tx, tenant, c.ID)
			if err != nil {
				return nil, err
			}
			ev, err := s.relink(ctx, tx, tenant, cur, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			after = c.ID
		}
		processed += len(contacts)
		state = "RUNNING"
		if len(contacts) < batch {
			state, done = "DONE", true
		}
		if _, err := s.exec(ctx, tx, `UPDATE rule_evaluations SET state = ?, processed = ?, after_id = ?, updated_at = ? WHERE tenant = ?`,
			state, processed, after, ms(now), tenant); err != nil {
			return nil, fmt.Errorf("sqlite: record evaluation: %w", err)
		}
		return events, nil
	})
	return done, err
}

// relink re-evaluates one contact under the current rules: links whose
// value no rule accepts any more are removed (splitting its profile where
// they held it together), then the contact is linked as a new write would.
func (s *Store) relink(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, now time.Time) ([]store.Event, error) {
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return nil, err
	}
	claims := identity.Claims(rules, c)
	var keep, stale []related.Identifier
	for _, id := range c.Identifiers {
		if slices.ContainsFunc(claims, func(cl identity.Claim) bool { return cl.Identifier == id }) {
			keep = append(keep, id)
		} else {
			stale = append(stale, id)
		}
	}
	var events []store.Event
	if len(stale) > 0 && c.ProfileID != "" {
		for _, id := range stale {
			if _, err := s.exec(ctx, tx, `DELETE FROM profile_links WHERE tenant = ? AND contact_id = ? AND reason = ? AND key = ? AND value = ?`,
				tenant, c.ID, related.LinkRule, id.Key, id.Value); err != nil {
				return nil, fmt.Errorf("sqlite: remove link: %w", err)
			}
		}
		if _, err := s.exec(ctx, tx, `UPDATE contacts SET identifiers = ? WHERE tenant = ? AND id = ?`, encodeIdentifiers(keep), tenant, c.ID); err != nil {
			return nil, fmt.Errorf("sqlite: update contact: %w", err)
		}
		c.Identifiers = keep
		ev, err := s.resplit(ctx, tx, tenant, c.ProfileID, now)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
		if c, err = s.contactByID(ctx, tx, tenant, c.ID); err != nil {
			return nil, err
		}
	}
	ev, err := s.linkContact(ctx, tx, tenant, c, "", "rules", now)
	return append(events, ev...), err
}

// resplit recomputes which identifiers a profile still holds (those some
// member's links hold) and splits it into the components its members'
// links connect: the first keeps the profile, the others get new ones.
func (s *Store) resplit(ctx context.Context, tx *sql.Tx, tenant, profileID string, now time.Time) ([]store.Event, error) {
	rows, err := s.query(ctx, tx, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND profile_id = ? ORDER BY created_at, id`, tenant, profileID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read members: %w", err)
	}
	members, err := collect(rows, scanContact, "contacts")
	if err != nil {
		return nil, err
	}
	rows, err = s.query(ctx, tx, `SELECT contact_id FROM profile_links WHERE tenant = ? AND profile_id = ? AND reason = ?`, tenant, profileID, related.LinkManual)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read manual links: %w", err)
	}
	manual, err := collect(rows, func(r scanner) (string, error) { var v string; return v, r.Scan(&v) }, "links")
	if err != nil {
		return nil, err
	}
	held := map[related.Identifier]bool{}
	ms_ := make([]identity.Member, len(members))
	for i, m := range members {
		ms_[i] = identity.Member{ContactID: m.ID, Identifiers: m.Identifiers, Manual: slices.Contains(manual, m.ID)}
		for _, id := range m.Identifiers {
			held[id] = true
		}
	}
	// Identifiers no member links any more are released.
	rows, err = s.query(ctx, tx, `SELECT key, value FROM identifiers WHERE tenant = ? AND profile_id = ?`, tenant, profileID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read identifiers: %w", err)
	}
	owned, err := collect(rows, func(r scanner) (related.Identifier, error) {
		var i related.Identifier
		return i, r.Scan(&i.Key, &i.Value)
	}, "identifiers")
	if err != nil {
		return nil, err
	}
	for _, id := range owned {
		if !held[id] {
			if _, err := s.exec(ctx, tx, `DELETE FROM identifiers WHERE tenant = ? AND key = ? AND value = ?`, tenant, id.Key, id.Value); err != nil {
				return nil, fmt.Errorf("sqlite: release identifier: %w", err)
			}
		}
	}
	var events []store.Event
	byID := map[string]*related.Contact{}
	for _, m := range members {
		byID[m.ID] = m
	}
	groups := identity.Components(ms_)
	for gi, g := range groups {
		if gi == 0 {
			continue
		}
		// A member without links of its own leaves the profile alone.
		if len(g) == 1 && len(byID[g[0]].Identifiers) == 0 {
			ev, err := s.moveContact(ctx, tx, tenant, byID[g[0]], "", nil, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			continue
		}
		np := related.NewID()
		if _, err := s.exec(ctx, tx, `INSERT INTO profiles (tenant, id, created_at, updated_at) VALUES (?, ?, ?, ?)`, tenant, np, ms(now), ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: create profile: %w", err)
		}
		for _, cid := range g {
			c := byID[cid]
			for _, id := range c.Identifiers {
				if _, err := s.exec(ctx, tx, `UPDATE identifiers SET profile_id = ? WHERE tenant = ? AND key = ? AND value = ?`, np, tenant, id.Key, id.Value); err != nil {
					return nil, fmt.Errorf("sqlite: move identifier: %w", err)
				}
			}
			if _, err := s.exec(ctx, tx, `UPDATE profile_links SET profile_id = ? WHERE tenant = ? AND contact_id = ? AND profile_id = ?`, np, tenant, cid, profileID); err != nil {
				return nil, fmt.Errorf("sqlite: move links: %w", err)
			}
			ev, err := s.moveContact(ctx, tx, tenant, c, np, c.Identifiers, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
		}
		if err := s.refreshProfile(ctx, tx, tenant, np, now); err != nil {
			return nil, err
		}
	}
	return events, s.refreshProfile(ctx, tx, tenant, profileID, now)
}

// Profiles implements store.ProfileStore.
func (s *Store) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	return byIDs(ctx, s, "profiles", profileCols, tenant, ids, scanProfile)
}

// ProfileByIdentifier implements store.ProfileStore.
func (s *Store) ProfileByIdentifier(ctx context.Context, tenant string, id related.Identifier) (*related.Profile, error) {
	p, err := scanProfile(s.queryRow(ctx, s.r, `SELECT `+prefixed("p.", profileCols)+` FROM identifiers i
		JOIN profiles p ON p.tenant = i.tenant AND p.id = i.profile_id
		WHERE i.tenant = ? AND i.key = ? AND i.value = ?`, tenant, id.Key, id.Value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: profile by identifier: %w", err)
	}
	return p, nil
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
	args := []any{tenant}
	for _, id := range profileIDs {
		args = append(args, id)
	}
	rows, err := s.query(ctx, s.r, `SELECT `+contactCols+` FROM contacts WHERE tenant = ? AND profile_id IN (`+placeholders(len(profileIDs))+`) ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: profile contacts: %w", err)
	}
	return collect(rows, scanContact, "contacts")
}

const linkCols = `id, tenant, profile_id, contact_id, reason, key, value, rule_id, source, interaction_id, by, linked_at`

// ProfileLinks implements store.ProfileStore.
func (s *Store) ProfileLinks(ctx context.Context, tenant, profileID string) ([]*related.ProfileLink, error) {
	rows, err := s.query(ctx, s.r, `SELECT `+linkCols+` FROM profile_links WHERE tenant = ? AND profile_id = ? ORDER BY linked_at, id`, tenant, profileID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: profile links: %w", err)
	}
	return collect(rows, func(r scanner) (*related.ProfileLink, error) {
		var l related.ProfileLink
		var at int64
		err := r.Scan(&l.ID, &l.Tenant, &l.ProfileID, &l.ContactID, &l.Reason, &l.Key, &l.Value, &l.RuleID, &l.Source, &l.InteractionID, &l.By, &at)
		l.LinkedAt = fromMS(at)
		return &l, err
	}, "links")
}

// ProfileConflicts implements store.ProfileStore.
func (s *Store) ProfileConflicts(ctx context.Context, tenant string, resolved bool, limit int) ([]*related.ProfileConflict, error) {
	cond := " AND resolved_at = 0"
	if resolved {
		cond = ""
	}
	rows, err := s.query(ctx, s.r, `SELECT id, tenant, key, value, reason, profile_a, profile_b, contact_id, created_at, resolved_at
		FROM profile_conflicts WHERE tenant = ?`+cond+` ORDER BY created_at DESC, id DESC LIMIT ?`, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: conflicts: %w", err)
	}
	return collect(rows, func(r scanner) (*related.ProfileConflict, error) {
		var c related.ProfileConflict
		var a, b string
		var created, res int64
		err := r.Scan(&c.ID, &c.Tenant, &c.Key, &c.Value, &c.Reason, &a, &b, &c.ContactID, &created, &res)
		for _, p := range []string{a, b} {
			if p != "" {
				c.ProfileIDs = append(c.ProfileIDs, p)
			}
		}
		c.CreatedAt, c.ResolvedAt = fromMS(created), fromMS(res)
		return &c, err
	}, "conflicts")
}

// rootProfile follows a profile's merge chain to the profile that holds
// its contacts now.
func (s *Store) rootProfile(ctx context.Context, q querier, tenant, id string) (*related.Profile, error) {
	for range 64 {
		p, err := scanProfile(s.queryRow(ctx, q, `SELECT `+profileCols+` FROM profiles WHERE tenant = ? AND id = ?`, tenant, id))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, related.NotFound("no such profile", "profileId")
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: read profile: %w", err)
		}
		if p.MergedInto == "" {
			return p, nil
		}
		id = p.MergedInto
	}
	return nil, fmt.Errorf("sqlite: profile %s: merge chain too long", id)
}

// LinkContact implements store.ProfileStore.
func (s *Store) LinkContact(ctx context.Context, tenant, profileID, contactID, by string) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		target, err := s.rootProfile(ctx, tx, tenant, profileID)
		if err != nil {
			return nil, err
		}
		c, err := s.contactByID(ctx, tx, tenant, contactID)
		if err != nil {
			return nil, err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM do_not_link WHERE tenant = ? AND contact_id = ? AND profile_id = ?`, tenant, c.ID, target.ID); err != nil {
			return nil, fmt.Errorf("sqlite: lift do-not-link: %w", err)
		}
		var events []store.Event
		if c.ProfileID != target.ID {
			// The contact leaves its profile with the identifiers only it
			// brought, and they come along into the target.
			taken, ev, err := s.detach(ctx, tx, tenant, c, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			for _, id := range taken {
				if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO identifiers (tenant, key, value, profile_id, created_at) VALUES (?, ?, ?, ?, ?)`,
					tenant, id.Key, id.Value, target.ID, ms(now)); err != nil {
					return nil, fmt.Errorf("sqlite: move identifier: %w", err)
				}
			}
			if _, err := s.exec(ctx, tx, `INSERT INTO profile_links (tenant, id, profile_id, contact_id, reason, by, linked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				tenant, related.NewID(), target.ID, c.ID, related.LinkManual, by, ms(now)); err != nil {
				return nil, fmt.Errorf("sqlite: record link: %w", err)
			}
			ev, err = s.moveContact(ctx, tx, tenant, c, target.ID, taken, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			if err := s.refreshProfile(ctx, tx, tenant, target.ID, now); err != nil {
				return nil, err
			}
		}
		out, err = s.rootProfile(ctx, tx, tenant, target.ID)
		return events, err
	})
	return out, err
}

// detach takes c out of its profile: its links there are removed, the
// identifiers only it held are released and returned, and the rest of the
// profile is split along what still connects it.
func (s *Store) detach(ctx context.Context, tx *sql.Tx, tenant string, c *related.Contact, now time.Time) ([]related.Identifier, []store.Event, error) {
	if c.ProfileID == "" {
		return nil, nil, nil
	}
	from := c.ProfileID
	rows, err := s.query(ctx, tx, `SELECT identifiers FROM contacts WHERE tenant = ? AND profile_id = ? AND id <> ?`, tenant, from, c.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: read members: %w", err)
	}
	others, err := collect(rows, func(r scanner) ([]related.Identifier, error) {
		var raw string
		if err := r.Scan(&raw); err != nil {
			return nil, err
		}
		return decodeIdentifiers(raw)
	}, "contacts")
	if err != nil {
		return nil, nil, err
	}
	shared := map[related.Identifier]bool{}
	for _, ids := range others {
		for _, id := range ids {
			shared[id] = true
		}
	}
	var taken []related.Identifier
	for _, id := range c.Identifiers {
		if !shared[id] {
			taken = append(taken, id)
			if _, err := s.exec(ctx, tx, `DELETE FROM identifiers WHERE tenant = ? AND key = ? AND value = ? AND profile_id = ?`, tenant, id.Key, id.Value, from); err != nil {
				return nil, nil, fmt.Errorf("sqlite: release identifier: %w", err)
			}
		}
	}
	if _, err := s.exec(ctx, tx, `DELETE FROM profile_links WHERE tenant = ? AND contact_id = ? AND profile_id = ?`, tenant, c.ID, from); err != nil {
		return nil, nil, fmt.Errorf("sqlite: remove links: %w", err)
	}
	events, err := s.moveContact(ctx, tx, tenant, c, "", nil, now)
	if err != nil {
		return nil, nil, err
	}
	ev, err := s.resplit(ctx, tx, tenant, from, now)
	return taken, append(events, ev...), err
}

// UnlinkContact implements store.ProfileStore.
func (s *Store) UnlinkContact(ctx context.Context, tenant, contactID, by string) (*related.Contact, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Contact
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		c, err := s.contactByID(ctx, tx, tenant, contactID)
		if err != nil {
			return nil, err
		}
		if c.ProfileID == "" {
			return nil, &related.Error{Code: related.CodeConflict, Field: []string{"contactId"}, Message: "the contact is in no profile"}
		}
		from := c.ProfileID
		taken, events, err := s.detach(ctx, tx, tenant, c, now)
		if err != nil {
			return nil, err
		}
		if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO do_not_link (tenant, contact_id, profile_id, by, created_at) VALUES (?, ?, ?, ?, ?)`,
			tenant, c.ID, from, by, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: record do-not-link: %w", err)
		}
		if len(taken) > 0 {
			// It leaves with its own identifiers, in a profile of its own.
			np := related.NewID()
			if _, err := s.exec(ctx, tx, `INSERT INTO profiles (tenant, id, created_at, updated_at) VALUES (?, ?, ?, ?)`, tenant, np, ms(now), ms(now)); err != nil {
				return nil, fmt.Errorf("sqlite: create profile: %w", err)
			}
			for _, id := range taken {
				if _, err := s.exec(ctx, tx, `INSERT INTO identifiers (tenant, key, value, profile_id, created_at) VALUES (?, ?, ?, ?, ?)`,
					tenant, id.Key, id.Value, np, ms(now)); err != nil {
					return nil, fmt.Errorf("sqlite: claim identifier: %w", err)
				}
				if _, err := s.exec(ctx, tx, `INSERT INTO profile_links (tenant, id, profile_id, contact_id, reason, key, value, source, by, linked_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, tenant, related.NewID(), np, c.ID, related.LinkRule, id.Key, id.Value, "", by, ms(now)); err != nil {
					return nil, fmt.Errorf("sqlite: record link: %w", err)
				}
			}
			ev, err := s.moveContact(ctx, tx, tenant, c, np, taken, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			if err := s.refreshProfile(ctx, tx, tenant, np, now); err != nil {
				return nil, err
			}
		}
		out = c
		return events, nil
	})
	return out, err
}

// MergeProfiles implements store.ProfileStore.
func (s *Store) MergeProfiles(ctx context.Context, tenant, intoID, fromID, by string) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		into, err := s.rootProfile(ctx, tx, tenant, intoID)
		if err != nil {
			return nil, at(err, "intoId")
		}
		from, err := s.rootProfile(ctx, tx, tenant, fromID)
		if err != nil {
			return nil, at(err, "fromId")
		}
		if into.ID == from.ID {
			out = into
			return nil, nil
		}
		// An explicit merge overrides the guards between the two profiles.
		for _, pair := range [][2]string{{into.ID, from.ID}, {from.ID, into.ID}} {
			if _, err := s.exec(ctx, tx, `DELETE FROM do_not_link WHERE tenant = ? AND profile_id = ?
				AND contact_id IN (SELECT id FROM contacts WHERE tenant = ? AND profile_id = ?)`,
				tenant, pair[0], tenant, pair[1]); err != nil {
				return nil, fmt.Errorf("sqlite: lift do-not-link: %w", err)
			}
		}
		if _, err := s.exec(ctx, tx, `UPDATE profile_conflicts SET resolved_at = ? WHERE tenant = ? AND resolved_at = 0 AND
			(profile_a = ? AND profile_b = ? OR profile_a = ? AND profile_b = ?)`, ms(now), tenant, into.ID, from.ID, from.ID, into.ID); err != nil {
			return nil, fmt.Errorf("sqlite: resolve conflicts: %w", err)
		}
		// The older profile survives, as in every merge, so merge pointers
		// never cycle on any adapter; into's name, if it had one, wins.
		winner, loser := into, from
		if loser.CreatedAt.Before(winner.CreatedAt) || loser.CreatedAt.Equal(winner.CreatedAt) && loser.ID < winner.ID {
			winner, loser = loser, winner
		}
		events, err := s.merge(ctx, tx, tenant, winner.ID, loser.ID, by, now)
		if err != nil {
			return nil, err
		}
		if into.CustomName != "" && winner.ID != into.ID {
			if _, err := s.exec(ctx, tx, `UPDATE profiles SET custom_name = ? WHERE tenant = ? AND id = ?`, into.CustomName, tenant, winner.ID); err != nil {
				return nil, fmt.Errorf("sqlite: keep the profile name: %w", err)
			}
		}
		if err := s.refreshProfile(ctx, tx, tenant, winner.ID, now); err != nil {
			return nil, err
		}
		out, err = s.rootProfile(ctx, tx, tenant, winner.ID)
		return events, err
	})
	return out, err
}

// at renames the field of a NOT_FOUND error.
func at(err error, field string) error {
	if e, ok := related.AsError(err); ok {
		c := *e
		c.Field = []string{field}
		return &c
	}
	return err
}

// RenameProfile implements store.ProfileStore.
func (s *Store) RenameProfile(ctx context.Context, tenant, id, name string) (*related.Profile, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	var out *related.Profile
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		p, err := s.rootProfile(ctx, tx, tenant, id)
		if err != nil {
			return nil, at(err, "id")
		}
		if _, err := s.exec(ctx, tx, `UPDATE profiles SET custom_name = ?, updated_at = ? WHERE tenant = ? AND id = ?`, name, ms(now), tenant, p.ID); err != nil {
			return nil, fmt.Errorf("sqlite: rename profile: %w", err)
		}
		out, err = s.rootProfile(ctx, tx, tenant, p.ID)
		return nil, err
	})
	return out, err
}
