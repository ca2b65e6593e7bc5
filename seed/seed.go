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
	"math/rand/v2"
	"strings"
	"time"

	"github.com/relatedhq/related"
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

// channelMix is the share of customers by number of channels: most use one,
// a long tail uses four or more.
var channelMix = []int{1, 1, 1, 1, 1, 1, 2, 2, 3, 4}

// Run writes o.Customers customers' traffic into s.
func Run(ctx context.Context, s store.Store, o Options) (Stats, error) {
	if o.Tenant == "" {
		o.Tenant = "demo"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	var st Stats
	best := 0
	for c := range o.Customers {
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		name := first + " " + last
		chans := pickChannels(rng, channelMix[rng.IntN(len(channelMix))])
		for _, ch := range chans {
			addr := address(ch, first, last, c)
			n := 1 + rng.IntN(6)
			if rng.IntN(10) == 0 {
				n += rng.IntN(15) // a few regulars with long histories
			}
			var lastInteraction string
			for k := range n {
				id, msgs, err := thread(ctx, s, rng, o, ch, addr, name, c, k)
				if err != nil {
					return st, err
				}
				st.Interactions++
				st.Messages += msgs
				lastInteraction = id
			}
			st.Contacts++
			if n > best {
				best, st.Sample = n, lastInteraction
			}
		}
		st.Customers++
		if o.Progress != nil && (c+1)%100 == 0 {
			fmt.Fprintf(o.Progress, "seed: %d/%d customers, %d interactions, %d messages\n", c+1, o.Customers, st.Interactions, st.Messages)
		}
	}
	return st, nil
}

func pickChannels(rng *rand.Rand, n int) []related.Channel {
	perm := rng.Perm(len(related.Channels))
	out := make([]related.Channel, n)
	for i := range n {
		out[i] = related.Channels[perm[i]]
	}
	return out
}

// address makes a plausible channel address for customer c.
func address(ch related.Channel, first, last string, c int) string {
	lf, ll := strings.ToLower(first), strings.ToLower(last)
	switch ch {
	case related.ChannelEmail:
		return fmt.Sprintf("%s.%s%d@example.com", lf, ll, c)
	case related.ChannelSMS, related.ChannelWhatsApp, related.ChannelVoice:
		return fmt.Sprintf("+4477009%05d", c)
	case related.ChannelTwitter, related.ChannelInstagram:
		return fmt.Sprintf("@%s_%s%d", lf, ll, c)
	case related.ChannelMessenger:
		return fmt.Sprintf("psid-%08d", c)
	default:
		return fmt.Sprintf("visitor-%08d", c)
	}
}

// thread writes one interaction of 1-8 messages and closes most of the
// older ones: about 5% as IGNORED or SPAM, the rest as CLOSED.
func thread(ctx context.Context, s store.Store, rng *rand.Rand, o Options, ch related.Channel, addr, name string, c, k int) (string, int, error) {
	start := o.Now.Add(-time.Duration(rng.IntN(90*24*60)) * time.Minute)
	queue := queues[rng.IntN(len(queues))]
	ref := fmt.Sprintf("%s-%d-%d", strings.ToLower(string(ch)), c, k)
	n := 1 + rng.IntN(8)
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
			Channel: ch, ThreadRef: ref, Direction: dir, Body: body, SentAt: at, Queue: queue,
			Contact: related.ContactInput{Address: addr, Name: name},
		}
		if dir == related.Outbound {
			in.Author = "Agent " + firstNames[rng.IntN(len(firstNames))]
		}
		in, err := in.Normalize(o.Now.Add(time.Hour))
		if err != nil {
			return "", 0, fmt.Errorf("seed: %w", err)
		}
		if res, err = s.RecordMessage(ctx, o.Tenant, in); err != nil {
			return "", 0, fmt.Errorf("seed: record message: %w", err)
		}
		at = at.Add(time.Duration(1+rng.IntN(180)) * time.Minute)
	}
	if roll := rng.IntN(100); roll < 70 {
		state := related.ClosedStateClosed
		switch {
		case roll < 3:
			state = related.ClosedStateIgnored
		case roll < 5:
			state = related.ClosedStateSpam
		}
		if _, err := s.CloseInteraction(ctx, o.Tenant, res.Interaction.ID, state, at); err != nil {
			return "", 0, fmt.Errorf("seed: close interaction: %w", err)
		}
	}
	return res.Interaction.ID, n, nil
}
