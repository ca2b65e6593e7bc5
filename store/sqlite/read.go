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

// byIDs runs one SELECT of table's cols for ids and scans each row.
func byIDs[T any](ctx context.Context, s *Store, table, cols, tenant string, ids []string, scan func(scanner) (T, error)) ([]T, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenant)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.query(ctx, s.r, `SELECT `+cols+` FROM `+table+` WHERE tenant = ? AND id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load %s: %w", table, err)
	}
	return collect(rows, scan, table)
}

func collect[T any](rows *sql.Rows, scan func(scanner) (T, error), what string) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: scan %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read %s: %w", what, err)
	}
	return out, nil
}

// Interactions implements store.Store.
func (s *Store) Interactions(ctx context.Context, tenant string, ids []string) ([]*related.Interaction, error) {
	return byIDs(ctx, s, "interactions", interactionCols, tenant, ids, scanInteraction)
}

// Messages implements store.Store.
func (s *Store) Messages(ctx context.Context, tenant string, ids []string) ([]*related.Message, error) {
	return byIDs(ctx, s, "messages", messageCols, tenant, ids, scanMessage)
}

// Contacts implements store.Store.
func (s *Store) Contacts(ctx context.Context, tenant string, ids []string) ([]*related.Contact, error) {
	return byIDs(ctx, s, "contacts", contactCols, tenant, ids, scanContact)
}

// ContactAliases implements store.Store.
func (s *Store) ContactAliases(ctx context.Context, tenant string, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, tenant)
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.query(ctx, s.r, `SELECT alias, contact_id FROM aliases WHERE tenant = ? AND kind = 'contact' AND alias IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read contact aliases: %w", err)
	}
	pairs, err := collect(rows, func(r scanner) ([2]string, error) {
		var p [2]string
		return p, r.Scan(&p[0], &p[1])
	}, "contact aliases")
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		out[p[0]] = p[1]
	}
	return out, nil
}

// Queues implements store.Store.
func (s *Store) Queues(ctx context.Context, tenant string, ids []string) ([]*related.Queue, error) {
	return byIDs(ctx, s, "queues", "id, tenant, name", tenant, ids, func(r scanner) (*related.Queue, error) {
		var q related.Queue
		return &q, r.Scan(&q.ID, &q.Tenant, &q.Name)
	})
}

// keyset builds the WHERE terms and ORDER BY of one page of a list sorted
// by (at, id), in direction dir ("DESC" or "ASC") for forward paging. It
// returns the terms, their arguments, the ORDER BY clause and the LIMIT.
// Rows are fetched one past the page to learn whether more exist.
func keyset(p store.Page, at string, dir string) (terms []string, args []any, order string, limit int) {
	// In a DESC list, "after" a cursor means smaller keys.
	afterOp, beforeOp := "<", ">"
	if dir == "ASC" {
		afterOp, beforeOp = ">", "<"
	}
	if p.After != nil {
		terms = append(terms, fmt.Sprintf("(%s, id) %s (?, ?)", at, afterOp))
		args = append(args, ms(p.After.At), p.After.ID)
	}
	if p.Before != nil {
		terms = append(terms, fmt.Sprintf("(%s, id) %s (?, ?)", at, beforeOp))
		args = append(args, ms(p.Before.At), p.Before.ID)
	}
	d := dir
	if p.Backward() {
		d = map[string]string{"ASC": "DESC", "DESC": "ASC"}[dir]
	}
	return terms, args, fmt.Sprintf(" ORDER BY %s %s, id %s", at, d, d), max(p.Limit(), 0) + 1
}

// page trims the extra row keyset fetched and sets the page flags.
func page[T any](items []T, p store.Page) (out []T, hasNext, hasPrev bool) {
	more := len(items) > p.Limit()
	if more {
		items = items[:p.Limit()]
	}
	if p.Backward() {
		slices.Reverse(items)
		return items, p.Before != nil, more
	}
	return items, more, p.After != nil
}

// ListRelated implements store.Store.
func (s *Store) ListRelated(ctx context.Context, tenant string, q store.RelatedQuery, p store.Page) (*store.InteractionPage, error) {
	where, args, err := relatedFilter(tenant, q)
	if err != nil {
		return nil, err
	}
	return s.listInteractions(ctx, where, args, p)
}

// ListInteractions implements store.Store.
func (s *Store) ListInteractions(ctx context.Context, tenant string, f store.InteractionFilter, p store.Page) (*store.InteractionPage, error) {
	where, args := []string{"tenant = ?"}, []any{tenant}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	return s.listInteractions(ctx, where, args, p)
}

