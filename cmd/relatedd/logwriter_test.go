package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flush timer's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBatchedLog: INFO lines wait at most logFlushEvery and go out in one
// write, warnings go out at once with what waited before them, and Close
// leaves nothing behind.
func TestBatchedLog(t *testing.T) {
	var out lockedBuffer
	w := newBatchWriter(&out)
	log := newLogger(config{}, w)
	log.Info("one")
	log.Info("two")
	if s := out.String(); s != "" {
		t.Fatalf("INFO lines written at once: %q", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "msg=two") {
		if time.Now().After(deadline) {
			t.Fatal("INFO lines never flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("three")
	log.Warn("careful")
	if s := out.String(); !strings.Contains(s, "msg=three") || !strings.Contains(s, "msg=careful") {
		t.Fatalf("a warning did not go out at once with what waited: %q", s)
	}
	log.With(slog.String("k", "v")).Error("bad")
	if !strings.Contains(out.String(), "msg=bad k=v") {
		t.Fatalf("an error of a derived logger waited: %q", out.String())
	}
	log.Info("last")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "msg=last") {
		t.Fatalf("Close left a line behind: %q", out.String())
	}
	if _, err := w.Write([]byte("late\n")); err == nil {
		t.Fatal("a write after Close was taken")
	}
}
