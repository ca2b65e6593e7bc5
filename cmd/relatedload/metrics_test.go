package main

import (
	"maps"
	"strings"
	"testing"
)

func TestParseCounters(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]int64
		req     int64
		sec     float64
		wantErr string
	}{
		{
			name: "server output",
			in: `# HELP related_db_commands_total Database commands sent, by command name (SQLite: statements by verb).
# TYPE related_db_commands_total counter
related_db_commands_total{command="insert"} 12
related_db_commands_total{command="select"} 3456
related_db_commands_total{command="update"} 7
# HELP related_http_requests_total HTTP requests served, by route and status class.
related_http_requests_total{route="/graphql",code="2xx"} 99
related_http_requests_total{route="/graphql",code="4xx"} 1
related_http_requests_total{route="/metrics",code="2xx"} 40
# HELP related_http_request_duration_seconds_sum Total time spent serving HTTP requests, by route and status class.
related_http_request_duration_seconds_sum{route="/graphql",code="2xx"} 0.25
related_http_request_duration_seconds_sum{route="/graphql",code="4xx"} 0.125
related_http_request_duration_seconds_sum{route="/metrics",code="2xx"} 9
related_uptime_seconds 12.5
`,
			want: map[string]int64{"insert": 12, "select": 3456, "update": 7},
			req:  100, sec: 0.375,
		},
		{name: "another series may be malformed", in: "related_uptime_seconds twelve\nrelated_db_commands_total{command=\"select\"} 1\n", want: map[string]int64{"select": 1}},
		{name: "bad duration", in: `related_http_request_duration_seconds_sum{route="/graphql",code="2xx"} x` + "\n", wantErr: "bad counter value"},
		{name: "empty", in: "", want: map[string]int64{}},
		{name: "no commands yet", in: "# TYPE related_db_commands_total counter\nrelated_uptime_seconds 1\n", want: map[string]int64{}},
		{
			name: "other labels, spaces, timestamp, float",
			in:   "related_db_commands_total{ db=\"x\", command=\"find\" } 1.2e3 1700000000000\n  related_db_commands_total{command=\"aggregate\",} 5\n",
			want: map[string]int64{"find": 1200, "aggregate": 5},
		},
		{
			name: "escapes",
			in:   `related_db_commands_total{command="a\"b\\c\nd"} 2` + "\n",
			want: map[string]int64{"a\"b\\c\nd": 2},
		},
		{
			name: "a longer name sharing the prefix is another series",
			in:   "related_db_commands_total_created{command=\"select\"} 1.7e9\nrelated_db_commands_total{command=\"select\"} 4\n",
			want: map[string]int64{"select": 4},
		},
		{name: "no labels", in: "related_db_commands_total 9\n", want: map[string]int64{"": 9}},
		{name: "bad value", in: `related_db_commands_total{command="select"} many` + "\n", wantErr: "bad counter value"},
		{name: "NaN", in: `related_db_commands_total{command="select"} NaN` + "\n", wantErr: "bad counter value"},
		{name: "negative", in: `related_db_commands_total{command="select"} -1` + "\n", wantErr: "bad counter value"},
		{name: "no value", in: `related_db_commands_total{command="select"}` + "\n", wantErr: "want a value"},
		{name: "unterminated value", in: `related_db_commands_total{command="select} 1` + "\n", wantErr: "unterminated"},
		{name: "unterminated set", in: `related_db_commands_total{command="select"` + "\n", wantErr: "unterminated label set"},
		{name: "unquoted", in: `related_db_commands_total{command=select} 1` + "\n", wantErr: "not quoted"},
		{name: "bad escape", in: `related_db_commands_total{command="a\tb"} 1` + "\n", wantErr: "unknown escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCounters(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Commands, tt.want) || got.Requests != tt.req || got.Seconds != tt.sec {
				t.Fatalf("got %v, %d requests, %gs; want %v, %d, %gs", got.Commands, got.Requests, got.Seconds, tt.want, tt.req, tt.sec)
			}
		})
	}
}

func TestDelta(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]int64
		want          map[string]int64
		total         int64
	}{
		{"nothing", map[string]int64{}, map[string]int64{}, map[string]int64{}, 0},
		{"growth", map[string]int64{"select": 10, "insert": 1}, map[string]int64{"select": 12, "insert": 1, "update": 3},
			map[string]int64{"select": 2, "update": 3}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := delta(tt.before, tt.after)
			if !maps.Equal(got, tt.want) || total != tt.total {
				t.Fatalf("delta = %v (%d), want %v (%d)", got, total, tt.want, tt.total)
			}
		})
	}
}

func TestParseLoadavg(t *testing.T) {
	tests := []struct {
		in   string
		want float64
	}{
		{"0.52 0.58 0.59 1/467 12345\n", 0.52},
		{"4.68 5.74 3.88 7/300 9000", 4.68},
		{"", -1},
		{"busy 1 2", -1},
		{"-1 0 0", -1},
	}
	for _, tt := range tests {
		if got := parseLoadavg(tt.in); got != tt.want {
			t.Errorf("parseLoadavg(%q) = %g, want %g", tt.in, got, tt.want)
		}
	}
}
