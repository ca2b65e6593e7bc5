package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Canonical addresses: a contact is its channel's canonical address
// (related.Canonicalize, under the tenant's default region), and its id is
// a function of that address (related.ContactID). Contacts stored before
// an address had its canonical form (an upgrade, or a tenant that set its
// region) are merged into the contact of their canonical address by a
// resumable job: CanonicalizeContacts.

// settingsCache keeps each tenant's settings in memory: every message
// reads the region, and settings change only through this process.
type settingsCache struct {
	mu sync.Mutex
	m  map[string]related.TenantSettings
}

func (c *settingsCache) get(tenant string) (related.TenantSettings, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[tenant]
	return v, ok
}

func (c *settingsCache) put(s related.TenantSettings) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]related.TenantSettings{}
	}
	c.m[s.Tenant] = s
}

func (c *settingsCache) drop(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, tenant)
}

// settings returns a tenant's settings, from the cache when it can.
func (s *Store) settings(ctx context.Context, q querier, tenant string) (related.TenantSettings, error) {
	if v, ok := s.settingsCache.get(tenant); ok {
		return v, nil
	}
	v := related.TenantSettings{Tenant: tenant}
	var at int64
	err := s.queryRow(ctx, q, `SELECT default_region, updated_at FROM tenant_settings WHERE tenant = ?`, tenant).Scan(&v.DefaultRegion, &at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("sqlite: read tenant settings: %w", err)
	}
	v.UpdatedAt = fromMS(at)
	s.settingsCache.put(v)
	return v, nil
}

// TenantSettings implements store.Store.
func (s *Store) TenantSettings(ctx context.Context, tenant string) (related.TenantSettings, error) {
	return s.settings(ctx, s.r, tenant)
}

