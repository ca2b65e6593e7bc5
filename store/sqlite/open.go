package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/relatedhq/related/store"
)

// The open-an-interaction reads of the compiled plan (store.OpenReader):
// the same two statements as the panel reads (panel.go), selecting only the
// columns operation.OpenInteraction shows, scanned into flat rows. A
// contact's attributes and a profile's identifiers, JSON the panel never
// shows, are neither read nor decoded.

var _ store.OpenReader = (*Store)(nil)

// openViewQuery reads one interaction with its contact and profile.
const openViewQuery = `SELECT i.id, i.channel, i.status, i.closed_state, i.closed_at, i.created_at, i.contact_id, i.profile_id,
		i.queue_id, i.queue_name, i.last_id, i.last_body, i.last_partial, i.last_direction, i.last_author, i.last_at,
		c.name, c.address,
		coalesce(p.id, ''), coalesce(p.custom_name, ''), coalesce(p.auto_name, ''), coalesce(p.channels, '[]'),
		coalesce(p.contacts, 0), coalesce(p.merged_into, '')
	FROM interactions i
	JOIN contacts c ON c.tenant = i.tenant AND c.id = i.contact_id
	LEFT JOIN profiles p ON p.tenant = i.tenant AND p.id = i.profile_id
	WHERE i.tenant = ? AND i.id = ?`

// OpenView implements store.OpenReader.
func (s *Store) OpenView(ctx context.Context, tenant, id string, v *store.OpenView) (bool, error) {
	rows, err := s.query(ctx, s.r, openViewQuery, tenant, id)
	if err != nil {
		return false, fmt.Errorf("sqlite: open view: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("sqlite: open view: %w", err)
		}
		return false, nil
	}
	p := &v.Profile
	if err := rows.Scan(&v.ID, &v.Channel, &v.Status, &v.ClosedState, &v.ClosedAt, &v.CreatedAt, &v.ContactID, &v.ProfileID,
		&v.QueueID, &v.QueueName, &v.Last.ID, &v.Last.Body, &v.Last.Partial, &v.Last.Direction, &v.Last.Author, &v.Last.SentAt,
		&v.ContactName, &v.ContactAddress,
		&p.ID, &p.CustomName, &p.AutoName, &p.Channels, &p.Contacts, &p.MergedInto); err != nil {
		return false, fmt.Errorf("sqlite: scan open view: %w", err)
	}
	return true, rows.Close()
}

// panelShape names the variants of the page statement: the scope's key,
// whether an interaction is excluded, the cursors given and the direction.
type panelShape struct {
	profile, exclude, after, before, backward bool
}

func (k panelShape) index() int {
	i := 0
	for bit, on := range []bool{k.profile, k.exclude, k.after, k.before, k.backward} {
		if on {
			i |= 1 << bit
		}
	}
	return i
}

// panelQueries holds the page statement of each shape, built once: the
// hot path builds no SQL text.
var panelQueries [32]struct {
	once sync.Once
	text string
}

// panelQuery returns the page statement of shape k, built the way
// RelatedPanel builds its own (relatedFilter, keyset), so both read the
// same rows in the same order with the same index.
func panelQuery(k panelShape, q store.RelatedQuery, p store.Page) string {
	slot := &panelQueries[k.index()]
	slot.once.Do(func() {
		where, _, _ := relatedFilter("", q)
		for i, w := range where {
			where[i] = "i." + w
		}
		terms, _, order, _ := keyset(p, "i.last_at", "DESC")
		terms = qualifyID(terms)
		order = strings.Replace(order, ", id ", ", i.id ", 1)
		filter, _, _ := relatedFilter("", q)
		slot.text = `SELECT i.id, i.channel, i.status, i.closed_state, i.closed_at, i.created_at, i.contact_id,
			i.queue_id, i.queue_name, i.last_id, i.last_body, i.last_partial, i.last_direction, i.last_at, c.name,
			(SELECT count(*) FROM interactions WHERE ` + strings.Join(filter, " AND ") + `)
		FROM interactions i
		JOIN contacts c ON c.tenant = i.tenant AND c.id = i.contact_id
		WHERE ` + strings.Join(append(where, terms...), " AND ") + order + ` LIMIT ?`
	})
	return slot.text
}

// PanelRows implements store.OpenReader.
func (s *Store) PanelRows(ctx context.Context, tenant string, q store.RelatedQuery, p store.Page, out *store.PanelRows) error {
	if (q.ContactID == "") == (q.ProfileID == "") {
		return fmt.Errorf("sqlite: related query needs exactly one of ContactID and ProfileID")
	}
	k := panelShape{profile: q.ProfileID != "", exclude: q.Exclude != "", after: p.After != nil, before: p.Before != nil, backward: p.Backward()}
	query := panelQuery(k, q, p)
	// The arguments in relatedFilter's and keyset's order: the filter
	// twice (the total, then the page), the cursors, the limit.
	args := make([]any, 0, 11)
	for range 2 {
		args = append(args, tenant, q.ContactID+q.ProfileID)
		if q.Exclude != "" {
			args = append(args, q.Exclude)
		}
	}
	if p.After != nil {
		args = append(args, ms(p.After.At), p.After.ID)
	}
	if p.Before != nil {
		args = append(args, ms(p.Before.At), p.Before.ID)
	}
	args = append(args, max(p.Limit(), 0)+1)
	rows, err := s.query(ctx, s.r, query, args...)
	if err != nil {
		return fmt.Errorf("sqlite: related panel rows: %w", err)
	}
	defer rows.Close()
	total := -1
	out.Rows = out.Rows[:0]
	dest := make([]any, 16)
	for rows.Next() {
		out.Rows = append(out.Rows, store.PanelRow{})
		r := &out.Rows[len(out.Rows)-1]
		dest[0], dest[1], dest[2], dest[3], dest[4], dest[5], dest[6] = &r.ID, &r.Channel, &r.Status, &r.ClosedState, &r.ClosedAt, &r.CreatedAt, &r.ContactID
		dest[7], dest[8], dest[9], dest[10], dest[11], dest[12], dest[13] = &r.QueueID, &r.QueueName, &r.Last.ID, &r.Last.Body, &r.Last.Partial, &r.Last.Direction, &r.Last.SentAt
		dest[14], dest[15] = &r.ContactName, &total
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("sqlite: scan related panel rows: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: read related panel rows: %w", err)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite: read related panel rows: %w", err)
	}
	out.Rows, out.HasNextPage, out.HasPreviousPage = page(out.Rows, p)
	out.Total = total
	if total < 0 {
		if p.After == nil && p.Before == nil {
			out.Total = 0 // an empty first page: the list is empty
		} else if out.Total, err = s.CountRelated(ctx, tenant, q); err != nil {
			return err
		}
	}
	return nil
}
