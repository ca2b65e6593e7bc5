package identity

import (
	"io"
	"slices"
	"strconv"
)

// EventKind names what happened to a profile.
type EventKind string

// The kinds of profile history events.
const (
	EventLinked      EventKind = "LINKED"      // a contact joined a profile (or made one)
	EventUnlinked    EventKind = "UNLINKED"    // a contact left its profile
	EventMerged      EventKind = "MERGED"      // profiles became one
	EventSplit       EventKind = "SPLIT"       // a profile became several
	EventSuggested   EventKind = "SUGGESTED"   // a shared value suggests a merge
	EventConfirmed   EventKind = "CONFIRMED"   // an admin confirmed a suggestion or conflict
	EventDismissed   EventKind = "DISMISSED"   // an admin kept two profiles apart
	EventQuarantined EventKind = "QUARANTINED" // a value stopped linking: too many contacts hold it, or an admin blocked it
	EventReleased    EventKind = "RELEASED"    // a quarantined value links again
	EventRenamed     EventKind = "RENAMED"     // an admin named the profile
)

// Valid reports whether k is a known kind.
func (k EventKind) Valid() bool {
	switch k {
	case EventLinked, EventUnlinked, EventMerged, EventSplit, EventSuggested, EventConfirmed,
		EventDismissed, EventQuarantined, EventReleased, EventRenamed:
		return true
	}
	return false
}

// MarshalGQL writes k as a GraphQL enum value.
func (k EventKind) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL reads k from a GraphQL enum value.
func (k *EventKind) UnmarshalGQL(v any) error {
	return unmarshalEnum(v, k, EventKind.Valid, "ProfileEventKind")
}

// Event is one entry of profiles' history, without its actor and time
// (the write that caused it adds them).
type Event struct {
	Kind EventKind
	// Profiles are the profiles involved: for MERGED the result first,
	// then those merged into it; for SPLIT the profile split first, then
	// the parts; otherwise the profile concerned (and, for a pair, the
	// other).
	Profiles []string
	// Contact is the contact concerned, if one is.
	Contact string
	// Identifier is the value concerned, if one is.
	Identifier Identifier
}

// history lists what Partition changed: contacts that joined or left
// profiles, merges, splits and new suggestions.
func history(contacts []ContactFacts, res Result, joined []Claim, profileOf []string, oldPairs []Pair, outside map[string]string) []Event {
	var out []Event
	was := make(map[string]string, len(contacts))
	for _, c := range contacts {
		was[c.ID] = c.Profile
	}
	// Merges: a new profile holding contacts of several old ones.
	for _, p := range res.Profiles {
		var olds []string
		for _, id := range p.Contacts {
			if o := was[id]; o != "" && !slices.Contains(olds, o) {
				olds = append(olds, o)
			}
		}
		slices.Sort(olds)
		if len(olds) > 1 {
			out = append(out, Event{Kind: EventMerged, Profiles: append([]string{p.ID}, without(olds, p.ID)...)})
		}
	}
	// Splits: an old profile whose contacts are now in several.
	parts := map[string][]string{}
	var olds []string
	for i, c := range contacts {
		if c.Profile == "" {
			continue
		}
		if _, ok := parts[c.Profile]; !ok {
			olds = append(olds, c.Profile)
		}
		if !slices.Contains(parts[c.Profile], profileOf[i]) {
			parts[c.Profile] = append(parts[c.Profile], profileOf[i])
		}
	}
	slices.Sort(olds)
	for _, o := range olds {
		ps := parts[o]
		if len(ps) > 1 {
			slices.Sort(ps)
			out = append(out, Event{Kind: EventSplit, Profiles: append([]string{o}, ps...)})
		}
	}
	// Contacts that joined a profile from none, or left one for none.
	for i, c := range contacts {
		now := profileOf[i]
		switch {
		case c.Profile == now:
		case c.Profile == "":
			out = append(out, Event{Kind: EventLinked, Profiles: []string{now}, Contact: c.ID, Identifier: joined[i].Identifier})
		case now == "":
			out = append(out, Event{Kind: EventUnlinked, Profiles: []string{c.Profile}, Contact: c.ID})
		}
	}
	// New suggestions and conflicts.
	for _, p := range res.Pairs {
		if slices.ContainsFunc(oldPairs, func(o Pair) bool { return o.ID() == p.ID() }) {
			continue
		}
		var ps []string
		for _, c := range []string{p.A, p.B} {
			id, ok := res.Assignment[c]
			if !ok {
				id = outside[c]
			}
			if id != "" {
				ps = append(ps, id)
			}
		}
		out = append(out, Event{Kind: EventSuggested, Profiles: ps, Identifier: p.Identifier})
	}
	return out
}

func without(ids []string, id string) []string {
	return slices.DeleteFunc(slices.Clone(ids), func(x string) bool { return x == id })
}