// SetTenantSettings implements store.Store.
func (s *Store) SetTenantSettings(ctx context.Context, tenant string, v related.TenantSettings) (related.TenantSettings, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	v.Tenant, v.UpdatedAt = tenant, now
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		cur, err := s.settings(ctx, tx, tenant)
		if err != nil {
			return nil, err
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO tenant_settings (tenant, default_region, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (tenant) DO UPDATE SET default_region = excluded.default_region, updated_at = excluded.updated_at`,
			tenant, v.DefaultRegion, ms(now)); err != nil {
			return nil, fmt.Errorf("sqlite: write tenant settings: %w", err)
		}
		if cur.DefaultRegion == v.DefaultRegion {
			return nil, nil
		}
		// Numbers written without a country code mean something else now:
		// canonicalize the contacts, then relink under the rules (a PHONE
		// rule without a region of its own uses the tenant's).
		if err := s.startCanonicalization(ctx, tx, tenant, now); err != nil {
			return nil, err
		}
		return nil, s.startEvaluation(ctx, tx, tenant, store.EvaluationScope{All: true}, 0, now)
	})
	s.settingsCache.drop(tenant)
	s.ruleCache.drop(tenant)
	if err != nil {
		return related.TenantSettings{}, err
	}
	return v, nil
}

// startCanonicalization (re)starts a tenant's canonicalization from its
// first contact.
func (s *Store) startCanonicalization(ctx context.Context, tx *sql.Tx, tenant string, now time.Time) error {
	var total int
	if err := s.queryRow(ctx, tx, `SELECT count(*) FROM contacts WHERE tenant = ?`, tenant).Scan(&total); err != nil {
		return fmt.Errorf("sqlite: count contacts: %w", err)
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO canonicalizations (tenant, state, processed, total, merged, after_id, started_at, updated_at)
		VALUES (?, 'RUNNING', 0, ?, 0, '', ?, ?)
		ON CONFLICT (tenant) DO UPDATE SET state = 'RUNNING', processed = 0, total = excluded.total, merged = 0, after_id = '',
			started_at = excluded.started_at, updated_at = excluded.updated_at`, tenant, total, ms(now), ms(now)); err != nil {
		return fmt.Errorf("sqlite: start canonicalization: %w", err)
	}
	return nil
}

// Canonicalization implements store.Store.
func (s *Store) Canonicalization(ctx context.Context, tenant string) (*related.Canonicalization, error) {
	var (
		c                related.Canonicalization
		started, updated int64
	)
	err := s.queryRow(ctx, s.r, `SELECT tenant, state, processed, total, merged, started_at, updated_at FROM canonicalizations WHERE tenant = ?`, tenant).
		Scan(&c.Tenant, &c.State, &c.Processed, &c.Total, &c.Merged, &started, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read canonicalization: %w", err)
	}
	c.StartedAt, c.UpdatedAt = fromMS(started), fromMS(updated)
	return &c, nil
}

// PendingCanonicalizations implements store.Store.
func (s *Store) PendingCanonicalizations(ctx context.Context) ([]string, error) {
	return s.idList(ctx, s.r, `SELECT tenant FROM canonicalizations WHERE state = 'RUNNING'`)
}

// CanonicalizeContacts implements store.Store: one transaction per batch.
func (s *Store) CanonicalizeContacts(ctx context.Context, tenant string, batch int) (bool, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	done := false
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		var (
			state, after      string
			processed, merged int
		)
		err := s.queryRow(ctx, tx, `SELECT state, after_id, processed, merged FROM canonicalizations WHERE tenant = ?`, tenant).
			Scan(&state, &after, &processed, &merged)
		if errors.Is(err, sql.ErrNoRows) || err == nil && state != "RUNNING" {
			done = true
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: read canonicalization: %w", err)
		}
		settings, err := s.settings(ctx, tx, tenant)
		if err != nil {
			return nil, err
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
			after = c.ID
			ev, m, err := s.canonicalize(ctx, tx, tenant, c.ID, settings.DefaultRegion, now)
			if err != nil {
				return nil, err
			}
			if m {
				merged++
			}
			events = append(events, ev...)
		}
		processed += len(contacts)
		// The total is what is done and what is left: contacts written
		// during the run (the seed's, say) are counted as they come.
		var left int
		if err := s.queryRow(ctx, tx, `SELECT count(*) FROM contacts WHERE tenant = ? AND id > ?`, tenant, after).Scan(&left); err != nil {
			return nil, fmt.Errorf("sqlite: count contacts: %w", err)
		}
		state = "RUNNING"
		if len(contacts) < batch {
			state, done = "DONE", true
		}
		if _, err := s.exec(ctx, tx, `UPDATE canonicalizations SET state = ?, processed = ?, total = ?, merged = ?, after_id = ?, updated_at = ? WHERE tenant = ?`,
			state, processed, processed+left, merged, after, ms(now), tenant); err != nil {
			return nil, fmt.Errorf("sqlite: record canonicalization: %w", err)
		}
		return events, nil
	})
	return done, err
}

// canonicalize brings one contact to its canonical address: in place when
// its id is already its canonical address's, else merged into the contact
// of that address (created if needed). It reports whether it merged.
func (s *Store) canonicalize(ctx context.Context, tx *sql.Tx, tenant, id, region string, now time.Time) ([]store.Event, bool, error) {
	src, err := s.contactByID(ctx, tx, tenant, id)
	if related.IsNotFound(err) {
		return nil, false, nil // merged away by an earlier contact of the batch
	}
	if err != nil {
		return nil, false, err
	}
	canon, err := related.Canonicalize(src.Channel, src.Address, region)
	if err != nil {
		// Stored before the limits of today: keep it as it is.
		s.log.Warn("contact address cannot be canonicalized; kept", "tenant", tenant, "contact", id, "err", err)
		return nil, false, nil
	}
	target := related.ContactID(tenant, src.Channel, canon.Address)
	if target == src.ID {
		if canon.Address == src.Address && canon.Status == src.AddressStatus {
			return nil, false, nil
		}
		if _, err := s.exec(ctx, tx, `UPDATE contacts SET address = ?, address_status = ?, claims_sig = '', updated_at = ? WHERE tenant = ? AND id = ?`,
			canon.Address, canon.Status, ms(now), tenant, src.ID); err != nil {
			return nil, false, fmt.Errorf("sqlite: canonicalize contact: %w", err)
		}
		src.Address, src.AddressStatus, src.ClaimsSig = canon.Address, canon.Status, ""
		ev, err := s.linkContact(ctx, tx, tenant, src, related.System, now)
		return ev, false, err
	}
	return s.mergeContact(ctx, tx, tenant, src, target, canon, now)
}

