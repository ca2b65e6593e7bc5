package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/operation"
	"github.com/relatedhq/related/server"
	"github.com/relatedhq/related/store"
	"github.com/relatedhq/related/store/sqlite"
)

// planPair is two gateways on one database: one answers registered
// operations with their compiled plans, the other runs everything through
// gqlgen (the reference).
type planPair struct {
	t               *testing.T
	st              *sqlite.Store
	planned, gqlgen string // base URLs
	key             string
	metrics         func() string
}

func newPlanPair(t *testing.T) *planPair {
	t.Helper()
	return newPlanPairWith(t, server.Limits{RatePerSecond: -1})
}

func newPlanPairWith(t *testing.T, limits server.Limits) *planPair {
	t.Helper()
	cmds := new(store.Commands)
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Commands: cmds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := server.Options{Store: st, Commands: cmds, Limits: limits, KeyCacheTTL: time.Minute}
	planned := httptest.NewServer(server.New(opts))
	t.Cleanup(planned.Close)
	opts.NoPlans = true
	reference := httptest.NewServer(server.New(opts))
	t.Cleanup(reference.Close)
	secret, k, err := store.NewKey(server.DemoTenant, related.RoleAgent, "plan test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	p := &planPair{t: t, st: st, planned: planned.URL, gqlgen: reference.URL, key: secret}
	p.metrics = func() string {
		_, b := p.get(planned.URL + "/metrics")
		return string(b)
	}
	return p
}

// post sends body to base's /graphql and returns the status and the body
// of the answer.
func (p *planPair) post(base string, body []byte, accept string) (int, []byte) {
	p.t.Helper()
	status, b, _ := p.send(base, body, accept)
	return status, b
}

// postFull is post with the answer's header.
func (p *planPair) postFull(base string, body []byte) (int, []byte, http.Header) {
	return p.send(base, body, "")
}

func (p *planPair) send(base string, body []byte, accept string) (int, []byte, http.Header) {
	req, _ := http.NewRequest("POST", base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Error(err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Error(err)
	}
	return resp.StatusCode, b, resp.Header
}

// get fetches url.
func (p *planPair) get(url string) (int, []byte) {
	resp, err := http.Get(url)
	if err != nil {
		p.t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// same sends body to both gateways and fails unless the answers are the
// same bytes with the same status.
func (p *planPair) same(what string, body []byte, accept string) []byte {
	p.t.Helper()
	sa, a := p.post(p.planned, body, accept)
	sb, b := p.post(p.gqlgen, body, accept)
	// Request ids are random by design: the one thing two answers may differ in.
	a, b = requestIDs.ReplaceAll(a, []byte(`"requestId":"-"`)), requestIDs.ReplaceAll(b, []byte(`"requestId":"-"`))
	if sa != sb || !bytes.Equal(a, b) {
		p.t.Fatalf("%s: the plan answers differently from gqlgen\nplan   (%d): %s\ngqlgen (%d): %s\nfirst difference at byte %d",
			what, sa, a, sb, b, firstDiff(a, b))
	}
	return a
}

var requestIDs = regexp.MustCompile(`"requestId":"[0-9a-f]+"`)

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// planTexts are bodies, names and queues chosen to exercise every escape
// and every rule of the preview: JSON's and gqlgen's escapes, HTML
// characters encoding/json escapes, the line separators, white space runs,
// control characters, multi-byte characters, and exact lengths around the
// preview's cut.
var planTexts = []string{
	"Hi, I was charged twice for order 1234.",
	`He said "stop" \ and <b>left</b> & never came back`,
	"line one\nline two\r\n\ttabbed\x01soh\x1f\x7f del",
	"separators \u2028 and \u2029 and \u0085 next-line",
	"   \n\t  leading and trailing white space   \n ",
	"emoji 😀👍🏽 and accents éàü and CJK 漢字 and RTL שלום",
	strings.Repeat("x", related.PreviewLength),
	strings.Repeat("y", related.PreviewLength+1),
	strings.Repeat("é", related.PreviewLength-1) + " z",
	strings.Repeat("word ", 40) + "…",
	"\ufffd replacement char and \u00a0 nbsp and \u3000 ideographic space",
	"<script>alert('x')</script>",
}

// planNames are contact names, authors and queue names (plain text: no
// control characters, which the API refuses there).
var planNames = []string{"", "Ann Example", `Quote "Q" Back\slash`, "<Tag> & Co", "Zoë 😀", "sep\u2028arator"}

// longBody is over related.InlineBodyLength: the interaction keeps its
// start, and the panel shows the whole message.
func longBody(rng *rand.Rand, i int) string {
	var b strings.Builder
	if i%3 == 0 {
		// A start that is all white space: the preview comes from what
		// the kept copy cut off.
		b.WriteString(strings.Repeat(" \n", related.InlineBodyLength))
	}
	for k := 0; k < 3 || b.Len() <= related.InlineBodyLength+100; k++ {
		b.WriteString(planTexts[rng.IntN(len(planTexts))])
		b.WriteString(" ")
	}
	return b.String()
}

// TestPlanMatchesGqlgen is the compiled plan's differential test: over
// randomized data (profiles spanning channels and contacts alone,
// closed states, interactions without a queue, long bodies whose preview
// comes from the whole message, every escape) and every variable the
// operation takes (page sizes, absent and null, ids of other types,
// malformed and unknown ids, values gqlgen refuses), the plan's answer
// is byte for byte gqlgen's, errors and nulls included, under both media
// types. It also checks that the plan, not gqlgen, answered.
func TestPlanMatchesGqlgen(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 16))
	p := newPlanPair(t)
	ctx := context.Background()
	if _, err := p.st.SaveProfileRule(ctx, server.DemoTenant, identity.Rule{Attribute: "customerId", Normalizer: identity.NormalizeExact,
		AutoMerge: identity.AutoMergeAny, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	channels := related.Channels
	var ids []string
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	customers := 12
	if testing.Short() {
		customers = 6
	}
	for c := range customers {
		// Some customers on one channel, others on several, linked by a
		// customer id into one profile.
		nch := 1 + rng.IntN(4)
		for k := range 1 + rng.IntN(12) {
			ch := channels[(c+k%nch)%len(channels)]
			addr := fmt.Sprintf("visitor-%d-%d", c, k%nch)
			switch ch {
			case related.ChannelEmail:
				addr = fmt.Sprintf("c%d.%d@example.com", c, k%nch)
			case related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice:
				addr = fmt.Sprintf("+1202555%02d%02d", c, k%nch)
			}
			body := planTexts[rng.IntN(len(planTexts))]
			longForSure := c == 1 && k == 0 // whatever the seed, one answer holds a long body
			if rng.IntN(6) == 0 || longForSure {
				body = longBody(rng, k)
			}
			in := related.RecordMessage{
				Channel: ch, ThreadRef: fmt.Sprintf("t-%d-%d", c, k), Direction: []related.Direction{related.Inbound, related.Outbound}[rng.IntN(2)],
				Body: body, SentAt: at.Add(time.Duration(rng.IntN(100000)) * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Millisecond),
				Author:  planNames[rng.IntN(len(planNames))],
				Contact: related.ContactInput{Address: addr, Name: planNames[rng.IntN(len(planNames))]},
			}
			if rng.IntN(4) > 0 {
				in.Queue = planNames[1+rng.IntN(len(planNames)-1)]
			}
			if c == 0 {
				in.Contact.Name, in.Author = "", "" // nulls for sure
			}
			if nch > 1 {
				in.Contact.Attributes = []related.Attribute{{Key: "customerId", Value: fmt.Sprint("cust-", c), Attested: true}}
			}
			in, err := in.Normalize(time.Now())
			if err != nil {
				t.Fatalf("%.200q: %v", body, err)
			}
			res, err := p.st.RecordMessage(ctx, server.DemoTenant, in)
			if err != nil {
				t.Fatal(err)
			}
			// A second message on some threads, so the kept copy is not the first.
			if rng.IntN(3) == 0 && !longForSure {
				in.Body, in.SentAt = planTexts[rng.IntN(len(planTexts))], in.SentAt.Add(time.Minute)
				if _, err := p.st.RecordMessage(ctx, server.DemoTenant, in); err != nil {
					t.Fatal(err)
				}
			}
			id := res.Interaction.ID
			if rng.IntN(3) == 0 {
				state := []related.ClosedState{related.ClosedStateClosed, related.ClosedStateIgnored, related.ClosedStateSpam}[rng.IntN(3)]
				if _, err := p.st.CloseInteraction(ctx, server.DemoTenant, id, state, in.SentAt.Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			ids = append(ids, related.GlobalID(related.NodeInteraction, id))
		}
	}
	firsts := []any{"absent", nil, 0, 1, 2, 5, 20, 100, 101, -1, "7", "x", 2.5, true}
	others := []string{"", "not base64!", related.GlobalID(related.NodeContact, "x1"), related.GlobalID(related.NodeInteraction, "nosuch"), "SW50ZXJhY3Rpb246"}
	before := planRuns(p.metrics())
	answered := 0
	var seen strings.Builder
	for i, id := range append(ids, others...) {
		for _, first := range firsts {
			if i >= len(ids)/2 && rng.IntN(3) > 0 && first != "absent" {
				continue // the later half with fewer variations
			}
			vars := map[string]any{"id": id}
			if first != "absent" {
				vars["first"] = first
			}
			body, _ := json.Marshal(map[string]any{"query": operation.OpenInteraction, "variables": vars})
			accept := []string{"", "application/json", "application/graphql-response+json"}[rng.IntN(3)]
			seen.Write(p.same(fmt.Sprintf("id %s first %v accept %q", id, first, accept), body, accept))
			if _, ok := first.(int); ok && i < len(ids) && first.(int) <= 100 && first.(int) >= 0 {
				answered++
			}
		}
	}
	// The same through the operation's name.
	body, _ := json.Marshal(map[string]any{"query": operation.OpenInteraction, "operationName": "Open", "variables": map[string]any{"id": ids[0]}})
	p.same("operationName Open", body, "")
	// The data covered what it should: both scopes, every closed state,
	// nulls, long bodies, refusals.
	for _, want := range []string{`"scope":"PROFILE"`, `"scope":"CHANNEL"`, `"closedState":"SPAM"`, `"closedState":"IGNORED"`, `"closedState":null`,
		`"queue":null`, `"name":null`, `"author":null`, `"lastMessage":{"id"`, `"interaction":null`, `"edges":[]`, `"endCursor":null`,
		`\u003c`, `\u2028`, `\u0001`, `"code":"INVALID"`} {
		if !strings.Contains(seen.String(), want) {
			t.Errorf("no answer holds %s: the data does not exercise it", want)
		}
	}
	if !strings.Contains(seen.String(), strings.Repeat(`\n `, 100)) && !strings.Contains(seen.String(), strings.Repeat(` \n`, 100)) {
		t.Errorf("no answer holds a long body")
	}
	after := planRuns(p.metrics())
	if got := after["answered"] - before["answered"]; got < float64(answered) {
		t.Fatalf("the plan answered %v operations, want at least %d (declined %v)", got, answered, after["declined"]-before["declined"])
	}
	t.Logf("%d interactions; the plan answered %v operations and declined %v", len(ids), after["answered"]-before["answered"], after["declined"]-before["declined"])
}

// planRuns reads related_compiled_plan_runs_total by outcome.
func planRuns(metrics string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "related_compiled_plan_runs_total{") {
			continue
		}
		var v float64
		fields := strings.Fields(line)
		fmt.Sscan(fields[len(fields)-1], &v)
		for _, o := range []string{"answered", "declined"} {
			if strings.Contains(line, `outcome="`+o+`"`) {
				out[o] += v
			}
		}
	}
	return out
}

// TestPlanKeepsTheResponseBudget: the response byte budget
// (--max-response-bytes) holds for answers a plan writes, and where it
// decides an answer (near the limit the plan leaves the answer to gqlgen,
// which counts field by field) the answers are still gqlgen's.
func TestPlanKeepsTheResponseBudget(t *testing.T) {
	const limit = 3000
	p := newPlanPairWith(t, server.Limits{RatePerSecond: -1, MaxResponseBytes: limit})
	ctx := context.Background()
	var ids []string
	at := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for i := range 30 {
		in, err := related.RecordMessage{Channel: related.ChannelEmail, ThreadRef: fmt.Sprint("b-", i), Direction: related.Inbound,
			Body: "budget" + strings.Repeat(" words", 10*i), SentAt: at.Add(time.Duration(i) * time.Minute),
			Contact: related.ContactInput{Address: "budget@example.com"}}.Normalize(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.st.RecordMessage(ctx, server.DemoTenant, in)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, related.GlobalID(related.NodeInteraction, res.Interaction.ID))
	}
	tooLarge, data := 0, 0
	for _, id := range ids {
		for _, first := range []int{0, 1, 3, 10, 30} {
			body, _ := json.Marshal(map[string]any{"query": operation.OpenInteraction, "variables": map[string]any{"id": id, "first": first}})
			a := p.same(fmt.Sprintf("id %s first %d", id, first), body, "")
			switch {
			case strings.Contains(string(a), `"code":"RESPONSE_TOO_LARGE"`):
				tooLarge++
			case strings.HasPrefix(string(a), `{"data":{"interaction":{`):
				data++
				if len(a) > limit {
					t.Fatalf("an answer of %d bytes passed a budget of %d", len(a), limit)
				}
			}
		}
	}
	runs := planRuns(p.metrics())
	if tooLarge == 0 || data == 0 || runs["answered"] == 0 {
		t.Fatalf("%d answers refused as too large, %d answered (%v by the plan): the test does not reach both sides of the limit", tooLarge, data, runs["answered"])
	}
	t.Logf("%d refused as too large, %d answered, %v of them by the plan", tooLarge, data, runs["answered"])
}
