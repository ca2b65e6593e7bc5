package main

import (
	"flag"
	"io"
	"runtime"
	"testing"

	"github.com/relatedhq/related/server"
)

// TestAdmissionDefaultFollowsTheDatabase: --max-concurrent unset leaves
// the server's default (2 per core) on the embedded database and runs 16
// per core on MongoDB, whose requests wait on the network; a value given
// is kept on both.
func TestAdmissionDefaultFollowsTheDatabase(t *testing.T) {
	cores := runtime.GOMAXPROCS(0)
	for _, tc := range []struct {
		name   string
		args   []string
		remote bool
		want   int
	}{
		{"embedded, default", nil, false, 0},
		{"mongo, default", nil, true, 16 * cores},
		{"embedded, given", []string{"--max-concurrent", "7"}, false, 7},
		{"mongo, given", []string{"--max-concurrent", "7"}, true, 7},
		{"mongo, no limit", []string{"--max-concurrent", "-1"}, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p perfConfig
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			p.register(fs, func(string) string { return "" })
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var o server.Options
			p.options(&o, tc.remote)
			if o.Admission.Concurrency != tc.want {
				t.Fatalf("Concurrency = %d, want %d", o.Admission.Concurrency, tc.want)
			}
		})
	}
}