// mergeContact merges contact src into the contact target, the contact of
// src's canonical address, creating it if needed: target keeps the older
// contact's creation, name and first interaction, and both attribute sets
// (the newer's values win); src's interactions, decisions and names move
// to it, its values are released, and its id becomes an alias of target.
// Then target is relinked. It reports whether target existed: whether
// two contacts became one.
func (s *Store) mergeContact(ctx context.Context, tx *sql.Tx, tenant string, src *related.Contact, target string, canon related.CanonicalAddress, now time.Time) ([]store.Event, bool, error) {
	dst, err := s.contactByID(ctx, tx, tenant, target)
	if err != nil && !related.IsNotFound(err) {
		return nil, false, err
	}
	events, err := s.mergeInto(ctx, tx, tenant, src, dst, target, canon, now)
	return events, dst != nil, err
}

func (s *Store) mergeInto(ctx context.Context, tx *sql.Tx, tenant string, src, dst *related.Contact, target string, canon related.CanonicalAddress, now time.Time) ([]store.Event, error) {
	oldProfile := src.ProfileID
	// src goes first: it may hold the canonical address already (an id
	// derived by an older version).
	released, _, err := s.releaseValues(ctx, tx, tenant, src.ID, now)
	if err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, tx, `DELETE FROM contacts WHERE tenant = ? AND id = ?`, tenant, src.ID); err != nil {
		return nil, fmt.Errorf("sqlite: merge contact: %w", err)
	}
	if dst == nil {
		name := src.Name
		if name == "" {
			name = canon.Name
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO contacts (`+contactCols+`) VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, '')`,
			target, tenant, src.Channel, canon.Address, name, encodeAttributes(src.Attributes), ms(src.CreatedAt), ms(now),
			canon.Status, src.FirstInteractionID); err != nil {
			return nil, fmt.Errorf("sqlite: create canonical contact: %w", err)
		}
	} else {
		older, newer := dst, src
		if src.CreatedAt.Before(dst.CreatedAt) || src.CreatedAt.Equal(dst.CreatedAt) && src.ID < dst.ID {
			older, newer = src, dst
		}
		name := older.Name
		if name == "" {
			name = newer.Name
		}
		attrs := related.MergeAttributes(older.Attributes, newer.Attributes)
		if _, err := s.exec(ctx, tx, `UPDATE contacts SET name = ?, attributes = ?, created_at = ?, first_interaction = ?, claims_sig = '', updated_at = ?
			WHERE tenant = ? AND id = ?`, name, encodeAttributes(attrs), ms(older.CreatedAt), older.FirstInteractionID, ms(now), tenant, target); err != nil {
			return nil, fmt.Errorf("sqlite: merge contact: %w", err)
		}
	}
	rows, err := s.query(ctx, tx, `UPDATE interactions SET contact_id = ?, updated_at = ? WHERE tenant = ? AND contact_id = ? RETURNING `+interactionCols,
		target, ms(now), tenant, src.ID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: move interactions: %w", err)
	}
	moved, err := collect(rows, scanInteraction, "interactions")
	if err != nil {
		return nil, err
	}
	var events []store.Event
	for _, i := range moved {
		events = append(events, interactionEvent(store.InteractionUpdated, i, now))
	}
	// Decisions and names follow the contact; a decision about the two
	// contacts themselves means nothing any more.
	ds, err := s.decisions(ctx, tx, tenant, []string{src.ID})
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if _, err := s.exec(ctx, tx, `DELETE FROM decisions WHERE tenant = ? AND id = ?`, tenant, d.ID()); err != nil {
			return nil, fmt.Errorf("sqlite: move decision: %w", err)
		}
		a, b := d.A, d.B
		if a == src.ID {
			a = target
		}
		if b == src.ID {
			b = target
		}
		if a == b {
			continue
		}
		nd := identity.NewDecision(d.Kind, a, b)
		nd.Into, nd.Reason, nd.By, nd.At = d.Into, d.Reason, d.By, d.At
		if nd.Into == src.ID {
			nd.Into = target
		}
		if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO decisions (tenant, id, `+decisionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tenant, nd.ID(), nd.Kind, nd.A, nd.B, nd.Into, nd.Reason, nd.By.Name, nd.By.Role, ms(nd.At)); err != nil {
			return nil, fmt.Errorf("sqlite: move decision: %w", err)
		}
	}
	for _, stmt := range []string{
		`UPDATE OR IGNORE renames SET anchor = ? WHERE tenant = ? AND anchor = ?`,
		`UPDATE aliases SET contact_id = ? WHERE tenant = ? AND contact_id = ?`,
	} {
		if _, err := s.exec(ctx, tx, stmt, target, tenant, src.ID); err != nil {
			return nil, fmt.Errorf("sqlite: move names: %w", err)
		}
	}
	for _, stmt := range []string{
		`DELETE FROM renames WHERE tenant = ? AND anchor = ?`,
		`DELETE FROM profile_pairs WHERE tenant = ? AND contact_a = ?`,
		`DELETE FROM profile_pairs WHERE tenant = ? AND contact_b = ?`,
	} {
		if _, err := s.exec(ctx, tx, stmt, tenant, src.ID); err != nil {
			return nil, fmt.Errorf("sqlite: merge contact: %w", err)
		}
	}
	if _, err := s.exec(ctx, tx, `INSERT OR REPLACE INTO aliases (tenant, kind, alias, contact_id) VALUES (?, 'contact', ?, ?)`, tenant, src.ID, target); err != nil {
		return nil, fmt.Errorf("sqlite: alias contact: %w", err)
	}
	// Relink: the merged contact, and what src's profile held.
	c, err := s.contactByID(ctx, tx, tenant, target)
	if err != nil {
		return nil, err
	}
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return nil, err
	}
	seeds, history, err := s.syncClaims(ctx, tx, tenant, c, rules, now)
	if err != nil {
		return nil, err
	}
	seeds = append(append(seeds, c.ID), released...)
	if oldProfile != "" {
		ms_, err := s.members(ctx, tx, tenant, oldProfile)
		if err != nil {
			return nil, err
		}
		seeds = append(seeds, ms_...)
	}
	ev, err := s.recompute(ctx, tx, tenant, rules, slices.Compact(slices.Sorted(slices.Values(seeds))), related.System, now)
	if err != nil {
		return nil, err
	}
	return append(events, ev...), s.recordEvents(ctx, tx, tenant, history, related.System, now)
}

