package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/operation"
)

// The Node peer (bench/peer) is driven like the gateway, open only, with
// the interactions sampled from the database both read. -check-peer first
// proves they answer the same data.

// sampleDB samples the tenant's interactions from -data-dir as open
// targets (global ids).
func sampleDB(ctx context.Context, c config) (*pool, error) {
	f, err := openFloor(ctx, c.dataDir, c.tenant, c.first)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, err := f.sample(ctx, c.sample)
	if err != nil {
		return nil, err
	}
	p := &pool{}
	for _, id := range ids {
		p.add(target{ID: related.GlobalID(related.NodeInteraction, id)})
	}
	return p, nil
}

// raw sends operation.OpenInteraction and returns the response's status and
// body.
func (g *gateway) raw(ctx context.Context, vars map[string]any) (int, []byte, error) {
	body, err := json.Marshal(map[string]any{"query": operation.OpenInteraction, "variables": vars})
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if g.key != "" {
		req.Header.Set("Authorization", "Bearer "+g.key)
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	return resp.StatusCode, b, err
}

// CheckReport is what -check-peer found.
type CheckReport struct {
	Gateway   string   `json:"gateway"`
	Peer      string   `json:"peer"`
	First     int      `json:"first"`
	Compared  int      `json:"compared"`
	Same      int      `json:"same"`
	Different []string `json:"different,omitempty"` // the first few, with the first differing path
	Failed    []string `json:"failed,omitempty"`    // requests that did not answer data
}

// runCheckPeer opens each sampled interaction on the gateway and on the
// peer and compares the data of the two answers (as JSON values: key order
// and spacing aside). It exits 1 when any differs.
func runCheckPeer(ctx context.Context, c config, stdout, progress io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintln(progress, "relatedload:", err)
		return 1
	}
	g, err := newGateway(c.url, c.key, 4, c.allowRemote, false)
	if err != nil {
		return fail(err)
	}
	peer, err := newGateway(c.checkPeer, "", 4, c.allowRemote, true)
	if err != nil {
		return fail(fmt.Errorf("-check-peer: %w", err))
	}
	p, err := sampleDB(ctx, c)
	if err != nil {
		return fail(err)
	}
	rep := CheckReport{Gateway: g.endpoint, Peer: peer.endpoint, First: c.first}
	fmt.Fprintf(progress, "relatedload: comparing %d interactions, first %d\n", len(p.all), c.first)
	for _, t := range p.all {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		vars := map[string]any{"id": t.ID, "first": c.first}
		a, aerr := dataOf(ctx, g, vars)
		b, berr := dataOf(ctx, peer, vars)
		rep.Compared++
		if err := errors.Join(aerr, berr); err != nil {
			rep.Failed = append(rep.Failed, fmt.Sprintf("%s: %v", t.ID, err))
			continue
		}
		if path, same := sameJSON(a, b, "data"); !same {
			if len(rep.Different) < 10 {
				rep.Different = append(rep.Different, fmt.Sprintf("%s: first difference at %s", t.ID, path))
			}
			continue
		}
		rep.Same++
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "relatedload: %d of %d interactions answer the same data on %s and %s (first %d)\n", rep.Same, rep.Compared, rep.Gateway, rep.Peer, rep.First)
		for _, d := range rep.Different {
			fmt.Fprintln(stdout, "  different:", d)
		}
		for _, f := range rep.Failed[:min(len(rep.Failed), 10)] {
			fmt.Fprintln(stdout, "  failed:", f)
		}
	}
	if rep.Same != rep.Compared || rep.Compared == 0 {
		return 1
	}
	return 0
}

// dataOf returns the decoded data of an OpenInteraction answer without
// errors.
func dataOf(ctx context.Context, g *gateway, vars map[string]any) (any, error) {
	rctx, cancel := context.WithTimeout(ctx, maxCheckWait)
	defer cancel()
	status, body, err := g.raw(rctx, vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.endpoint, err)
	}
	var r struct {
		Data   any               `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%s: status %d, undecodable answer: %w", g.endpoint, status, err)
	}
	if status != http.StatusOK || len(r.Errors) > 0 || r.Data == nil {
		return nil, fmt.Errorf("%s: status %d: %s", g.endpoint, status, truncate(string(body), 200))
	}
	return r.Data, nil
}

// maxCheckWait bounds each request of -check-peer.
const maxCheckWait = 10 * time.Second

// sameJSON compares two decoded JSON values and returns the path of the
// first difference.
func sameJSON(a, b any, path string) (string, bool) {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return path, false
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			if p, same := sameJSON(x[k], y[k], path+"."+k); !same {
				return p, false
			}
		}
		return "", true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path + " (length " + strconv.Itoa(len(x)) + " and " + lengthOf(b) + ")", false
		}
		for i := range x {
			if p, same := sameJSON(x[i], y[i], path+"["+strconv.Itoa(i)+"]"); !same {
				return p, false
			}
		}
		return "", true
	}
	if !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("%s (%s and %s)", path, short(a), short(b)), false
	}
	return "", true
}

func lengthOf(v any) string {
	if l, ok := v.([]any); ok {
		return strconv.Itoa(len(l))
	}
	return "not a list"
}

func short(v any) string {
	b, _ := json.Marshal(v)
	return truncate(strings.TrimSpace(string(b)), 80)
}
