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

// Exec runs a statement on the writer, for tests that stage what a crash
// would leave.
func Exec(s *Store, query string, args ...any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.w.Exec(query, args...)
	return err
}