// releaseValues deletes a contact's stored values, keeping the counts, and
// returns the holders of the values whose quarantine that flipped: their
// clusters must be recomputed.
func (s *Store) releaseValues(ctx context.Context, tx *sql.Tx, tenant, contactID string, now time.Time) ([]string, []identity.Identifier, error) {
	rows, err := s.query(ctx, tx, `DELETE FROM contact_values WHERE tenant = ? AND contact_id = ? RETURNING key, value`, tenant, contactID)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: release values: %w", err)
	}
	ids, err := collect(rows, func(r scanner) (identity.Identifier, error) {
		var id identity.Identifier
		return id, r.Scan(&id.Key, &id.Value)
	}, "values")
	if err != nil || len(ids) == 0 {
		return nil, nil, err
	}
	rules, err := s.rules(ctx, tx, tenant)
	if err != nil {
		return nil, nil, err
	}
	flipped, err := s.countValues(ctx, tx, tenant, rules, nil, ids, now)
	if err != nil {
		return nil, nil, err
	}

	var seeds []string
	for _, f := range flipped {
		hs, err := s.holders(ctx, tx, tenant, []related.Identifier{f.id})
		if err != nil {
			return nil, nil, err
		}
		for _, h := range hs {
			seeds = append(seeds, h.Contact)
		}
	}
	return seeds, ids, nil
}
