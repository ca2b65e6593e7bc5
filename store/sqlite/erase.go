package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// Erasure (the right to be forgotten) on SQLite is one transaction: a
// crash before it commits leaves the person whole, never half-erased, and
// the caller, who got no answer, asks again. The writer deletes with
// secure_delete on, so the freed pages are overwritten; after the commit
// the database is rebuilt (VACUUM) and the WAL checkpointed and
// truncated, so no copy of an erased row stays in free space or in the
// log.

// EraseProfile implements store.Store.
func (s *Store) EraseProfile(ctx context.Context, tenant, profileID, reason string, by related.Actor) (*related.Erasure, error) {
	return s.erase(ctx, tenant, related.ErasureProfile, reason, by, func(tx *sql.Tx) ([]string, error) {
		p, err := s.currentProfile(ctx, tx, tenant, profileID, "id")
		if err != nil {
			return nil, err
		}
		return s.members(ctx, tx, tenant, p.ID)
	})
}

// EraseContact implements store.Store.
func (s *Store) EraseContact(ctx context.Context, tenant, contactID, reason string, by related.Actor) (*related.Erasure, error) {
	return s.erase(ctx, tenant, related.ErasureContact, reason, by, func(tx *sql.Tx) ([]string, error) {
		c, err := s.contactByID(ctx, tx, tenant, contactID)
		if err != nil {
			return nil, at(err, "id")
		}
		return []string{c.ID}, nil
	})
}

// at renames the field of a NOT_FOUND error.
func at(err error, field string) error {
	if e, ok := related.AsError(err); ok && e.Code == related.CodeNotFound {
		return related.NotFound(e.Message, field)
	}
	return err
}

// eraseChunk bounds the ids of one statement.
const eraseChunk = 500

