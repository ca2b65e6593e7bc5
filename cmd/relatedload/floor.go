package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// floorDB is the embedded database the floor reads, in this process.
type floorDB struct {
	st     *sqlite.Store
	tenant string
	first  int
}

// openFloor opens the embedded database in dir. The server may be serving
// it at the same time: SQLite in WAL mode lets readers run beside its
// writer. The floor only reads (opening does write the schema when the
// database has none yet, so dir must hold a database already).
func openFloor(ctx context.Context, dir, tenant string, first int) (*floorDB, error) {
	path := filepath.Join(dir, sqlite.FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("floor: no database at %s: %w", path, err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(ctx, sqlite.Options{Dir: dir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("floor: open %s: %w", dir, err)
	}
	return &floorDB{st: st, tenant: tenant, first: first}, nil
}

// Close closes the database.
func (f *floorDB) Close() error { return f.st.Close() }

// sample lists up to limit interaction ids of the tenant, newest first: the
// same list, in the same order, as the gateway's interactions query.
func (f *floorDB) sample(ctx context.Context, limit int) ([]string, error) {
	var ids []string
	var after *store.Cursor
	for len(ids) < limit {
		page, err := f.st.ListInteractions(ctx, f.tenant, store.InteractionFilter{}, store.Page{First: 100, After: after})
		if err != nil {
			return nil, fmt.Errorf("floor: list interactions: %w", err)
		}
		for _, it := range page.Items {
			if len(ids) < limit {
				ids = append(ids, it.ID)
			}
		}
		if !page.HasNextPage || len(page.Items) == 0 {
			break
		}
		c := store.InteractionCursor(page.Items[len(page.Items)-1])
		after = &c
	}
	return ids, nil
}

// errNotFound is a floor read of an interaction that is not there.
var errNotFound = errors.New("interaction not found")

// open performs the database reads of opening interaction id, as the
// gateway's resolvers make them on SQLite (store.PanelReader): the
// interaction with its contact and profile in one statement, then the
// Related panel's first page with its contacts and total in one more, in
// the scope related.ChooseScope picks without a requested scope. A
// profile merged into another is followed as the gateway does (an extra
// read per step; seeded data has none).
func (f *floorDB) open(ctx context.Context, id string) error {
	views, err := f.st.InteractionViews(ctx, f.tenant, []string{id})
	if err != nil {
		return fmt.Errorf("floor: interaction views: %w", err)
	}
	if len(views) == 0 {
		return errNotFound
	}
	v := views[0]
	linked, profileID := false, v.Interaction.ProfileID
	p := v.Profile
	for step := 0; p != nil && p.MergedInto != "" && step < 16; step++ {
		ps, err := f.st.Profiles(ctx, f.tenant, []string{p.MergedInto})
		if err != nil {
			return fmt.Errorf("floor: follow profile merge: %w", err)
		}
		p = nil
		if len(ps) > 0 {
			p = ps[0]
		}
	}
	if profileID != "" && p != nil {
		linked, profileID = p.ContactCount > 1, p.ID
	}
	q := store.RelatedQuery{ContactID: v.Interaction.ContactID, Exclude: v.Interaction.ID}
	if related.ChooseScope("", linked) == related.ScopeProfile {
		q = store.RelatedQuery{ProfileID: profileID, Exclude: v.Interaction.ID}
	}
	if _, err := f.st.RelatedPanel(ctx, f.tenant, q, store.Page{First: f.first}); err != nil {
		return fmt.Errorf("floor: related panel: %w", err)
	}
	return nil
}

// job returns the floor's open arrival for store id.
func (f *floorDB) job(id string) job {
	return job{op: opOpen, run: func(ctx context.Context) string {
		err := f.open(ctx, id)
		switch {
		case err == nil:
			return ""
		case errors.Is(err, errNotFound):
			return "not_found"
		case errors.Is(err, context.DeadlineExceeded):
			return "timeout"
		case errors.Is(err, context.Canceled):
			return "canceled"
		}
		return "db_error"
	}}
}
