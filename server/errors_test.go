package server

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/relatedhq/related/live"
	"github.com/relatedhq/related/resolvers"
)

// levels counts log records by level.
type levels map[slog.Level]int

func (l levels) Enabled(context.Context, slog.Level) bool { return true }
func (l levels) Handle(_ context.Context, r slog.Record) error {
	l[r.Level]++
	return nil
}
func (l levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l levels) WithGroup(string) slog.Handler      { return l }

// TestPresentErrorSaysWhoseFailure: each kind of failure gets its code,
// and only the server's own defects are logged as errors.
func TestPresentErrorSaysWhoseFailure(t *testing.T) {
	for _, c := range []struct {
		err       error
		code      string
		errorLogs int
	}{
		{fmt.Errorf("load: %w", context.Canceled), CodeCancelled, 0},
		{fmt.Errorf("load: %w", context.DeadlineExceeded), CodeTimeout, 0},
		{fmt.Errorf("messages: %w", resolvers.ErrTooLarge), CodeResponseTooLarge, 0},
		{fmt.Errorf("live: %w", live.ErrTooSlow), CodeTooSlow, 0},
		{fmt.Errorf("live: %w", live.ErrClosed), CodeShuttingDown, 0},
		{fmt.Errorf("a bug"), CodeInternal, 1},
	} {
		logs := levels{}
		s := New(Options{Logger: slog.New(logs)})
		clear(logs) // New's own complaint about the missing store
		e := s.presentError(context.Background(), c.err)
		if e.Extensions["code"] != c.code || logs[slog.LevelError] != c.errorLogs {
			t.Errorf("%v: code %v, %d error log lines; want %s, %d", c.err, e.Extensions["code"], logs[slog.LevelError], c.code, c.errorLogs)
		}
	}
}
