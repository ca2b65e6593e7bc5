package identity

import (
	"slices"
	"strings"

	"github.com/relatedhq/related"
)

// Summary says what a change of the facts does to a tenant's profiles:
// what a rule change's preview shows before it happens, and what a rule
// re-evaluation reports after.
type Summary struct {
	// Merged counts profiles made of contacts of several earlier ones;
	// Split, earlier profiles whose contacts are now in several; Created,
	// profiles of contacts that had none; Removed, earlier profiles none
	// of whose contacts is in a profile any more; Unchanged, profiles
	// with the same id and contacts as before.
	Merged, Split, Created, Removed, Unchanged int
	// ContactsMoved counts contacts whose profile changed.
	ContactsMoved int
	// Quarantined counts values that newly link nothing because too many
	// contacts hold them.
	Quarantined int
	// Suggestions counts new suggestions and conflicts.
	Suggestions int
	// Samples are some of the changes, before and after.
	Samples []SampleChange
}

// MaxSamples bounds the changes a Summary shows.
const MaxSamples = 20

// SampleChange is one change: the profiles its contacts were in, and the
// profiles they are in after.
type SampleChange struct {
	Before, After []ProfileView
}

// ProfileView is a profile as a sample shows it.
type ProfileView struct {
	ID          string
	Name        string
	Contacts    []ContactView
	Identifiers []related.ProfileIdentifier
}

// ContactView is a contact as a sample shows it.
type ContactView struct {
	ID      string
	Channel related.Channel
	Address string
	Name    string
}

// Add accumulates o into s (samples up to MaxSamples).
func (s *Summary) Add(o Summary) {
	s.Merged += o.Merged
	s.Split += o.Split
	s.Created += o.Created
	s.Removed += o.Removed
	s.Unchanged += o.Unchanged
	s.ContactsMoved += o.ContactsMoved
	s.Quarantined += o.Quarantined
	s.Suggestions += o.Suggestions
	for _, c := range o.Samples {
		if len(s.Samples) < MaxSamples {
			s.Samples = append(s.Samples, c)
		}
	}
}

// Summarize compares the stored state of in (its contacts' Profile, its
// Pairs) with what Partition decided, res.
func Summarize(in Input, res Result) Summary {
	before := map[string]string{}
	views := map[string]ContactView{}
	for _, c := range in.Contacts {
		before[c.ID] = c.Profile
		views[c.ID] = ContactView{ID: c.ID, Channel: c.Channel, Address: c.Address, Name: c.Name}
	}
	var s Summary
	groupsBefore := groups(before)
	groupsAfter := groups(res.Assignment)
	afterIDs := sortedKeys(groupsAfter)
	profiles := map[string]ProfileResult{}
	for _, p := range res.Profiles {
		profiles[p.ID] = p
	}
	sampled := map[string]bool{}
	sample := func(afterIDs, beforeIDs []string) {
		if len(s.Samples) >= MaxSamples {
			return
		}
		key := strings.Join(afterIDs, ",") + "|" + strings.Join(beforeIDs, ",")
		if sampled[key] {
			return
		}
		sampled[key] = true
		var c SampleChange
		for _, id := range beforeIDs {
			c.Before = append(c.Before, view(id, groupsBefore[id], views, nil))
		}
		for _, id := range afterIDs {
			p := profiles[id]
			c.After = append(c.After, view(id, groupsAfter[id], views, &p))
		}
		s.Samples = append(s.Samples, c)
	}
	for _, id := range afterIDs {
		members := groupsAfter[id]
		olds := distinct(members, before)
		switch {
		case len(olds) > 1:
			s.Merged++
			sample([]string{id}, olds)
		case len(olds) == 0:
			s.Created++
			sample([]string{id}, nil)
		case olds[0] == id && slices.Equal(groupsBefore[id], members):
			s.Unchanged++
		}
	}
	for _, id := range sortedKeys(groupsBefore) {
		news := distinct(groupsBefore[id], res.Assignment)
		switch {
		case len(news) > 1:
			s.Split++
			sample(news, []string{id})
		case len(news) == 0:
			s.Removed++
			sample(nil, []string{id})
		}
	}
	for c, p := range before {
		if res.Assignment[c] != p {
			s.ContactsMoved++
		}
	}
	old := map[string]bool{}
	for _, p := range in.Pairs {
		old[p.ID()] = true
	}
	for _, p := range res.Pairs {
		if !old[p.ID()] {
			s.Suggestions++
		}
	}
	return s
}

// groups inverts an assignment: profile id -> its contacts, sorted.
func groups(assignment map[string]string) map[string][]string {
	out := map[string][]string{}
	for c, p := range assignment {
		if p != "" {
			out[p] = append(out[p], c)
		}
	}
	for _, cs := range out {
		slices.Sort(cs)
	}
	return out
}

// distinct returns the distinct non-empty profiles contacts have in a.
func distinct(contacts []string, a map[string]string) []string {
	var out []string
	for _, c := range contacts {
		if p := a[c]; p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func view(id string, members []string, views map[string]ContactView, p *ProfileResult) ProfileView {
	v := ProfileView{ID: id}
	for _, c := range members {
		v.Contacts = append(v.Contacts, views[c])
	}
	if p != nil {
		v.Name, v.Identifiers = p.Name(), p.Identifiers
	}
	return v
}
