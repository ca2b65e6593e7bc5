package mongotest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Restartable is an embedded FerretDB that a test can stop and start again
// on the same directory and port, to test clients that must survive a
// database restart. Unlike Start it ignores MONGODB_URI: a test cannot
// restart a server it does not own.
type Restartable struct {
	// URI is its connection string; it stays the same across restarts.
	URI string

	dir  string
	addr string
	log  *slog.Logger
	stop func() error
}

// StartRestartable starts a FerretDB on a fresh directory and a free
// loopback port. log receives its logs (nil: none).
func StartRestartable(log *slog.Logger) (*Restartable, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp("", "related-ferretdb-")
	if err != nil {
		return nil, fmt.Errorf("mongotest: %w", err)
	}
	// Pick a port now and keep it, so the URI survives restarts.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mongotest: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &Restartable{dir: dir, addr: addr, log: log}
	if err := r.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return r, nil
}

// Start starts the server again after Stop, on the same files and port.
func (r *Restartable) Start() error {
	if r.stop != nil {
		return errors.New("mongotest: already running")
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: r.addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + r.dir + "/",
		Logger:    r.log,
	})
	if err != nil {
		return fmt.Errorf("mongotest: ferretdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	r.URI = f.MongoDBURI() // blocks until the listener is up
	r.stop = func() error {
		cancel()
		return <-done
	}
	return nil
}

// Stop stops the server and keeps its files. Connections in use break.
func (r *Restartable) Stop() error {
	if r.stop == nil {
		return nil
	}
	err := r.stop()
	r.stop = nil
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("mongotest: stop: %w", err)
	}
	return nil
}

// Close stops the server and removes its files.
func (r *Restartable) Close() error {
	return errors.Join(r.Stop(), os.RemoveAll(r.dir))
}