// erase deletes the contacts who returns and everything about them.
func (s *Store) erase(ctx context.Context, tenant, subject, reason string, by related.Actor, who func(*sql.Tx) ([]string, error)) (*related.Erasure, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	out := &related.Erasure{ID: related.NewID(), Tenant: tenant, Subject: subject, Reason: reason, By: by, At: now}
	err := s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		contacts, err := who(tx)
		if err != nil {
			return nil, err
		}
		out.Contacts = len(contacts)
		// What the contacts touch: their profiles' other members and the
		// partners of their decisions and pairs are decided again after.
		cur, err := clusterReader{s, tx}.CurrentProfiles(ctx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		var profiles, seeds []string
		for _, c := range contacts {
			profiles = append(profiles, related.ProfileIDFor(c))
			if p := cur[c]; p != "" {
				profiles = append(profiles, p)
			}
		}
		profiles = slices.Compact(slices.Sorted(slices.Values(profiles)))
		for _, p := range distinctValues(cur) {
			ms_, err := s.members(ctx, tx, tenant, p)
			if err != nil {
				return nil, err
			}
			seeds = append(seeds, ms_...)
		}
		ds, err := s.decisions(ctx, tx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			seeds = append(seeds, d.A, d.B)
			if _, err := s.exec(ctx, tx, `DELETE FROM decisions WHERE tenant = ? AND id = ?`, tenant, d.ID()); err != nil {
				return nil, fmt.Errorf("sqlite: erase decisions: %w", err)
			}
		}
		ps, err := s.pairsNaming(ctx, tx, tenant, contacts)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			seeds = append(seeds, p.A, p.B)
		}
		var events []store.Event
		for start := 0; start < len(contacts); start += eraseChunk {
			chunk := contacts[start:min(start+eraseChunk, len(contacts))]
			ev, counts, err := s.eraseChunk(ctx, tx, tenant, chunk, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
			out.Interactions += counts[0]
			out.Messages += counts[1]
			for _, c := range chunk {
				released, values, err := s.releaseValues(ctx, tx, tenant, c, now)
				if err != nil {
					return nil, err
				}
				seeds = append(seeds, released...)
				// A value nobody holds any more was the erased person's:
				// it goes, even if an admin had blocked or allowed it.
				for _, v := range values {
					if _, err := s.exec(ctx, tx, `DELETE FROM value_stats WHERE tenant = ? AND key = ? AND value = ? AND contacts = 0`, tenant, v.Key, v.Value); err != nil {
						return nil, fmt.Errorf("sqlite: erase values: %w", err)
					}
				}
			}
		}
		if err := s.eraseHistory(ctx, tx, tenant, contacts, profiles); err != nil {
			return nil, err
		}
		// The samples of the tenant's last rule evaluation name people as
		// they were: the erased may be among them.
		if _, err := s.exec(ctx, tx, `UPDATE rule_evaluations SET summary = json_set(summary, '$.Samples', json('[]')) WHERE tenant = ?`, tenant); err != nil {
			return nil, fmt.Errorf("sqlite: erase evaluation samples: %w", err)
		}
		for start := 0; start < len(profiles); start += eraseChunk {
			chunk := profiles[start:min(start+eraseChunk, len(profiles))]
			if _, err := s.exec(ctx, tx, `DELETE FROM profiles WHERE tenant = ? AND id IN (`+placeholders(len(chunk))+`)`,
				append([]any{tenant}, anys(chunk)...)...); err != nil {
				return nil, fmt.Errorf("sqlite: erase profiles: %w", err)
			}
		}
		seeds = slices.DeleteFunc(slices.Compact(slices.Sorted(slices.Values(seeds))), func(c string) bool { return slices.Contains(contacts, c) })
		if len(seeds) > 0 {
			rules, err := s.rules(ctx, tx, tenant)
			if err != nil {
				return nil, err
			}
			ev, err := s.recompute(ctx, tx, tenant, rules, seeds, by, now)
			if err != nil {
				return nil, err
			}
			events = append(events, ev...)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO erasures (tenant, id, subject, reason, by_name, by_role, at, contacts, interactions, messages)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, tenant, out.ID, subject, reason, by.Name, by.Role, ms(now),
			out.Contacts, out.Interactions, out.Messages); err != nil {
			return nil, fmt.Errorf("sqlite: record erasure: %w", err)
		}
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("erased", "tenant", tenant, "erasure", out.ID, "subject", subject, "by", by.String(),
		"contacts", out.Contacts, "interactions", out.Interactions, "messages", out.Messages)
	// secure_delete overwrites what a delete frees, but not every copy: a
	// forensic read of a file found an erased number in the free space of
	// an index page, left there when SQLite moved the page's cells. VACUUM
	// rebuilds every page from the live rows (writes wait meanwhile: about
	// 40 ms for a 6 MB file, about a second for the 190 MB of 100k
	// interactions), and the checkpoint then writes the rebuilt pages back
	// and truncates the WAL, where the old page images live on until then.
	s.rebuild(ctx, "erasure "+out.ID)
	return out, nil
}

// rebuild rebuilds the database file (VACUUM) and checkpoints the WAL into
// it, then records when, so that start-up knows whether an erasure
// committed since has had its rebuild (rebuildAfterCrash). A failure is
// logged: the erasure stands, and the next rebuild (the next erasure's, or
// the next start's) covers it.
func (s *Store) rebuild(ctx context.Context, why string) {
	start := s.now().UTC()
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		s.log.Warn("rebuilding the database after an erasure failed: copies of erased rows may stay in free pages until the next rebuild", "after", why, "err", err)
		return
	}
	var busy, frames, copied int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil {
		s.log.Warn("checkpoint after an erasure failed; the next one will do", "err", err)
	} else if busy != 0 {
		s.log.Warn("checkpoint after an erasure could not finish: readers held the log; the next one will do", "frames", frames, "copied", copied)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO maintenance (name, at) VALUES ('rebuilt', ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at`, ms(start)); err != nil {
		s.log.Warn("could not record the rebuild; the next start rebuilds again", "err", err)
	}
	s.log.Info("database rebuilt after an erasure", "after", why, "duration_ms", time.Since(start).Milliseconds(), "busy", busy, "frames", frames, "copied", copied)
}

// rebuildAfterCrash rebuilds the file at start when an erasure committed
// after the last rebuild: the process stopped between the two.
func (s *Store) rebuildAfterCrash(ctx context.Context) error {
	var rebuilt int64
	if err := s.w.QueryRowContext(ctx, `SELECT at FROM maintenance WHERE name = 'rebuilt'`).Scan(&rebuilt); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: read the last rebuild: %w", err)
	}
	var pending bool
	if err := s.w.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE at > ?)`, rebuilt).Scan(&pending); err != nil {
		return fmt.Errorf("sqlite: check for an erasure not yet rebuilt: %w", err)
	}
	if pending {
		s.rebuild(ctx, "a crash")
	}
	return nil
}

// eraseChunk deletes some contacts with their interactions, messages,
// names, pairs and aliases, and returns the live events of the erased
// interactions and the counts of interactions and messages deleted.
func (s *Store) eraseChunk(ctx context.Context, tx *sql.Tx, tenant string, contacts []string, now time.Time) ([]store.Event, [2]int, error) {
	var counts [2]int
	in := `(` + placeholders(len(contacts)) + `)`
	args := append([]any{tenant}, anys(contacts)...)
	rows, err := s.query(ctx, tx, `SELECT id, contact_id, profile_id FROM interactions WHERE tenant = ? AND contact_id IN `+in, args...)
	if err != nil {
		return nil, counts, fmt.Errorf("sqlite: erase: %w", err)
	}
	its, err := collect(rows, func(r scanner) ([3]string, error) { var v [3]string; return v, r.Scan(&v[0], &v[1], &v[2]) }, "interactions")
	if err != nil {
		return nil, counts, err
	}
	var events []store.Event
	for start := 0; start < len(its); start += eraseChunk {
		chunk := its[start:min(start+eraseChunk, len(its))]
		ids := make([]any, len(chunk))
		for i, it := range chunk {
			ids[i] = it[0]
			events = append(events, store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.InteractionErased,
				InteractionID: it[0], ContactID: it[1], ProfileID: it[2], At: now})
		}
		res, err := s.exec(ctx, tx, `DELETE FROM messages WHERE tenant = ? AND interaction_id IN (`+placeholders(len(ids))+`)`, append([]any{tenant}, ids...)...)
		if err != nil {
			return nil, counts, fmt.Errorf("sqlite: erase messages: %w", err)
		}
		n, _ := res.RowsAffected()
		counts[1] += int(n)
	}
	counts[0] = len(its)
	for _, stmt := range []string{
		`DELETE FROM interactions WHERE tenant = ? AND contact_id IN ` + in,
		`DELETE FROM renames WHERE tenant = ? AND anchor IN ` + in,
		`DELETE FROM profile_pairs WHERE tenant = ? AND contact_a IN ` + in,
		`DELETE FROM profile_pairs WHERE tenant = ? AND contact_b IN ` + in,
		`DELETE FROM aliases WHERE tenant = ? AND contact_id IN ` + in,
		`DELETE FROM aliases WHERE tenant = ? AND kind = 'contact' AND alias IN ` + in,
		`DELETE FROM contacts WHERE tenant = ? AND id IN ` + in,
	} {
		if _, err := s.exec(ctx, tx, stmt, args...); err != nil {
			return nil, counts, fmt.Errorf("sqlite: erase: %w", err)
		}
	}
	return events, counts, nil
}

