package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeSeedsAndShutsDown runs the README's first command in-process:
// the server on a fresh embedded database with demo data, then a graceful
// stop as SIGTERM would cause.
func TestServeSeedsAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	env := func(k string) string {
		if k == "RELATED_DATA_DIR" {
			return dir
		}
		return ""
	}
	out, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--seed", "20"}, env, w, io.Discard)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	var base string
	for lines.Scan() {
		if u, ok := strings.CutPrefix(lines.Text(), "Related is serving on "); ok {
			base = u
			break
		}
	}
	if base == "" {
		t.Fatal("the server never said where it serves")
	}
	go io.Copy(io.Discard, out)
	for _, path := range []string{"/readyz", "/graphiql"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(base+"/graphql", "application/json", strings.NewReader(`{"query":"{ interactions(first: 5) { totalCount edges { node { related { totalCount } } } } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"totalCount"`) || strings.Contains(string(body), `"errors"`) || strings.Contains(string(body), `"totalCount":0,`) {
		t.Fatalf("seeded server answered %s", body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on cancellation")
	}
	// A restart on the same directory keeps the data and does not seed twice.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	out2, w2 := io.Pipe()
	var logs strings.Builder
	go func() {
		done <- run(ctx2, []string{"--addr", "127.0.0.1:0", "--seed", "20"}, env, w2, &logs)
		w2.Close()
	}()
	lines = bufio.NewScanner(out2)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "Related is serving on ") {
			break
		}
	}
	go io.Copy(io.Discard, out2)
	cancel2()
	<-done
	if !strings.Contains(logs.String(), "not seeding") {
		t.Fatalf("restart logs lack the not-seeding notice:\n%s", logs.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var stderr strings.Builder
	if code := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "frobnicate") {
		t.Fatalf("stderr %q does not name the command", stderr.String())
	}
}