// CountInteractions implements store.Store.
func (s *Store) CountInteractions(ctx context.Context, tenant string, f store.InteractionFilter) (int, error) {
	where, args := []string{"tenant = ?"}, []any{tenant}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	var n int
	if err := s.queryRow(ctx, s.r, `SELECT count(*) FROM interactions WHERE `+strings.Join(where, " AND "), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count interactions: %w", err)
	}
	return n, nil
}

// listInteractions runs one keyset page of interactions, newest first.
func (s *Store) listInteractions(ctx context.Context, where []string, args []any, p store.Page) (*store.InteractionPage, error) {
	terms, kargs, order, limit := keyset(p, "last_at", "DESC")
	where = append(where, terms...)
	args = append(append(args, kargs...), limit)
	rows, err := s.query(ctx, s.r, `SELECT `+interactionCols+` FROM interactions WHERE `+strings.Join(where, " AND ")+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list interactions: %w", err)
	}
	items, err := collect(rows, scanInteraction, "interactions")
	if err != nil {
		return nil, err
	}
	out := &store.InteractionPage{}
	out.Items, out.HasNextPage, out.HasPreviousPage = page(items, p)
	return out, nil
}

// CountRelated implements store.Store.
func (s *Store) CountRelated(ctx context.Context, tenant string, q store.RelatedQuery) (int, error) {
	where, args, err := relatedFilter(tenant, q)
	if err != nil {
		return 0, err
	}
	var n int
	if err := s.queryRow(ctx, s.r, `SELECT count(*) FROM interactions WHERE `+strings.Join(where, " AND "), args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count related: %w", err)
	}
	return n, nil
}

// relatedFilter is the WHERE of a Related panel: the scope's key, then the
// excluded interaction, matching the interactions_contact and
// interactions_profile indexes.
func relatedFilter(tenant string, q store.RelatedQuery) ([]string, []any, error) {
	where := []string{"tenant = ?"}
	args := []any{tenant}
	switch {
	case q.ContactID != "" && q.ProfileID == "":
		where, args = append(where, "contact_id = ?"), append(args, q.ContactID)
	case q.ProfileID != "" && q.ContactID == "":
		where, args = append(where, "profile_id = ?"), append(args, q.ProfileID)
	default:
		return nil, nil, errors.New("sqlite: related query needs exactly one of ContactID and ProfileID")
	}
	if q.Exclude != "" {
		where, args = append(where, "id <> ?"), append(args, q.Exclude)
	}
	return where, args, nil
}

// ListMessages implements store.Store.
func (s *Store) ListMessages(ctx context.Context, tenant, interactionID string, p store.Page, bodies bool) (*store.MessagePage, error) {
	terms, kargs, order, limit := keyset(p, "sent_at", "ASC")
	where := append([]string{"tenant = ?", "interaction_id = ?"}, terms...)
	args := append(append([]any{tenant, interactionID}, kargs...), limit)
	cols := messageCols
	if !bodies {
		cols = messageColsWithoutBody
	}
	rows, err := s.query(ctx, s.r, `SELECT `+cols+` FROM messages WHERE `+strings.Join(where, " AND ")+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list messages: %w", err)
	}
	items, err := collect(rows, scanMessage, "messages")
	if err != nil {
		return nil, err
	}
	out := &store.MessagePage{}
	out.Items, out.HasNextPage, out.HasPreviousPage = page(items, p)
	return out, nil
}

// CountMessages implements store.Store.
func (s *Store) CountMessages(ctx context.Context, tenant, interactionID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, s.r, `SELECT count(*) FROM messages WHERE tenant = ? AND interaction_id = ?`, tenant, interactionID).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count messages: %w", err)
	}
	return n, nil
}

// Preferences implements store.Store.
func (s *Store) Preferences(ctx context.Context, tenant, principal string) (related.Preferences, error) {
	var show bool
	err := s.queryRow(ctx, s.r, `SELECT show_related FROM preferences WHERE tenant = ? AND principal = ?`, tenant, principal).Scan(&show)
	if errors.Is(err, sql.ErrNoRows) {
		return related.DefaultPreferences, nil
	}
	if err != nil {
		return related.Preferences{}, fmt.Errorf("sqlite: read preferences: %w", err)
	}
	return related.Preferences{ShowRelated: show}, nil
}

// SetPreferences implements store.Store.
func (s *Store) SetPreferences(ctx context.Context, tenant, principal string, p related.Preferences) error {
	return s.write(ctx, func(tx *sql.Tx) ([]store.Event, error) {
		_, err := s.exec(ctx, tx, `INSERT INTO preferences (tenant, principal, show_related, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant, principal) DO UPDATE SET show_related = excluded.show_related, updated_at = excluded.updated_at`,
			tenant, principal, p.ShowRelated, ms(time.Now()))
		if err != nil {
			return nil, fmt.Errorf("sqlite: write preferences: %w", err)
		}
		return nil, nil
	})
}
