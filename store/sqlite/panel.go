package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
)

// The panel reads: opening an interaction is the product's hottest query,
// so SQLite answers it in two statements. One reads the interaction with
// its contact and profile; one reads the Related page with each item's
// contact and the list's total. See store.PanelReader.

var _ store.PanelReader = (*Store)(nil)

// qualified prefixes every column of a list with a table alias.
func qualified(alias, cols string) string { return prefixed(alias+".", cols) }

// profileColsOrEmpty selects a LEFT JOINed profile's columns, with empty
// values when there is none.
var profileColsOrEmpty = func() string {
	var out []string
	for _, c := range strings.Split(profileCols, ",") {
		c = strings.TrimSpace(c)
		def := "''"
		if c == "contacts" || c == "created_at" || c == "updated_at" {
			def = "0"
		}
		if c == "channels" || c == "identifiers" {
			def = "'[]'"
		}
		out = append(out, fmt.Sprintf("coalesce(p.%s, %s)", c, def))
	}
	return strings.Join(out, ", ")
}()

// InteractionViews implements store.PanelReader.
func (s *Store) InteractionViews(ctx context.Context, tenant string, ids []string) ([]*store.InteractionView, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := []any{tenant}
	for _, id := range ids {
		args = append(args, id)
	}
	rows, err := s.query(ctx, s.r, `SELECT `+qualified("i", interactionCols)+`, `+qualified("c", contactCols)+`, `+profileColsOrEmpty+`
		FROM interactions i
		JOIN contacts c ON c.tenant = i.tenant AND c.id = i.contact_id
		LEFT JOIN profiles p ON p.tenant = i.tenant AND p.id = i.profile_id
		WHERE i.tenant = ? AND i.id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load interaction views: %w", err)
	}
	return collect(rows, func(r scanner) (*store.InteractionView, error) {
		di, fi := interactionScan()
		dc, fc := contactScan()
		dp, fp := profileScan()
		if err := r.Scan(append(append(di, dc...), dp...)...); err != nil {
			return nil, err
		}
		var v store.InteractionView
		var err error
		if v.Interaction, err = fi(); err != nil {
			return nil, err
		}
		if v.Contact, err = fc(); err != nil {
			return nil, err
		}
		p, err := fp()
		if err != nil {
			return nil, err
		}
		if p.ID != "" {
			v.Profile = p
		}
		return &v, nil
	}, "interaction views")
}

// RelatedPanel implements store.PanelReader.
func (s *Store) RelatedPanel(ctx context.Context, tenant string, q store.RelatedQuery, p store.Page) (*store.InteractionPage, error) {
	where, args, err := relatedFilter(tenant, q)
	if err != nil {
		return nil, err
	}
	countArgs := append([]any(nil), args...)
	for i, w := range where {
		where[i] = "i." + w
	}
	terms, kargs, order, limit := keyset(p, "i.last_at", "DESC")
	terms = qualifyID(terms)
	order = strings.Replace(order, ", id ", ", i.id ", 1)
	filter, _, _ := relatedFilter(tenant, q)
	rows, err := s.query(ctx, s.r, `SELECT `+qualified("i", interactionCols)+`, `+qualified("c", contactCols)+`,
			(SELECT count(*) FROM interactions WHERE `+strings.Join(filter, " AND ")+`)
		FROM interactions i
		JOIN contacts c ON c.tenant = i.tenant AND c.id = i.contact_id
		WHERE `+strings.Join(append(where, terms...), " AND ")+order+` LIMIT ?`,
		append(append(append(countArgs, args...), kargs...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: related panel: %w", err)
	}
	total := -1
	type row struct {
		i *related.Interaction
		c *related.Contact
	}
	items, err := collect(rows, func(r scanner) (row, error) {
		di, fi := interactionScan()
		dc, fc := contactScan()
		if err := r.Scan(append(append(di, dc...), &total)...); err != nil {
			return row{}, err
		}
		i, err := fi()
		if err != nil {
			return row{}, err
		}
		c, err := fc()
		return row{i, c}, err
	}, "related panel")
	if err != nil {
		return nil, err
	}
	out := &store.InteractionPage{Total: total}
	list := make([]*related.Interaction, len(items))
	for k, it := range items {
		list[k] = it.i
		out.Contacts = append(out.Contacts, it.c)
	}
	out.Items, out.HasNextPage, out.HasPreviousPage = page(list, p)
	if total < 0 {
		if p.After == nil && p.Before == nil {
			out.Total = 0 // an empty first page: the list is empty
		} else if out.Total, err = s.CountRelated(ctx, tenant, q); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// qualifyID turns keyset terms' bare id into i.id for a joined query.
func qualifyID(terms []string) []string {
	out := make([]string, len(terms))
	for k, t := range terms {
		out[k] = strings.Replace(t, ", id)", ", i.id)", 1)
	}
	return out
}
