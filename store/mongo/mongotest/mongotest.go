// Package mongotest gives tests a MongoDB wire-protocol server: the one
// MONGODB_URI names, or else an embedded FerretDB v1 on a temporary SQLite
// directory. Tests of any package that need the MongoDB adapter start one
// per test binary from TestMain and use a fresh database per test.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Server is a running test server.
type Server struct {
	// URI is its connection string.
	URI string
	// Atomic reports whether it applies concurrent updates to one document
	// atomically: true for a real MongoDB, false for FerretDB (DESIGN.md
	// section 2).
	Atomic bool
	// Real reports whether it is a real MongoDB named by MONGODB_URI.
	Real bool

	stop func() error
}

// Start returns MONGODB_URI's server when set, else starts a FerretDB
// listening on a loopback port. log receives FerretDB's logs (nil: none).
func Start(log *slog.Logger) (*Server, error) {
	if uri := os.Getenv("MONGODB_URI"); uri != "" {
		return &Server{URI: uri, Atomic: true, Real: true, stop: func() error { return nil }}, nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "related-ferretdb-")
	if err != nil {
		return nil, fmt.Errorf("mongotest: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    log,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mongotest: ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	s := &Server{URI: f.MongoDBURI()} // MongoDBURI blocks until the listener is up
	s.stop = func() error {
		cancel()
		return errors.Join(<-done, os.RemoveAll(dir))
	}
	return s, nil
}

// Stop stops a FerretDB started by Start and removes its files.
func (s *Server) Stop() error { return s.stop() }

// FreshDB returns a database name no other test uses.
func FreshDB() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return "related_test_" + hex.EncodeToString(b[:])
}