// eraseHistory deletes the history entries naming the erased contacts or
// their profiles.
func (s *Store) eraseHistory(ctx context.Context, tx *sql.Tx, tenant string, contacts, profiles []string) error {
	var events []string
	for start := 0; start < len(profiles); start += eraseChunk {
		chunk := profiles[start:min(start+eraseChunk, len(profiles))]
		ids, err := s.idList(ctx, tx, `SELECT event_id FROM profile_event_refs WHERE tenant = ? AND profile_id IN (`+placeholders(len(chunk))+`)`,
			append([]any{tenant}, anys(chunk)...)...)
		if err != nil {
			return err
		}
		events = append(events, ids...)
	}
	for start := 0; start < len(contacts); start += eraseChunk {
		chunk := contacts[start:min(start+eraseChunk, len(contacts))]
		ids, err := s.idList(ctx, tx, `SELECT id FROM profile_events WHERE tenant = ? AND contact_id IN (`+placeholders(len(chunk))+`)`,
			append([]any{tenant}, anys(chunk)...)...)
		if err != nil {
			return err
		}
		events = append(events, ids...)
	}
	events = slices.Compact(slices.Sorted(slices.Values(events)))
	for start := 0; start < len(events); start += eraseChunk {
		chunk := events[start:min(start+eraseChunk, len(events))]
		args := append([]any{tenant}, anys(chunk)...)
		for _, stmt := range []string{`DELETE FROM profile_events WHERE tenant = ? AND id IN (`, `DELETE FROM profile_event_refs WHERE tenant = ? AND event_id IN (`} {
			if _, err := s.exec(ctx, tx, stmt+placeholders(len(chunk))+`)`, args...); err != nil {
				return fmt.Errorf("sqlite: erase history: %w", err)
			}
		}
	}
	return nil
}

// Erasures implements store.Store.
func (s *Store) Erasures(ctx context.Context, tenant string, p store.Page) (*store.ErasurePage, error) {
	terms, kargs, order, limit := keyset(p, "at", "DESC")
	where := append([]string{"tenant = ?"}, terms...)
	rows, err := s.query(ctx, s.r, `SELECT id, tenant, subject, reason, by_name, by_role, at, contacts, interactions, messages FROM erasures WHERE `+
		strings.Join(where, " AND ")+order+` LIMIT ?`, append(append([]any{tenant}, kargs...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list erasures: %w", err)
	}
	items, err := collect(rows, func(r scanner) (*related.Erasure, error) {
		var (
			e  related.Erasure
			at int64
		)
		err := r.Scan(&e.ID, &e.Tenant, &e.Subject, &e.Reason, &e.By.Name, &e.By.Role, &at, &e.Contacts, &e.Interactions, &e.Messages)
		e.At = fromMS(at)
		return &e, err
	}, "erasures")
	if err != nil {
		return nil, err
	}
	out := &store.ErasurePage{}
	out.Items, out.HasNextPage, out.HasPreviousPage = page(items, p)
	return out, nil
}
