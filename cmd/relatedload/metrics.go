package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// The gateway's series the tool reads (server/metrics.go).
const (
	commandsMetric        = "related_db_commands_total"
	requestsMetric        = "related_http_requests_total"
	requestDurationMetric = "related_http_request_duration_seconds_sum"
)

// counters are the gateway's counters the tool reads from /metrics.
type counters struct {
	// Commands are the database commands by their command label.
	Commands map[string]int64
	// Requests and Seconds are the /graphql requests served and the time
	// the server spent on them (every status class).
	Requests int64
	Seconds  float64
}

// parseCounters reads the tool's counters from a Prometheus text
// exposition. Other series, comments and blank lines are ignored; a
// malformed line of a series the tool reads is an error.
func parseCounters(r io.Reader) (counters, error) {
	out := counters{Commands: map[string]int64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		name, rest := text, ""
		if i := strings.IndexAny(text, "{ \t"); i >= 0 {
			name, rest = text[:i], text[i:]
		}
		if name != commandsMetric && name != requestsMetric && name != requestDurationMetric {
			continue
		}
		labels := map[string]string{}
		if rest != "" && rest[0] == '{' {
			var err error
			labels, rest, err = parseLabels(rest)
			if err != nil {
				return counters{}, fmt.Errorf("metrics line %d: %w", line, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) < 1 || len(fields) > 2 { // value [timestamp]
			return counters{}, fmt.Errorf("metrics line %d: want a value after the labels: %q", line, text)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return counters{}, fmt.Errorf("metrics line %d: bad counter value %q", line, fields[0])
		}
		switch {
		case name == commandsMetric:
			out.Commands[labels["command"]] += int64(v)
		case labels["route"] != "/graphql":
		case name == requestsMetric:
			out.Requests += int64(v)
		case name == requestDurationMetric:
			out.Seconds += v
		}
	}
	if err := sc.Err(); err != nil {
		return counters{}, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// parseLabels parses a label set `{a="x",b="y"}` at the start of s and
// returns the labels and what follows the closing brace. Values use the
// exposition format's escapes (\\, \" and \n).
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	i := 1 // after '{'
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return nil, "", fmt.Errorf("unterminated label set")
		}
		if s[i] == '}' {
			return labels, s[i+1:], nil
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return nil, "", fmt.Errorf("label without a value in %q", s)
		}
		name := strings.TrimSpace(s[i : i+eq])
		i += eq + 1
		if i >= len(s) || s[i] != '"' {
			return nil, "", fmt.Errorf("label %s: value is not quoted", name)
		}
		i++
		var b strings.Builder
		closed := false
		for i < len(s) {
			c := s[i]
			i++
			if c == '"' {
				closed = true
				break
			}
			if c != '\\' {
				b.WriteByte(c)
				continue
			}
			if i >= len(s) {
				break
			}
			switch e := s[i]; e {
			case 'n':
				b.WriteByte('\n')
			case '\\', '"':
				b.WriteByte(e)
			default:
				return nil, "", fmt.Errorf("label %s: unknown escape \\%c", name, e)
			}
			i++
		}
		if !closed {
			return nil, "", fmt.Errorf("label %s: unterminated value", name)
		}
		labels[name] = b.String()
	}
}

// fetchCounters reads the gateway's counters from base + "/metrics".
func fetchCounters(ctx context.Context, hc *http.Client, base string) (counters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return counters{}, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return counters{}, fmt.Errorf("get %s/metrics: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return counters{}, fmt.Errorf("get %s/metrics: %s", base, resp.Status)
	}
	m, err := parseCounters(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return counters{}, fmt.Errorf("parse %s/metrics: %w", base, err)
	}
	return m, nil
}

// delta returns after - before per command, leaving out zeros, and the total.
func delta(before, after map[string]int64) (map[string]int64, int64) {
	out := map[string]int64{}
	var total int64
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
			total += d
		}
	}
	return out, total
}
