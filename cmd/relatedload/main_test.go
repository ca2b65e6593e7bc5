package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		message string
	}{
		{"zero rate", []string{"-rate", "0"}, 2, "-rate"},
		{"long run", []string{"-duration", "2h"}, 2, "-duration"},
		{"page size", []string{"-first", "101"}, 2, "-first"},
		{"floor without data", []string{"-floor"}, 2, "-data-dir"},
		{"floor and compare", []string{"-floor", "-compare", "-data-dir", "x"}, 2, "not both"},
		{"stray argument", []string{"now"}, 2, "unexpected argument"},
		{"diff needs two", []string{"-diff", "a.json"}, 2, "two reports"},
		{"remote host", []string{"-url", "http://example.com:8080", "-key", "k"}, 1, "not a loopback"},
		{"no key", []string{"-url", "http://127.0.0.1:1"}, 1, "no API key"},
		{"bad mix", []string{"-key", "k", "-mix", "open=1,delete=1"}, 1, "unknown operation"},
		{"no database", []string{"-floor", "-data-dir", "/nonexistent/relatedload"}, 1, "no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, func(string) string { return "" }, &out, &errb)
			if code != tt.code || !strings.Contains(errb.String(), tt.message) {
				t.Fatalf("run(%q) = %d, stderr %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.message)
			}
		})
	}
}

func TestNewGateway(t *testing.T) {
	tests := []struct {
		url      string
		remote   bool
		endpoint string
		wantErr  string
	}{
		{url: "http://127.0.0.1:8080", endpoint: "http://127.0.0.1:8080/graphql"},
		{url: "http://127.0.0.1:8080/graphql", endpoint: "http://127.0.0.1:8080/graphql"},
		{url: "http://localhost:8080/", endpoint: "http://localhost:8080/graphql"},
		{url: "http://[::1]:8080", endpoint: "http://[::1]:8080/graphql"},
		{url: "http://10.0.0.1:8080", wantErr: "not a loopback"},
		{url: "http://10.0.0.1:8080", remote: true, endpoint: "http://10.0.0.1:8080/graphql"},
		{url: "ftp://127.0.0.1", wantErr: "want http"},
		{url: "http://", wantErr: "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			g, err := newGateway(tt.url, "k", 4, tt.remote, false)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g.endpoint != tt.endpoint {
				t.Fatalf("endpoint = %s, want %s", g.endpoint, tt.endpoint)
			}
		})
	}
}

func TestDiffReports(t *testing.T) {
	dir := t.TempDir()
	phase := func(p50, p99 float64) *Phase {
		return &Phase{Ops: []OpStats{{Op: opOpen, Latency: Summary{N: 100, P50: p50, P99: p99}}, {Op: "all"}}}
	}
	write := func(name string, r Report) string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	floor := write("floor.json", Report{Mode: "floor", Config: ReportConfig{Rate: 100, First: 20, Mix: "open=1"}, Floor: phase(0.4, 1)})
	gw := write("gateway.json", Report{Mode: "gateway", Config: ReportConfig{Rate: 100, First: 20, Mix: "open=1"}, Gateway: phase(1.0, 1.2)})
	mixed := write("mixed.json", Report{Mode: "gateway", Config: ReportConfig{Rate: 200, First: 20, Mix: "open=70,close=30"}, Gateway: phase(1.0, 1.2)})

	tests := []struct {
		name, floor, gateway string
		wantErr, wantWarn    string
		overP50              float64
	}{
		{name: "matching runs", floor: floor, gateway: gw, overP50: 0.6},
		{name: "different runs warn", floor: floor, gateway: mixed, overP50: 0.6, wantWarn: "mix is open=70,close=30"},
		{name: "swapped", floor: gw, gateway: floor, wantErr: "no floor phase"},
		{name: "missing file", floor: filepath.Join(dir, "none.json"), gateway: gw, wantErr: "read report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var warn bytes.Buffer
			rep, err := diffReports(tt.floor, tt.gateway, &warn)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Overhead.OverP50 != tt.overP50 || !rep.Overhead.P50Met || !rep.Overhead.P99Met {
				t.Fatalf("overhead = %+v, want +%g ms at p50 and both targets met", rep.Overhead, tt.overP50)
			}
			if tt.wantWarn != "" && !strings.Contains(warn.String(), tt.wantWarn) || tt.wantWarn == "" && warn.Len() > 0 {
				t.Fatalf("warnings %q, want %q", warn.String(), tt.wantWarn)
			}
			var out bytes.Buffer
			rep.print(&out)
			if !strings.Contains(out.String(), "gateway over floor") {
				t.Fatalf("printed report lacks the comparison:\n%s", out.String())
			}
		})
	}
}
