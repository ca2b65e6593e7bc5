// Package seed writes a realistic sample of contact-centre traffic into a
// store, deterministically from a seed: customers on one or several
// channels, threads of several messages in several queues, open and closed
// interactions in all three closed states. It goes through the Store
// interface, so it works on every adapter.
package seed

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Options configure Run.
type Options struct {
	Tenant    string
	Customers int
	Seed      uint64
	// Now anchors the generated timeline: the newest messages are from
	// shortly before it.
	Now time.Time
	// Progress, if set, receives a line every few hundred customers.
	Progress io.Writer
}

// Stats is what Run wrote.
type Stats struct {
	Customers, Contacts, Interactions, Messages int
	// Sample is an interaction with a populated Related panel, to try first.
	Sample string
	// contacts are the distinct contacts written (households share some).
	contacts map[string]bool
}

var (
	firstNames = []string{"Ann", "Bilal", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Viktor", "Wen", "Yusuf", "Zoe"}
	lastNames  = []string{"Andersen", "Baker", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Kowalski", "Lopez", "Murphy", "Novak", "Okafor", "Petrov", "Rossi", "Silva", "Tanaka", "Weber"}
	queues     = []string{"Billing", "Technical Support", "Sales", "Returns", "VIP"}
	openers    = []string{
		"Hi, my order %d has not arrived yet. Can you check where it is?",
		"Hello! I was charged twice for invoice %d, please refund one of them.",
		"Can I change the delivery address for order %d?",
		"The router I bought (order %d) keeps dropping the connection every few minutes.",
		"I'd like to return the shoes from order %d, they are too small.",
		"Is there a discount if I upgrade my plan before the end of the month? Account %d.",
		"Your app logs me out every time I open it. Customer number %d.",
		"WIN A FREE CRUISE!!! Click here now %d",
	}
	replies = []string{
		"Thanks for reaching out! Let me look into that for you.",
		"I've checked your account and can see the issue. I'm fixing it now.",
		"Could you confirm the email address on the account, please?",
		"All done: you should see the change within 24 hours.",
		"I'm sorry for the trouble. I've escalated this to our specialists.",
	}
	followUps = []string{
		"Great, thank you so much!",
		"It's still not working, unfortunately.",
		"Sure, it's the one I'm writing from.",
		"Any update on this?",
		"Perfect, that solved it.",
	}
)

// Rules is the linking configuration the sample uses: the default email
// rule, phone numbers (UK numbering by default) and a customer id that a
// profile may hold only one of, merging only when the CRM vouches for it
// (a customer typing someone else's id makes a suggestion, not a merge).
var Rules = []identity.Rule{
	{Attribute: "phone", Normalizer: identity.NormalizePhone, Enabled: true, Priority: 50, DefaultRegion: "GB",
		MaxContactsPerValue: identity.DefaultMaxContactsPerValue},
	{Attribute: "customerId", Normalizer: identity.NormalizeCaseInsensitive, Enabled: true, Priority: 200, MaxPerProfile: 1,
		AutoMerge: identity.AutoMergeAttested, MaxContactsPerValue: identity.DefaultMaxContactsPerValue},
}

// Region is the sample tenant's default region: its customers write UK
// numbers without the country code.
const Region = "GB"

// workflow is who the sample's integration is: it records the messages
// and vouches for what the website and the CRM know.
var workflow = related.Actor{Name: "demo workflow", Role: related.RoleIntegration}

// customer is one person of the sample, on one or more channels.
type customer struct {
	n                            int
	first, last                  string
	email, phone, customerID     string
	channels                     []related.Channel
	giveEmail, giveID, greetName bool
	// signedIn customers chat from the website's account pages: the
	// website vouches for their email. The others type it.
	signedIn bool
	// typedID is a customer id the customer typed (someone else's, by
	// mistake): claimed, where the CRM's are attested.
	typedID bool
}

// Run writes o.Customers customers' traffic into s: most customers on one
// channel and a long tail on four or more, 1 to 40 interactions each
// (log-uniform), 1 to 6 messages per interaction, 15% of interactions
// open, 5% closed as IGNORED or SPAM, the rest CLOSED. Customers on
// channels without an attested identity (web chat, social) mostly give
// their email, and some their customer id; 2% share a phone number with
// another customer (a household: their profiles merge) and 1% give
// another customer's id (a conflict). The same seed writes the same data.
// A store that offers store.Bulker gets batches of customers in one
// transaction.
func Run(ctx context.Context, s store.Store, o Options) (Stats, error) {
	if o.Tenant == "" {
		o.Tenant = "demo"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if err := ensureRules(ctx, s, o.Tenant); err != nil {
		return Stats{}, err
	}
	if cur, err := s.TenantSettings(ctx, o.Tenant); err != nil {
		return Stats{}, fmt.Errorf("seed: read settings: %w", err)
	} else if cur.DefaultRegion == "" {
		if _, err := s.SetTenantSettings(ctx, o.Tenant, related.TenantSettings{DefaultRegion: Region}); err != nil {
			return Stats{}, fmt.Errorf("seed: set region: %w", err)
		}
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	st := Stats{contacts: map[string]bool{}}
	best := 0
	start := time.Now()
	const perBatch = 100
	for c0 := 0; c0 < o.Customers; c0 += perBatch {
		batch := func(ctx context.Context) error {
			for c := c0; c < min(c0+perBatch, o.Customers); c++ {
				cu := newCustomer(rng, c)
				n, sample, err := cu.write(ctx, s, rng, o, &st)
				if err != nil {
					return err
				}
				if len(cu.channels)*100+n > best {
					best, st.Sample = len(cu.channels)*100+n, sample
				}
				st.Customers++
			}
			return nil
		}
		var err error
		if b, ok := s.(store.Bulker); ok {
			err = b.Bulk(ctx, batch)
		} else {
			err = batch(ctx)
		}
		if err != nil {
			return st, err
		}
		if o.Progress != nil && (st.Customers%1000 < perBatch || st.Customers == o.Customers) {
			el := time.Since(start).Seconds()
			fmt.Fprintf(o.Progress, "seed: %d/%d customers, %d interactions, %d messages (%.0f interactions/s)\n",
				st.Customers, o.Customers, st.Interactions, st.Messages, float64(st.Interactions)/max(el, 0.001))
		}
	}
	return st, nil
}

// ensureRules creates the sample's rules the tenant does not have yet.
func ensureRules(ctx context.Context, s store.Store, tenant string) error {
	have, err := s.ProfileRules(ctx, tenant)
	if err != nil {
		return fmt.Errorf("seed: read rules: %w", err)
	}
	for _, r := range Rules {
		if slices.ContainsFunc(have, func(h identity.Rule) bool { return h.Attribute == r.Attribute }) {
			continue
		}
		r, err := r.Validate()
		if err != nil {
			return fmt.Errorf("seed: rule %s: %w", r.Attribute, err)
		}
		if _, err := s.SaveProfileRule(ctx, tenant, r); err != nil {
			return fmt.Errorf("seed: save rule %s: %w", r.Attribute, err)
		}
	}
	return nil
}

// channelCounts is the share of customers by number of channels.
var channelCounts = []int{1, 1, 1, 1, 1, 1, 2, 2, 3, 4, 5, 6}

func newCustomer(rng *rand.Rand, c int) *customer {
	cu := &customer{
		n:     c,
		first: firstNames[rng.IntN(len(firstNames))], last: lastNames[rng.IntN(len(lastNames))],
		giveEmail: rng.IntN(10) < 8, giveID: rng.IntN(10) < 3, signedIn: rng.IntN(10) < 7,
	}
	cu.email = fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(cu.first), strings.ToLower(cu.last), c)
	cu.phone = fmt.Sprintf("+447%09d", c)
	cu.customerID = fmt.Sprintf("CU-%07d", c)
	switch roll := rng.IntN(100); {
	case roll < 2 && c > 0:
		cu.phone = fmt.Sprintf("+447%09d", c-1) // a household sharing a line
	case roll < 3 && c > 0:
		cu.customerID, cu.giveID, cu.typedID = fmt.Sprintf("CU-%07d", rng.IntN(c)), true, true // a mistyped id: a suggestion
	}
	cu.channels = pickChannels(rng, channelCounts[rng.IntN(len(channelCounts))])
	return cu
}

// contactFor is the customer's contact input on channel ch.
func (cu *customer) contactFor(ch related.Channel) related.ContactInput {
	in := related.ContactInput{Name: cu.first + " " + cu.last}
	lf, ll := strings.ToLower(cu.first), strings.ToLower(cu.last)
	switch ch {
	case related.ChannelEmail:
		in.Address = cu.email
	case related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice:
		in.Address = cu.phone
	case related.ChannelTwitter, related.ChannelInstagram:
		in.Address = fmt.Sprintf("@%s_%s%d", lf, ll, cu.n)
	case related.ChannelMessenger:
		in.Address = fmt.Sprintf("psid-%08d", cu.n)
	default:
		in.Address = fmt.Sprintf("visitor-%08d", cu.n)
	}
	if identity.AddressAttribute(ch) != "email" && cu.giveEmail {
		in.Attributes = append(in.Attributes, related.Attribute{Key: "email", Value: cu.email, Attested: cu.signedIn,
			By: workflow.Name, Role: workflow.Role})
	}
	if cu.giveID {
		in.Attributes = append(in.Attributes, related.Attribute{Key: "customerId", Value: cu.customerID, Attested: !cu.typedID,
			By: workflow.Name, Role: workflow.Role})
	}
	return in
}

// write records the customer's interactions and returns how many, and one
// of them to show as a sample.
func (cu *customer) write(ctx context.Context, s store.Store, rng *rand.Rand, o Options, st *Stats) (int, string, error) {
	// Log-uniform between 1 and 40: most customers have a few
	// interactions, some have dozens.
	n := min(40, int(math.Exp(rng.Float64()*math.Log(41))))
	n = max(n, 1)
	var sample string
	for k := range n {
		ch := cu.channels[rng.IntN(len(cu.channels))]
		id, contact, msgs, err := thread(ctx, s, rng, o, ch, cu.contactFor(ch), cu.n, k)
		if err != nil {
			return 0, "", err
		}
		st.Interactions++
		st.Messages += msgs
		if !st.contacts[contact] {
			st.contacts[contact] = true
			st.Contacts++ // counted once: a household's shared line is one contact
		}
		sample = id
	}
	return n, sample, nil
}

func pickChannels(rng *rand.Rand, n int) []related.Channel {
	perm := rng.Perm(len(related.Channels))
	out := make([]related.Channel, n)
	for i := range n {
		out[i] = related.Channels[perm[i]]
	}
	return out
}

// thread writes one interaction of 1-6 messages and closes most of them:
// 5% as IGNORED or SPAM, 80% as CLOSED; 15% stay open.
func thread(ctx context.Context, s store.Store, rng *rand.Rand, o Options, ch related.Channel, contact related.ContactInput, c, k int) (string, string, int, error) {
	start := o.Now.Add(-time.Duration(rng.IntN(180*24*60)) * time.Minute)
	queue := queues[rng.IntN(len(queues))]
	ref := fmt.Sprintf("%s-%d-%d", strings.ToLower(string(ch)), c, k)
	n := 1 + rng.IntN(6)
	var res *store.RecordResult
	at := start
	for m := range n {
		body := fmt.Sprintf(openers[rng.IntN(len(openers))], 100000+rng.IntN(900000))
		dir := related.Inbound
		switch {
		case m == 0:
		case m%2 == 1:
			dir, body = related.Outbound, replies[rng.IntN(len(replies))]
		default:
			body = followUps[rng.IntN(len(followUps))]
		}
		in := related.RecordMessage{
			Channel: ch, ThreadRef: ref, Direction: dir, Body: body, SentAt: at, Queue: queue, Contact: contact, By: workflow,
		}
		if dir == related.Outbound {
			in.Author = "Agent " + firstNames[rng.IntN(len(firstNames))]
		}
		in, err := in.Normalize(o.Now.Add(time.Hour))
		if err != nil {
			return "", "", 0, fmt.Errorf("seed: %w", err)
		}
		if res, err = s.RecordMessage(ctx, o.Tenant, in); err != nil {
			return "", "", 0, fmt.Errorf("seed: record message: %w", err)
		}
		contact.Attributes = nil // said once is enough
		at = at.Add(time.Duration(1+rng.IntN(180)) * time.Minute)
	}
	if roll := rng.IntN(100); roll >= 15 {
		state := related.ClosedStateClosed
		switch {
		case roll < 18:
			state = related.ClosedStateIgnored
		case roll < 20:
			state = related.ClosedStateSpam
		}
		if _, err := s.CloseInteraction(ctx, o.Tenant, res.Interaction.ID, state, at); err != nil {
			return "", "", 0, fmt.Errorf("seed: close interaction: %w", err)
		}
	}
	return res.Interaction.ID, res.Contact.ID, n, nil
}
