package main

import (
	"bufio"
	"context"
	"flag"
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
	var base, key string
	for lines.Scan() {
		if k, ok := strings.CutPrefix(strings.TrimSpace(lines.Text()), "rk_"); ok && key == "" {
			key = "rk_" + k // the first-start key, printed once
		}
		if u, ok := strings.CutPrefix(lines.Text(), "Related is serving on "); ok {
			base = u
			break
		}
	}
	if key == "" {
		t.Fatal("the first start printed no key")
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
	query := `{"query":"{ interactions(first: 5) { totalCount edges { node { related { totalCount } } } } }"}`
	resp, err := http.Post(base+"/graphql", "application/json", strings.NewReader(query))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a request without a key = %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/graphql", strings.NewReader(query))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
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
		if strings.Contains(lines.Text(), "rk_") {
			t.Errorf("a restart printed another key: %q", lines.Text())
		}
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

// TestKeysCommands creates, lists and revokes a key on an embedded
// database, as an operator would.
func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) string {
		if k == "RELATED_DATA_DIR" {
			return dir
		}
		return ""
	}
	runOK := func(args ...string) string {
		t.Helper()
		var out, errs strings.Builder
		if code := run(context.Background(), args, env, &out, &errs); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs.String())
		}
		return out.String()
	}
	created := runOK("keys", "create", "--tenant", "acme", "--role", "agent", "--name", "desk 1")
	var id, secret string
	for _, f := range strings.Fields(created) {
		if strings.HasPrefix(f, "key_") && id == "" {
			id = f
		}
		if strings.HasPrefix(f, "rk_") && secret == "" {
			secret = f
		}
	}
	if id == "" || secret == "" {
		t.Fatalf("create printed %q", created)
	}
	list := runOK("keys", "list", "--tenant", "acme")
	if !strings.Contains(list, id) || !strings.Contains(list, "desk 1") || strings.Contains(list, secret) {
		t.Fatalf("list printed %q", list)
	}
	if other := runOK("keys", "list", "--tenant", "other"); strings.Contains(other, id) {
		t.Fatalf("another tenant's list shows the key: %q", other)
	}
	runOK("keys", "revoke", id)
	list = runOK("keys", "list")
	revoked := false
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == id {
			revoked = f[len(f)-1] != "-"
		}
	}
	if !revoked {
		t.Fatalf("list after revoke printed %q", list)
	}
	var errs strings.Builder
	if code := run(context.Background(), []string{"keys", "create", "--tenant", "acme", "--role", "root"}, env, io.Discard, &errs); code == 0 || !strings.Contains(errs.String(), "role") {
		t.Fatalf("a bad role: exit %d, %q", code, errs.String())
	}
}

// TestProductionRefusesPlainHTTP checks production mode's start-up rules.
func TestProductionRefusesPlainHTTP(t *testing.T) {
	env := func(k string) string { return "" }
	for _, args := range [][]string{
		{"serve", "--env", "production", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
		{"serve", "--env", "production", "--tls-cert", "x.pem", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
		{"serve", "--env", "staging", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
	} {
		var errs strings.Builder
		if code := run(context.Background(), args, env, io.Discard, &errs); code != 1 {
			t.Fatalf("%v: exit %d, want 1 (%s)", args, code, errs.String())
		}
	}
	var sec securityConfig
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	sec.register(fs, env)
	if err := fs.Parse([]string{"--env", "production", "--behind-proxy"}); err != nil {
		t.Fatal(err)
	}
	if err := sec.resolve(env); err != nil || sec.introspection || sec.graphiql {
		t.Fatalf("production behind a proxy: %v, introspection %v, graphiql %v", err, sec.introspection, sec.graphiql)
	}
	var dev securityConfig
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	dev.register(fs, env)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := dev.resolve(env); err != nil || !dev.introspection || !dev.graphiql {
		t.Fatalf("development: %v, introspection %v, graphiql %v", err, dev.introspection, dev.graphiql)
	}
}

func TestParsePersisted(t *testing.T) {
	ops, err := parsePersisted([]byte(`["{ viewer { tenant } }"]`))
	if err != nil || len(ops) != 1 {
		t.Fatalf("array: %v, %v", ops, err)
	}
	for h, q := range ops {
		if again, err := parsePersisted([]byte(`{"` + h + `": "` + q + `"}`)); err != nil || again[h] != q {
			t.Fatalf("object: %v, %v", again, err)
		}
	}
	if _, err := parsePersisted([]byte(`{"00": "{ viewer { tenant } }"}`)); err == nil {
		t.Fatal("a wrong hash was accepted")
	}
}

func FuzzParsePersisted(f *testing.F) {
	f.Add([]byte(`["{ viewer { tenant } }"]`))
	f.Add([]byte(`{"abc": "query"}`))
	f.Add([]byte(`[`))
	f.Add([]byte(`{"":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, err := parsePersisted(data)
		if err != nil {
			return
		}
		for h, q := range ops {
			if len(h) != 64 || strings.TrimSpace(q) == "" {
				t.Fatalf("registry holds %q -> %q", h, q)
			}
		}
	})
}
