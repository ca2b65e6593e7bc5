package sqlite

import "database/sql"

// Observe makes s report every statement it runs to fn. Tests use it to
// check the query plan of each statement the store really runs.
func Observe(s *Store, fn func(query string, args []any)) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.observe = fn
}

// DB returns the reader pool, for EXPLAIN in tests.
func DB(s *Store) interface {
	Query(query string, args ...any) (*sql.Rows, error)
} {
	return s.r
}
