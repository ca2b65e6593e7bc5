package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
)

// dataMigrations run in Go after the SQL migration of the same version,
// in its transaction.
var dataMigrations = map[int]func(ctx context.Context, s *Store, tx *sql.Tx) error{
	5: migrateIdentity,
}

// migrateIdentity carries the linking of the version before profiles were
// a function of the facts into facts: what admins did by hand becomes
// decisions (an unlink keeps the contact apart from its old profile, a
// manual link or merge keeps the profile's contacts together), custom
// names become renames, and old profile ids stay valid as aliases of the
// contact that anchors them. Then every tenant is re-evaluated: the
// background evaluation recomputes every profile from the facts.
func migrateIdentity(ctx context.Context, s *Store, tx *sql.Tx) error {
	now := s.now().UTC().Truncate(time.Millisecond)
	by := related.Actor{Name: "migration"}
	type profile struct{ tenant, id, custom, mergedInto string }
	rows, err := tx.QueryContext(ctx, `SELECT tenant, id, custom_name, merged_into FROM profiles`)
	if err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	var profiles []profile
	for rows.Next() {
		var p profile
		if err := rows.Scan(&p.tenant, &p.id, &p.custom, &p.mergedInto); err != nil {
			rows.Close()
			return fmt.Errorf("scan profiles: %w", err)
		}
		profiles = append(profiles, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read profiles: %w", err)
	}
	byID := map[[2]string]profile{}
	for _, p := range profiles {
		byID[[2]string{p.tenant, p.id}] = p
	}
	root := func(tenant, id string) string {
		for range 64 {
			p, ok := byID[[2]string{tenant, id}]
			if !ok || p.mergedInto == "" {
				return id
			}
			id = p.mergedInto
		}
		return id
	}
	members := map[[2]string][]string{}
	rows, err = tx.QueryContext(ctx, `SELECT tenant, id, profile_id FROM contacts WHERE profile_id <> '' ORDER BY tenant, id`)
	if err != nil {
		return fmt.Errorf("read contacts: %w", err)
	}
	for rows.Next() {
		var tenant, id, p string
		if err := rows.Scan(&tenant, &id, &p); err != nil {
			rows.Close()
			return fmt.Errorf("scan contacts: %w", err)
		}
		k := [2]string{tenant, root(tenant, p)}
		members[k] = append(members[k], id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read contacts: %w", err)
	}
	anchor := func(tenant, id string) string {
		ms := members[[2]string{tenant, root(tenant, id)}]
		if len(ms) == 0 {
			return ""
		}
		return ms[0]
	}
	put := func(tenant string, d identity.Decision) error {
		if d.A == d.B || d.A == "" || d.B == "" {
			return nil
		}
		d.By, d.At = by, now
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO decisions (tenant, id, `+decisionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			tenant, d.ID(), d.Kind, d.A, d.B, d.Into, d.Reason, d.By.Name, d.By.Role, ms(d.At))
		return err
	}
	for _, p := range profiles {
		a := anchor(p.tenant, p.id)
		if a == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO aliases (tenant, kind, alias, contact_id) VALUES (?, 'profile', ?, ?)`, p.tenant, p.id, a); err != nil {
			return fmt.Errorf("alias profile: %w", err)
		}
		if p.custom != "" && p.mergedInto == "" {
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO renames (tenant, anchor, name, by_name, by_role, at) VALUES (?, ?, ?, ?, '', ?)`,
				p.tenant, a, p.custom, by.Name, ms(now)); err != nil {
				return fmt.Errorf("carry name: %w", err)
			}
		}
	}
	// Unlinks: keep the contact apart from its old profile.
	pairs, err := queryPairs(ctx, tx, `SELECT tenant, contact_id, profile_id FROM do_not_link`)
	if err != nil {
		return err
	}
	for _, x := range pairs {
		others := slices.DeleteFunc(slices.Clone(members[[2]string{x[0], root(x[0], x[2])}]), func(c string) bool { return c == x[1] })
		if len(others) > 0 {
			d := identity.NewDecision(identity.KeepApart, x[1], others[0])
			d.Reason = "unlink"
			if err := put(x[0], d); err != nil {
				return fmt.Errorf("carry unlink: %w", err)
			}
		}
	}
	// Manual links: keep the contact with its profile.
	if pairs, err = queryPairs(ctx, tx, `SELECT tenant, contact_id, profile_id FROM profile_links WHERE reason = 'MANUAL'`); err != nil {
		return err
	}
	for _, x := range pairs {
		d := identity.NewDecision(identity.KeepTogether, x[1], anchor(x[0], x[2]))
		d.Reason = "link"
		if err := put(x[0], d); err != nil {
			return fmt.Errorf("carry link: %w", err)
		}
	}
	// Merges an admin made: the whole profile they made stays together.
	if pairs, err = queryPairs(ctx, tx, `SELECT tenant, loser, winner FROM merges WHERE by NOT IN ('', 'rule', 'rules')`); err != nil {
		return err
	}
	for _, x := range pairs {
		ms := members[[2]string{x[0], root(x[0], x[2])}]
		for _, m := range ms[min(1, len(ms)):] {
			d := identity.NewDecision(identity.KeepTogether, ms[0], m)
			d.Into, d.Reason = ms[0], "merge"
			if err := put(x[0], d); err != nil {
				return fmt.Errorf("carry merge: %w", err)
			}
		}
	}
	// Addresses written before they were canonical are canonicalized
	// (merging the contacts that turn out to be one), then every tenant's
	// profiles are recomputed from the facts.
	if _, err := tx.ExecContext(ctx, `INSERT INTO canonicalizations (tenant, state, processed, total, after_id, started_at, updated_at)
			SELECT tenant, 'RUNNING', 0, count(*), '', ?, ? FROM contacts WHERE true GROUP BY tenant`, ms(now), ms(now)); err != nil {
		return fmt.Errorf("start canonicalization: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO rule_evaluations (tenant, state, processed, total, after_id, started_at, updated_at)
			SELECT tenant, 'RUNNING', 0, count(*), '', ?, ? FROM contacts WHERE true GROUP BY tenant
			ON CONFLICT (tenant) DO UPDATE SET state = 'RUNNING', processed = 0, total = excluded.total, after_id = '',
				started_at = excluded.started_at, updated_at = excluded.updated_at`, ms(now), ms(now)); err != nil {
		return fmt.Errorf("start re-evaluation: %w", err)
	}
	for _, stmt := range []string{
		`DROP TABLE identifiers`, `DROP TABLE profile_links`, `DROP TABLE do_not_link`,
		`DROP TABLE profile_conflicts`, `DROP TABLE merges`, `ALTER TABLE contacts DROP COLUMN identifiers`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("drop the old linking tables: %w", err)
		}
	}
	return nil
}

func queryPairs(ctx context.Context, tx *sql.Tx, q string) ([][3]string, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("migrate identity: %w", err)
	}
	defer rows.Close()
	var out [][3]string
	for rows.Next() {
		var v [3]string
		if err := rows.Scan(&v[0], &v[1], &v[2]); err != nil {
			return nil, fmt.Errorf("migrate identity: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
