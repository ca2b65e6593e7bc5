package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// clusterReader reads the facts store.Gather asks for, inside the write's
// transaction (or on the readers, for a preview).
type clusterReader struct {
	s *Store
	q querier
}

var _ store.ClusterReader = clusterReader{}

const valueCols = `tenant, key, value, contact_id, rule_id, source, agent, interaction_id, by_name, by_role, at`

func scanHolder(r scanner) (identity.Holder, error) {
	var (
		h      identity.Holder
		tenant string
		at     int64
	)
	if err := r.Scan(&tenant, &h.Key, &h.Value, &h.Contact, &h.RuleID, &h.Source, &h.Agent, &h.InteractionID,
		&h.By.Name, &h.By.Role, &at); err != nil {
		return h, err
	}
	h.At = fromMS(at)
	return h, nil
}

// ClusterContacts implements store.ClusterReader: the contacts, then all
// their stored values in one more statement.
func (r clusterReader) ClusterContacts(ctx context.Context, tenant string, ids []string) ([]identity.ContactFacts, error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := r.s.query(ctx, r.q, `SELECT id, channel, name, address, profile_id FROM contacts WHERE tenant = ? AND id IN (`+placeholders(len(ids))+`)`,
		append([]any{tenant}, anys(ids)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read cluster contacts: %w", err)
	}
	cs, err := collect(rows, func(rs scanner) (identity.ContactFacts, error) {
		var c identity.ContactFacts
		return c, rs.Scan(&c.ID, &c.Channel, &c.Name, &c.Address, &c.Profile)
	}, "contacts")
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	found := make([]string, len(cs))
	for i, c := range cs {
		found[i] = c.ID
	}
	rows, err = r.s.query(ctx, r.q, `SELECT `+valueCols+` FROM contact_values WHERE tenant = ? AND contact_id IN (`+placeholders(len(found))+`)`,
		append([]any{tenant}, anys(found)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read cluster values: %w", err)
	}
	hs, err := collect(rows, scanHolder, "contact values")
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, c := range cs {
		index[c.ID] = i
	}
	for _, h := range hs {
		c := &cs[index[h.Contact]]
		c.Claims = append(c.Claims, h.Claim)
	}
	return cs, nil
}

// ProfileMembers implements store.ClusterReader.
func (r clusterReader) ProfileMembers(ctx context.Context, tenant string, profileIDs []string) ([]string, error) {
	return r.s.idList(ctx, r.q, `SELECT id FROM contacts WHERE tenant = ? AND profile_id IN (`+placeholders(len(profileIDs))+`)`,
		append([]any{tenant}, anys(profileIDs)...)...)
}

// Holders implements store.ClusterReader.
func (r clusterReader) Holders(ctx context.Context, tenant string, values []related.Identifier) ([]identity.Holder, error) {
	return r.s.holders(ctx, r.q, tenant, values)
}

// holders reads every stored claim of the values: one statement per
// valueChunk values, one primary-key seek per value.
func (s *Store) holders(ctx context.Context, q querier, tenant string, values []related.Identifier) ([]identity.Holder, error) {
	var out []identity.Holder
	for start := 0; start < len(values); start += valueChunk {
		conds, args := valueConds(tenant, values[start:min(start+valueChunk, len(values))])
		rows, err := s.query(ctx, q, `SELECT `+valueCols+` FROM contact_values WHERE `+conds, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read holders: %w", err)
		}
		hs, err := collect(rows, scanHolder, "holders")
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	return out, nil
}

// valueChunk bounds the values one statement looks up: an OR of whole keys
// is an expression tree SQLite limits to a depth of 1,000.
const valueChunk = 200

// valueConds selects rows of (tenant, key, value) primary keys: an OR of
// whole keys, which SQLite answers with one index seek per term.
func valueConds(tenant string, values []related.Identifier) (string, []any) {
	conds := make([]string, len(values))
	args := make([]any, 0, 3*len(values))
	for i, v := range values {
		conds[i] = "(tenant = ? AND key = ? AND value = ?)"
		args = append(args, tenant, v.Key, v.Value)
	}
	return strings.Join(conds, " OR "), args
}

// ValueFacts implements store.ClusterReader.
func (r clusterReader) ValueFacts(ctx context.Context, tenant string, values []related.Identifier) (map[related.Identifier]identity.ValueFacts, error) {
	out := map[related.Identifier]identity.ValueFacts{}
	for start := 0; start < len(values); start += valueChunk {
		conds, args := valueConds(tenant, values[start:min(start+valueChunk, len(values))])
		rows, err := r.s.query(ctx, r.q, `SELECT key, value, contacts, state FROM value_stats WHERE `+conds, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read value facts: %w", err)
		}
		type valueFact struct {
			id related.Identifier
			identity.ValueFacts
		}
		facts, err := collect(rows, func(rs scanner) (valueFact, error) {
			var f valueFact
			return f, rs.Scan(&f.id.Key, &f.id.Value, &f.Contacts, &f.State)
		}, "value facts")
		if err != nil {
			return nil, err
		}
		for _, f := range facts {
			out[f.id] = f.ValueFacts
		}
	}
	return out, nil
}

const decisionCols = `kind, contact_a, contact_b, into_contact, reason, by_name, by_role, at`

func scanDecision(r scanner) (identity.Decision, error) {
	var (
		d  identity.Decision
		at int64
	)
	if err := r.Scan(&d.Kind, &d.A, &d.B, &d.Into, &d.Reason, &d.By.Name, &d.By.Role, &at); err != nil {
		return d, err
	}
	d.At = fromMS(at)
	return d, nil
}

// Decisions implements store.ClusterReader: two statements, one per
// indexed side (an OR of the two would scan).
func (r clusterReader) Decisions(ctx context.Context, tenant string, contactIDs []string) ([]identity.Decision, error) {
	return r.s.decisions(ctx, r.q, tenant, contactIDs)
}

func (s *Store) decisions(ctx context.Context, q querier, tenant string, contactIDs []string) ([]identity.Decision, error) {
	if len(contactIDs) == 0 {
		return nil, nil
	}
	var out []identity.Decision
	seen := map[string]bool{}
	for _, col := range []string{"contact_a", "contact_b"} {
		rows, err := s.query(ctx, q, `SELECT `+decisionCols+` FROM decisions WHERE tenant = ? AND `+col+` IN (`+placeholders(len(contactIDs))+`)`,
			append([]any{tenant}, anys(contactIDs)...)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read decisions: %w", err)
		}
		ds, err := collect(rows, scanDecision, "decisions")
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if !seen[d.ID()] {
				seen[d.ID()] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// CurrentProfiles implements store.ClusterReader.
func (r clusterReader) CurrentProfiles(ctx context.Context, tenant string, contactIDs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(contactIDs) == 0 {
		return out, nil
	}
	// Named: without statistics SQLite prefers walking the covering
	// (tenant, profile_id, ...) index over the whole tenant.
	rows, err := r.s.query(ctx, r.q, `SELECT id, profile_id FROM contacts INDEXED BY sqlite_autoindex_contacts_1 WHERE tenant = ? AND id IN (`+placeholders(len(contactIDs))+`)`,
		append([]any{tenant}, anys(contactIDs)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read current profiles: %w", err)
	}
	pairs, err := collect(rows, func(rs scanner) ([2]string, error) { var v [2]string; return v, rs.Scan(&v[0], &v[1]) }, "contacts")
	for _, p := range pairs {
		out[p[0]] = p[1]
	}
	return out, err
}

// Renames implements store.ClusterReader.
func (r clusterReader) Renames(ctx context.Context, tenant string, contactIDs []string) ([]identity.Rename, error) {
	if len(contactIDs) == 0 {
		return nil, nil
	}
	rows, err := r.s.query(ctx, r.q, `SELECT anchor, name, by_name, by_role, at FROM renames WHERE tenant = ? AND anchor IN (`+placeholders(len(contactIDs))+`)`,
		append([]any{tenant}, anys(contactIDs)...)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read renames: %w", err)
	}
	return collect(rows, func(rs scanner) (identity.Rename, error) {
		var (
			n  identity.Rename
			at int64
		)
		err := rs.Scan(&n.Anchor, &n.Name, &n.By.Name, &n.By.Role, &at)
		n.At = fromMS(at)
		return n, err
	}, "renames")
}

const pairCols = `id, kind, key, value, rule_id, contact_a, contact_b, source_a, source_b, reason, created_at`

func scanPair(r scanner) (*store.PairRecord, error) {
	var (
		p       store.PairRecord
		created int64
	)
	if err := r.Scan(&p.ID, &p.Kind, &p.Key, &p.Value, &p.RuleID, &p.A, &p.B, &p.SourceA, &p.SourceB, &p.Reason, &created); err != nil {
		return nil, err
	}
	p.CreatedAt = fromMS(created)
	return &p, nil
}

// Pairs implements store.ClusterReader.
func (r clusterReader) Pairs(ctx context.Context, tenant string, contactIDs []string) ([]identity.Pair, error) {
	if len(contactIDs) == 0 {
		return nil, nil
	}
	var out []identity.Pair
	seen := map[string]bool{}
	for _, col := range []string{"contact_a", "contact_b"} {
		rows, err := r.s.query(ctx, r.q, `SELECT `+pairCols+` FROM profile_pairs WHERE tenant = ? AND `+col+` IN (`+placeholders(len(contactIDs))+`)`,
			append([]any{tenant}, anys(contactIDs)...)...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: read pairs: %w", err)
		}
		ps, err := collect(rows, scanPair, "pairs")
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !seen[p.ID] {
				seen[p.ID] = true
				out = append(out, p.Pair)
			}
		}
	}
	return out, nil
}

// idList runs a query of one string column.
func (s *Store) idList(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, q, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return collect(rows, func(r scanner) (string, error) { var v string; return v, r.Scan(&v) }, "ids")
}

// Profiles reads stored profiles, for a preview's samples.
func (r clusterReader) Profiles(ctx context.Context, tenant string, ids []string) ([]*related.Profile, error) {
	return r.s.profiles(ctx, r.q, tenant, ids)
}
