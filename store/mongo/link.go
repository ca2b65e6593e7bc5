package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"go.mongodb.org/mongo-driver/v2/bson"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/relatedhq/related"
	"github.com/relatedhq/related/identity"
	"github.com/relatedhq/related/store"
)

// Linking without transactions (DESIGN.md section 5). The decisions are
// identity.Decide's; this file gathers the facts it decides on and applies
// its plan with single-document writes, ordered so that concurrent writers
// on a real MongoDB end where the same writes applied one by one would:
//
//   - Every decision with one winner is a unique-index insert: a profile
//     claims an identifier by inserting its identifiers document (_id
//     derived from tenant, key and value), and a profile is merged away by
//     inserting its merges document (_id derived from the loser). A writer
//     whose insert is refused lost a race: it re-reads and re-plans.
//   - The contact is moved by a write filtered on its version, so of two
//     writers linking one contact the one that read older state re-plans.
//   - A merge sets the loser's mergedInto before it moves anything, and
//     every writer that put something into a profile reads the profile
//     after its writes (the summary refresh, itself filtered on the
//     profile's version): if the profile was merged away meanwhile, the
//     writer finishes the merge, moving what it wrote. Either the merge's
//     moves came after the writer's writes and moved them, or the writer
//     sees mergedInto and moves them itself.
//   - A merge's moves are idempotent updateManys, so anyone may redo them:
//     a writer that meets a profile with mergedInto set (a merge in flight,
//     or one a crash left half-done) finishes it before planning, and the
//     first write of a tenant after a start finishes the tenant's merges
//     whose document is not marked done.
//   - The winner of a merge is always the older profile (identity.Decide;
//     MergeProfiles too), so merge pointers never form a cycle.
//
// A contact's interactions follow the contact: they are moved before the
// contact document (so a crash between the two leaves the contact unlinked
// and its next write links it again) and after it (so an interaction
// created concurrently with the contact's old profile is caught). A
// RecordMessage that creates an interaction reads the contact again after
// the insert and moves the interaction if the contact moved meanwhile.

const (
	// maxLinkAttempts bounds how often one write re-plans its linking
	// after losing a race; more means something keeps changing the same
	// facts, which is worth an error rather than a spin.
	maxLinkAttempts = 8
	// maxChain bounds the merge chains followed to a root. Merges re-point
	// the profiles that pointed at their loser, so chains stay short.
	maxChain = 64
	// ruleTTL is how long a replica trusts its copy of a tenant's rules.
	// Rules change through any replica; the others see a change within
	// this time, and the re-evaluation it starts corrects what they linked
	// meanwhile.
	ruleTTL = 5 * time.Second
)

// errReplan says the state a linking plan was made on changed before the
// plan was applied (a claim or merge lost its race, the contact moved): the
// caller re-reads and plans again.
var errReplan = errors.New("mongo: linking state changed; re-plan")

// profileState is what the profile code of one Store keeps in memory: the
// rules cache and which tenants' unfinished merges it has looked for. It
// lives beside the Store (profileStateOf) rather than in it.
type profileState struct {
	mu           sync.Mutex
	rules        map[string]cachedRules
	recovered    map[string]bool
	recoveredAll bool
}

type cachedRules struct {
	rules []identity.Rule
	at    time.Time
}

// profileStates maps each Store to its profileState. The key is a weak
// pointer, and a cleanup drops the entry when the Store is collected.
var profileStates sync.Map // weak.Pointer[Store] -> *profileState

func (s *Store) profileState() *profileState {
	k := weak.Make(s)
	if v, ok := profileStates.Load(k); ok {
		return v.(*profileState)
	}
	v, loaded := profileStates.LoadOrStore(k, &profileState{rules: map[string]cachedRules{}, recovered: map[string]bool{}})
	if !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[Store]) { profileStates.Delete(k) }, k)
	}
	return v.(*profileState)
}

func (st *profileState) cached(tenant string) ([]identity.Rule, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.rules[tenant]
	if !ok || time.Since(c.at) > ruleTTL {
		return nil, false
	}
	return c.rules, true
}

func (st *profileState) put(tenant string, r []identity.Rule) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.rules[tenant] = cachedRules{rules: r, at: time.Now()}
}

func (st *profileState) drop(tenant string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.rules, tenant)
}

func (st *profileState) isRecovered(tenant string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.recoveredAll || st.recovered[tenant]
}

func (st *profileState) markRecovered(tenant string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if tenant == "" {
		st.recoveredAll = true
		return
	}
	st.recovered[tenant] = true
}

func (s *Store) coll(name string) *mongodriver.Collection { return s.db.Collection(name) }

// Derived ids of the profile documents.
func identifierID(tenant string, id related.Identifier) string {
	return related.DerivedID(tenant, "identifier", id.Key, id.Value)
}
func mergeID(tenant, loser string) string { return related.DerivedID(tenant, "merge", loser) }
func doNotLinkID(tenant, contact, profile string) string {
	return related.DerivedID(tenant, "do-not-link", contact, profile)
}
func evaluationID(tenant string) string { return related.DerivedID(tenant, "rule-evaluation") }

// linkID is the id of a rule link: the same link written twice (a re-plan
// after a lost race) is one document.
func linkID(tenant, profile, contact string, id related.Identifier) string {
	return related.DerivedID(tenant, "link", profile, contact, id.Key, id.Value)
}

// pairOf names two profiles whatever their order.
func pairOf(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "|" + b
}

// olderDoc orders profiles as identity.Decide does: the merge winner
// first.
func olderDoc(a, b *profileDoc) bool {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c < 0
	}
	return a.ID < b.ID
}

// everyBatch is the batch size of findEvery: its reads return a profile's
// members, links or interactions, which a batch this size holds in one
// command on both backends (FerretDB closes a cursor only when a batch
// comes back short of the batch size; see findAll).
const everyBatch = 1000

// findEvery runs one find and decodes every document it returns.
func findEvery[D any](ctx context.Context, c *mongodriver.Collection, filter bson.D, opts *options.FindOptionsBuilder) ([]D, error) {
	if opts == nil {
		opts = options.Find()
	}
	opts.SetBatchSize(everyBatch)
	cur, err := c.Find(ctx, filter, opts)
	if err != nil {
		return nil, err
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// onlyDuplicates reports whether err is a bulk insert's refusal of some
// documents as duplicates and nothing else.
func onlyDuplicates(err error) (int, bool) {
	var bwe mongodriver.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return 0, false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return 0, false
		}
	}
	return len(bwe.WriteErrors), true
}

// insertIgnoringDuplicates inserts docs, each on its own: the ones that
// exist already are left as they are.
func insertIgnoringDuplicates(ctx context.Context, c *mongodriver.Collection, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := c.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if _, dup := onlyDuplicates(err); err != nil && !dup {
		return err
	}
	return nil
}

func idIn(ids []string) bson.D { return bson.D{{Key: "$in", Value: ids}} }

// storedRules reads a tenant's rule documents, deleted ones included.
func (s *Store) storedRules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	docs, err := findEvery[ruleDoc](ctx, s.coll(collProfileRules), bson.D{{Key: "tenant", Value: tenant}}, nil)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	out := make([]identity.Rule, len(docs))
	for i, d := range docs {
		out[i] = identity.Rule{
			ID: d.ID, Tenant: d.Tenant, Attribute: d.Attribute, Normalizer: identity.Normalizer(d.Normalizer),
			Enabled: d.Enabled, Priority: d.Priority, MaxPerProfile: d.MaxPerProfile, BlockedValues: d.BlockedValues,
			DefaultRegion: d.DefaultRegion, Deleted: d.Deleted, CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		}
	}
	return out, nil
}

// rules returns the tenant's effective rules, from the cache when it is
// fresh.
func (s *Store) rules(ctx context.Context, tenant string) ([]identity.Rule, error) {
	st := s.profileState()
	if r, ok := st.cached(tenant); ok {
		return r, nil
	}
	stored, err := s.storedRules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	r := identity.WithDefaults(tenant, stored)
	st.put(tenant, r)
	return r, nil
}

// contactByID reads one contact.
func (s *Store) contactByID(ctx context.Context, tenant, id string) (*contactDoc, error) {
	var c contactDoc
	err := s.contacts.FindOne(ctx, byID(tenant, id)).Decode(&c)
	if notFound(err) {
		return nil, related.NotFound("no such contact", "contactId")
	}
	if err != nil {
		return nil, fmt.Errorf("read contact %s: %w", id, err)
	}
	return &c, nil
}

// profileByID reads one profile as stored, or nil.
func (s *Store) profileByID(ctx context.Context, tenant, id string) (*profileDoc, error) {
	var p profileDoc
	err := s.coll(collProfiles).FindOne(ctx, byID(tenant, id)).Decode(&p)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read profile %s: %w", id, err)
	}
	return &p, nil
}

// rootProfile follows a profile's merge chain to the profile that holds
// its contacts now.
func (s *Store) rootProfile(ctx context.Context, tenant, id string) (*profileDoc, error) {
	for range maxChain {
		p, err := s.profileByID(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, related.NotFound("no such profile", "profileId")
		}
		if p.MergedInto == "" {
			return p, nil
		}
		id = p.MergedInto
	}
	return nil, fmt.Errorf("profile %s: merge chain too long", id)
}

// linkRun is what a write that links a contact knows.
type linkRun struct {
	interactionID string // provenance of the links: the interaction the values came with
	by            string // who or what links: "rule", "rules"
	ts            time.Time
	// fresh says the write created the contact, so its only interaction
	// is known (or one racing this write, which its own writer settles).
	fresh bool
	// known is the interaction the write is about, or nil.
	known *interactionDoc
}

// linking is the state of one linkContact across its re-plans.
type linking struct {
	run    linkRun
	events []store.Event
	// from and at track the contact's interactions this linking moves:
	// the profile each left, and where it is now.
	from, at map[string]string
	// dirty says interactions were moved ahead of the contact document.
	dirty bool
}

// linkContact links contact c by the identifiers it brings: it gathers the
// facts, lets identity.Decide plan and applies the plan, re-planning when
// a race changed the facts. It returns the contact as stored afterwards,
// whether linking wrote it (and so moved its interactions after they
// existed), and the events of the interactions whose profile changed.
func (s *Store) linkContact(ctx context.Context, c *contactDoc, run linkRun) (*contactDoc, bool, []store.Event, error) {
	tenant := c.Tenant
	l := &linking{run: run, from: map[string]string{}, at: map[string]string{}}
	if err := s.recoverTenant(ctx, tenant); err != nil {
		return nil, false, nil, err
	}
	if k := run.known; k != nil && k.ContactID == c.ID {
		l.from[k.ID], l.at[k.ID] = k.ProfileID, k.ProfileID
	}
	origin := c.ProfileID
	var done *applied
	for attempt := 0; ; attempt++ {
		rules, err := s.rules(ctx, tenant)
		if err != nil {
			return nil, false, l.events, err
		}
		claims := identity.Claims(rules, c.domain())
		if len(claims) == 0 || c.ProfileID != "" && allLinked(claims, c.Identifiers) {
			break // the common case: nothing new to link
		}
		if attempt == maxLinkAttempts {
			return nil, false, l.events, fmt.Errorf("link contact %s: the facts kept changing over %d attempts", c.ID, attempt)
		}
		a, err := s.linkOnce(ctx, l, c, claims, rules)
		if err == nil {
			c, done = a.contact, a
			if !a.wrote {
				done = nil
			}
			break
		}
		if !errors.Is(err, errReplan) {
			return nil, false, l.events, err
		}
		if attempt >= 2 {
			// Writers contending for the same facts: let the others
			// finish before planning again.
			time.Sleep(time.Duration(rand.IntN(1+attempt*attempt)) * time.Millisecond)
		}
		if c, err = s.contactByID(ctx, tenant, c.ID); err != nil {
			return nil, false, l.events, err
		}
	}
	// After the contact was written (or interactions were moved ahead of
	// it and c was read again since), its interactions follow it.
	follow := l.dirty || done != nil && c.ProfileID != origin
	for _, at := range l.at {
		follow = follow || done != nil && at != c.ProfileID
	}
	if follow {
		if err := s.followContact(ctx, l, c, origin); err != nil {
			return nil, false, l.events, err
		}
	}
	if done != nil {
		root, ev, err := s.refreshProfile(ctx, tenant, done.target, done.version, done.preset, false, run.ts)
		l.events = append(l.events, ev...)
		if err != nil {
			return nil, false, l.events, err
		}
		if root != nil && root.ID != c.ProfileID {
			// The profile was merged away meanwhile; finishing the merge
			// moved the contact and its interactions.
			if c, err = s.contactByID(ctx, tenant, c.ID); err != nil {
				return nil, false, l.events, err
			}
			for id := range l.from {
				l.at[id] = c.ProfileID
			}
		}
	}
	for id, from := range l.from {
		if from != c.ProfileID && l.at[id] == c.ProfileID {
			l.events = append(l.events, profileChanged(tenant, id, c.ID, from, c.ProfileID, run.ts))
		}
	}
	return c, done != nil, l.events, nil
}

func allLinked(claims []identity.Claim, linked []identDoc) bool {
	for _, c := range claims {
		if !slices.Contains(linked, identDoc{Key: c.Key, Value: c.Value}) {
			return false
		}
	}
	return true
}

func profileChanged(tenant, interactionID, contactID, from, to string, at time.Time) store.Event {
	return store.Event{ID: related.NewID(), Tenant: tenant, Kind: store.ProfileChanged, InteractionID: interactionID,
		ContactID: contactID, ProfileID: to, FromProfileID: from, At: at}
}

// followContact moves the contact's interactions that are not in its
// profile into it: after the contact document was written, this catches
// the interactions created meanwhile with its old profile.
func (s *Store) followContact(ctx context.Context, l *linking, c *contactDoc, origin string) error {
	res, err := s.interactions.UpdateMany(ctx,
		bson.D{{Key: "tenant", Value: c.Tenant}, {Key: "contactId", Value: c.ID}, {Key: "profileId", Value: bson.D{{Key: "$ne", Value: c.ProfileID}}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: c.ProfileID}, {Key: "updatedAt", Value: l.run.ts}}}})
	if err != nil {
		return fmt.Errorf("move interactions of contact %s: %w", c.ID, err)
	}
	expected := int64(0)
	for id, at := range l.at {
		if at != c.ProfileID {
			expected++
			l.at[id] = c.ProfileID
		}
	}
	if res.ModifiedCount <= expected {
		return nil
	}
	// Interactions this linking did not know of moved too (created by a
	// concurrent write): name them all, a superset is harmless.
	refs, err := findEvery[interactionRef](ctx, s.interactions, bson.D{{Key: "tenant", Value: c.Tenant}, {Key: "contactId", Value: c.ID}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read interactions of contact %s: %w", c.ID, err)
	}
	for _, r := range refs {
		if _, ok := l.from[r.ID]; !ok {
			l.from[r.ID], l.at[r.ID] = origin, c.ProfileID
		}
	}
	return nil
}

// interactionRef is the part of an interaction that moves between
// profiles.
type interactionRef struct {
	ID        string `bson:"_id"`
	ContactID string `bson:"contactId"`
	ProfileID string `bson:"profileId"`
}

// facts is what gather read for identity.Decide.
type facts struct {
	in       identity.PlanInput
	profiles map[string]*profileDoc
}

// applied is what a successful linkOnce did.
type applied struct {
	contact *contactDoc
	wrote   bool   // the contact document was written
	target  string // the profile it is in
	version *int64 // the target's version before the plan was applied
	preset  bool   // the target is new and its summary was written with it
}

// linkOnce gathers, decides and applies once.
func (s *Store) linkOnce(ctx context.Context, l *linking, c *contactDoc, claims []identity.Claim, rules []identity.Rule) (*applied, error) {
	f, err := s.gather(ctx, l, c, claims, rules)
	if err != nil {
		return nil, err
	}
	return s.apply(ctx, l, c, f, identity.Decide(f.in), rules)
}

// gather reads the facts identity.Decide needs: who owns each claimed
// identifier, the profiles involved (their age, and their identifier
// counts when a rule limits them) and the contact's do-not-link records.
// A profile met with mergedInto set is a merge in flight or half-done: the
// merge is finished and the caller re-plans.
func (s *Store) gather(ctx context.Context, l *linking, c *contactDoc, claims []identity.Claim, rules []identity.Rule) (*facts, error) {
	tenant := c.Tenant
	f := &facts{
		in: identity.PlanInput{Claims: claims, Owners: map[related.Identifier]string{},
			Profiles: map[string]identity.ProfileFacts{}, DoNotLink: map[string]bool{}, Rules: rules},
		profiles: map[string]*profileDoc{},
	}
	keys := make([]string, len(claims))
	for i, cl := range claims {
		keys[i] = identifierID(tenant, cl.Identifier)
	}
	owners, err := findAll[identifierDoc](ctx, s.coll(collIdentifiers), bson.D{{Key: "_id", Value: idIn(keys)}, {Key: "tenant", Value: tenant}},
		options.Find().SetProjection(bson.D{{Key: "key", Value: 1}, {Key: "value", Value: 1}, {Key: "profileId", Value: 1}}), len(keys))
	if err != nil {
		return nil, fmt.Errorf("read identifiers: %w", err)
	}
	var ids []string
	add := func(id string) {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	add(c.ProfileID)
	for _, o := range owners {
		add(o.ProfileID)
	}
	var dnl []string
	if c.Unlinked {
		docs, err := findEvery[doNotLinkDoc](ctx, s.coll(collDoNotLink), bson.D{{Key: "tenant", Value: tenant}, {Key: "contactId", Value: c.ID}},
			options.Find().SetProjection(bson.D{{Key: "profileId", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("read do-not-link: %w", err)
		}
		for _, d := range docs {
			dnl = append(dnl, d.ProfileID)
			add(d.ProfileID)
		}
	}
	if len(ids) > 0 {
		docs, err := findAll[profileDoc](ctx, s.coll(collProfiles), bson.D{{Key: "_id", Value: idIn(ids)}, {Key: "tenant", Value: tenant}},
			options.Find(), len(ids))
		if err != nil {
			return nil, fmt.Errorf("read profiles: %w", err)
		}
		helped := false
		for i := range docs {
			p := &docs[i]
			f.profiles[p.ID] = p
			if p.MergedInto != "" {
				ev, err := s.finishMerge(ctx, tenant, p.ID, p.MergedInto, l.run.ts)
				l.events = append(l.events, ev...)
				if err != nil {
					return nil, err
				}
				helped = true
			}
		}
		if helped {
			return nil, errReplan
		}
	}
	for _, o := range owners {
		if f.profiles[o.ProfileID] == nil {
			// Only a lost document leaves an identifier pointing at no
			// profile: release it and plan again.
			s.log.WarnContext(ctx, "mongo: identifier of a missing profile released", "tenant", tenant, "key", o.Key, "profile", o.ProfileID)
			if _, err := s.coll(collIdentifiers).DeleteOne(ctx, bson.D{{Key: "_id", Value: o.ID}, {Key: "tenant", Value: tenant}, {Key: "profileId", Value: o.ProfileID}}); err != nil {
				return nil, fmt.Errorf("release identifier: %w", err)
			}
			return nil, errReplan
		}
		f.in.Owners[related.Identifier{Key: o.Key, Value: o.Value}] = o.ProfileID
	}
	if f.profiles[c.ProfileID] != nil {
		f.in.Home = c.ProfileID
	}
	for _, p := range dnl {
		if f.profiles[p] != nil {
			f.in.DoNotLink[p] = true
		}
	}
	owning := map[string]bool{}
	for _, o := range f.in.Owners {
		owning[o] = true
	}
	var involved []string
	for _, id := range ids {
		if id == f.in.Home || owning[id] {
			p := f.profiles[id]
			f.in.Profiles[id] = identity.ProfileFacts{ID: id, CreatedAt: p.CreatedAt.UTC(), Counts: map[string]int{}}
			involved = append(involved, id)
		}
	}
	if limited(rules) && len(involved) > 0 {
		docs, err := findEvery[identifierDoc](ctx, s.coll(collIdentifiers), bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: idIn(involved)}},
			options.Find().SetProjection(bson.D{{Key: "key", Value: 1}, {Key: "profileId", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("count identifiers: %w", err)
		}
		for _, d := range docs {
			f.in.Profiles[d.ProfileID].Counts[d.Key]++
		}
	}
	return f, nil
}

// limited reports whether an enabled rule limits identifiers per profile:
// only then does Decide need the counts.
func limited(rules []identity.Rule) bool {
	for _, r := range rules {
		if r.Enabled && !r.Deleted && r.MaxPerProfile > 0 {
			return true
		}
	}
	return false
}

// apply carries out a plan for contact c: conflicts, a new profile,
// merges, claims, links, the interactions and finally the contact itself,
// filtered on the version it was read at.
func (s *Store) apply(ctx context.Context, l *linking, c *contactDoc, f *facts, plan identity.Plan, rules []identity.Rule) (*applied, error) {
	tenant, ts := c.Tenant, l.run.ts
	if err := s.recordConflicts(ctx, tenant, c.ID, plan.Conflicts, ts); err != nil {
		return nil, err
	}
	out := &applied{contact: c, target: plan.Profile}
	if plan.NewProfile {
		ids := make([]related.Identifier, len(plan.Claim))
		for i, cl := range plan.Claim {
			ids[i] = cl.Identifier
		}
		sortIdentifiers(ids)
		p := &profileDoc{ID: related.NewID(), Tenant: tenant, AutoName: identity.Name(ids, rules), Channels: []string{c.Channel},
			Identifiers: identDocs(ids), ContactCount: 1, CreatedAt: ts, UpdatedAt: ts}
		if _, err := s.coll(collProfiles).InsertOne(ctx, p); err != nil {
			return nil, fmt.Errorf("create profile: %w", err)
		}
		out.target, out.preset, out.version = p.ID, true, new(int64)
	} else if p := f.profiles[plan.Profile]; p != nil {
		v := p.Version
		out.version = &v
	}
	if out.target == "" {
		return out, nil // only conflicts: nothing joins
	}
	for _, loser := range plan.Merges {
		ev, err := s.merge(ctx, tenant, out.target, loser, l.run.by, ts)
		l.events = append(l.events, ev...)
		if err != nil {
			return nil, err
		}
	}
	if won, err := s.claim(ctx, tenant, out.target, plan.Claim, ts); err != nil {
		if errors.Is(err, errReplan) && plan.NewProfile && won == 0 {
			// Nothing points at the new profile: take it back.
			if _, derr := s.coll(collProfiles).DeleteOne(ctx, byID(tenant, out.target)); derr != nil {
				s.log.WarnContext(ctx, "mongo: removing an unused new profile failed", "tenant", tenant, "profile", out.target, "err", derr)
			}
		}
		return nil, err
	}
	linked := identifiers(c.Identifiers)
	if home := f.in.Home; home != "" && home != out.target && !slices.Contains(plan.Merges, home) {
		linked = nil // the contact moves: its old links stay with the old profile's history
	}
	var links []any
	for _, cl := range plan.Links {
		if slices.Contains(linked, cl.Identifier) {
			continue
		}
		linked = append(linked, cl.Identifier)
		links = append(links, &linkDoc{
			ID: linkID(tenant, out.target, c.ID, cl.Identifier), Tenant: tenant, ProfileID: out.target, ContactID: c.ID,
			Reason: string(related.LinkRule), Key: cl.Key, Value: cl.Value, RuleID: cl.RuleID, Source: string(cl.Source),
			InteractionID: l.run.interactionID, By: l.run.by, LinkedAt: ts,
		})
	}
	if err := insertIgnoringDuplicates(ctx, s.coll(collProfileLinks), links); err != nil {
		return nil, fmt.Errorf("record links: %w", err)
	}
	if c.ProfileID != out.target && !l.run.fresh {
		if err := s.premove(ctx, l, c, out.target); err != nil {
			return nil, err
		}
	}
	var next contactDoc
	filter := bson.D{{Key: "_id", Value: c.ID}, {Key: "tenant", Value: tenant}, {Key: "version", Value: c.Version}}
	update := bson.D{
		{Key: "$set", Value: bson.D{{Key: "profileId", Value: out.target}, {Key: "identifiers", Value: identDocs(linked)}, {Key: "updatedAt", Value: ts}}},
		{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
	}
	err := s.contacts.FindOneAndUpdate(ctx, filter, update, options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&next)
	if notFound(err) {
		return nil, errReplan // the contact changed since it was read
	}
	if err != nil {
		return nil, fmt.Errorf("link contact %s: %w", c.ID, err)
	}
	out.contact, out.wrote = &next, true
	return out, nil
}

// premove moves the contact's interactions into target ahead of the
// contact document, noting where each came from.
func (s *Store) premove(ctx context.Context, l *linking, c *contactDoc, target string) error {
	filter := bson.D{{Key: "tenant", Value: c.Tenant}, {Key: "contactId", Value: c.ID}, {Key: "profileId", Value: bson.D{{Key: "$ne", Value: target}}}}
	refs, err := findEvery[interactionRef](ctx, s.interactions, filter, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "profileId", Value: 1}}))
	if err != nil {
		return fmt.Errorf("read interactions of contact %s: %w", c.ID, err)
	}
	if len(refs) == 0 {
		return nil
	}
	if _, err := s.interactions.UpdateMany(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: target}, {Key: "updatedAt", Value: l.run.ts}}}}); err != nil {
		return fmt.Errorf("move interactions of contact %s: %w", c.ID, err)
	}
	for _, r := range refs {
		if _, ok := l.from[r.ID]; !ok {
			l.from[r.ID] = r.ProfileID
		}
		l.at[r.ID] = target
	}
	l.dirty = true
	return nil
}

// claim inserts the identifiers documents of claims for profile target.
// When another profile claimed one first, it returns errReplan and how
// many claims it won.
func (s *Store) claim(ctx context.Context, tenant, target string, claims []identity.Claim, ts time.Time) (int, error) {
	if len(claims) == 0 {
		return 0, nil
	}
	docs := make([]any, len(claims))
	for i, cl := range claims {
		docs[i] = &identifierDoc{ID: identifierID(tenant, cl.Identifier), Tenant: tenant, Key: cl.Key, Value: cl.Value, ProfileID: target, CreatedAt: ts}
	}
	_, err := s.coll(collIdentifiers).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return len(claims), nil
	}
	if n, dup := onlyDuplicates(err); dup {
		return len(claims) - n, errReplan
	}
	return -1, fmt.Errorf("claim identifiers: %w", err)
}

// recordConflicts stores conflicts; one already open is not repeated.
func (s *Store) recordConflicts(ctx context.Context, tenant, contactID string, cfs []identity.Conflict, ts time.Time) error {
	docs := make([]any, len(cfs))
	for i, cf := range cfs {
		docs[i] = &conflictDoc{
			ID: related.NewID(), Tenant: tenant, Key: cf.Key, Value: cf.Value, Reason: string(cf.Reason),
			ProfileA: cf.Profiles[0], ProfileB: cf.Profiles[1], Pair: pairOf(cf.Profiles[0], cf.Profiles[1]), ContactID: contactID,
			OpenKey: related.DerivedID(tenant, "conflict", cf.Key, cf.Value, string(cf.Reason), contactID), CreatedAt: ts,
		}
	}
	if err := insertIgnoringDuplicates(ctx, s.coll(collConflicts), docs); err != nil {
		return fmt.Errorf("record conflicts: %w", err)
	}
	return nil
}

// merge merges profile loser into winner: it records the merge by
// inserting its merges document, the single-winner decision, and moves
// everything. A profile merged away already (into another profile) makes
// the caller re-plan, after helping that merge finish.
func (s *Store) merge(ctx context.Context, tenant, winner, loser, by string, ts time.Time) ([]store.Event, error) {
	doc := &mergeDoc{ID: mergeID(tenant, loser), Tenant: tenant, Loser: loser, Winner: winner, By: by, At: ts}
	_, err := s.coll(collMerges).InsertOne(ctx, doc)
	switch {
	case isDuplicate(err):
		var cur mergeDoc
		if err := s.coll(collMerges).FindOne(ctx, byID(tenant, doc.ID)).Decode(&cur); err != nil {
			return nil, fmt.Errorf("read merge of %s: %w", loser, err)
		}
		ev, err := s.finishMerge(ctx, tenant, loser, cur.Winner, ts)
		if err == nil && cur.Winner != winner {
			err = errReplan
		}
		return ev, err
	case err != nil:
		return nil, fmt.Errorf("record merge of %s: %w", loser, err)
	}
	return s.finishMerge(ctx, tenant, loser, winner, ts)
}

// finishMerge does (or redoes) everything merging loser into winner
// means, each step an idempotent write: the loser points at the winner
// first (so writers and readers follow it), then its contacts,
// identifiers, links, do-not-link records and interactions move, and the
// merges document is marked done.
func (s *Store) finishMerge(ctx context.Context, tenant, loser, winner string, ts time.Time) ([]store.Event, error) {
	wrap := func(what string, err error) error {
		return fmt.Errorf("merge %s into %s: %s: %w", loser, winner, what, err)
	}
	profiles := s.coll(collProfiles)
	if _, err := profiles.UpdateOne(ctx, byID(tenant, loser), bson.D{
		{Key: "$set", Value: bson.D{{Key: "mergedInto", Value: winner}, {Key: "updatedAt", Value: ts}}},
		{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}},
	}); err != nil {
		return nil, wrap("point the loser at the winner", err)
	}
	ofLoser := func(field string) bson.D { return bson.D{{Key: "tenant", Value: tenant}, {Key: field, Value: loser}} }
	to := func(field string) bson.D { return bson.D{{Key: "$set", Value: bson.D{{Key: field, Value: winner}}}} }
	if _, err := profiles.UpdateMany(ctx, ofLoser("mergedInto"), to("mergedInto")); err != nil {
		return nil, wrap("re-point the profiles merged into the loser", err)
	}
	if _, err := s.contacts.UpdateMany(ctx, ofLoser("profileId"), append(to("profileId"),
		bson.E{Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}})); err != nil {
		return nil, wrap("move contacts", err)
	}
	for _, coll := range []string{collIdentifiers, collProfileLinks, collDoNotLink} {
		if _, err := s.coll(coll).UpdateMany(ctx, ofLoser("profileId"), to("profileId")); err != nil {
			return nil, wrap("move "+coll, err)
		}
	}
	events, err := s.moveProfileInteractions(ctx, tenant, loser, winner, ts)
	if err != nil {
		return nil, wrap("move interactions", err)
	}
	if _, err := s.coll(collMerges).UpdateOne(ctx, byID(tenant, mergeID(tenant, loser)),
		bson.D{{Key: "$set", Value: bson.D{{Key: "done", Value: true}}}}); err != nil {
		return events, wrap("mark done", err)
	}
	return events, nil
}

// moveProfileInteractions moves profile from's interactions into to and
// returns an event for each.
func (s *Store) moveProfileInteractions(ctx context.Context, tenant, from, to string, ts time.Time) ([]store.Event, error) {
	filter := bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: from}}
	refs, err := findEvery[interactionRef](ctx, s.interactions, filter,
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "contactId", Value: 1}}))
	if err != nil || len(refs) == 0 {
		return nil, err
	}
	if _, err := s.interactions.UpdateMany(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: to}, {Key: "updatedAt", Value: ts}}}}); err != nil {
		return nil, err
	}
	events := make([]store.Event, len(refs))
	for i, r := range refs {
		events[i] = profileChanged(tenant, r.ID, r.ContactID, from, to, ts)
	}
	return events, nil
}

// refreshProfile rewrites the summary of profile id (channels,
// identifiers, contact count, automatic name) with a write filtered on the
// profile's version. version is the version read before the caller's
// changes, nil when unknown; preset says the summary was written with the
// profile (a new one) and only the version moves. When the write finds
// another version, it reads the profile again and recomputes. When the
// profile turns out to be merged away, it finishes the merge and refreshes
// the winner. With release, the identifiers of a profile left without
// contacts are released (manual control), as SQLite deletes them. It
// returns the root profile as refreshed, nil if the profile is gone.
func (s *Store) refreshProfile(ctx context.Context, tenant, id string, version *int64, preset, release bool, ts time.Time) (*profileDoc, []store.Event, error) {
	var events []store.Event
	profiles := s.coll(collProfiles)
	for range maxChain {
		if version == nil {
			p, err := s.profileByID(ctx, tenant, id)
			if err != nil || p == nil {
				return nil, events, err
			}
			if p.MergedInto != "" {
				ev, err := s.finishMerge(ctx, tenant, p.ID, p.MergedInto, ts)
				events = append(events, ev...)
				if err != nil {
					return nil, events, err
				}
				id = p.MergedInto
				continue
			}
			version, preset = &p.Version, false
		}
		set := bson.D{{Key: "updatedAt", Value: ts}}
		if !preset {
			sum, err := s.summary(ctx, tenant, id, release)
			if err != nil {
				return nil, events, err
			}
			set = append(sum, set...)
		}
		var p profileDoc
		err := profiles.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: id}, {Key: "tenant", Value: tenant}, {Key: "version", Value: *version}},
			bson.D{{Key: "$set", Value: set}, {Key: "$inc", Value: bson.D{{Key: "version", Value: 1}}}},
			options.FindOneAndUpdate().SetReturnDocument(options.After)).Decode(&p)
		switch {
		case notFound(err):
			version = nil // changed by another writer (or gone): read it again
			continue
		case err != nil:
			return nil, events, fmt.Errorf("refresh profile %s: %w", id, err)
		case p.MergedInto != "":
			ev, err := s.finishMerge(ctx, tenant, p.ID, p.MergedInto, ts)
			events = append(events, ev...)
			if err != nil {
				return nil, events, err
			}
			id, version = p.MergedInto, nil
			continue
		}
		return &p, events, nil
	}
	return nil, events, fmt.Errorf("refresh profile %s: still changing", id)
}

// summary computes the $set of a profile's summary from its contacts:
// their channels, their number, and the identifiers their links hold
// (what the profile holds: a profile claims an identifier only for a
// contact that links it, and releases or moves it with that contact).
func (s *Store) summary(ctx context.Context, tenant, id string, release bool) (bson.D, error) {
	byProfile := bson.D{{Key: "tenant", Value: tenant}, {Key: "profileId", Value: id}}
	members, err := findEvery[contactDoc](ctx, s.contacts, byProfile,
		options.Find().SetProjection(bson.D{{Key: "channel", Value: 1}, {Key: "identifiers", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("read contacts of profile %s: %w", id, err)
	}
	var chans []related.Channel
	var ids []related.Identifier
	for _, m := range members {
		chans = append(chans, related.Channel(m.Channel))
		for _, d := range m.Identifiers {
			if i := (related.Identifier{Key: d.Key, Value: d.Value}); !slices.Contains(ids, i) {
				ids = append(ids, i)
			}
		}
	}
	sortIdentifiers(ids)
	channels := []string{}
	for _, c := range related.SortChannels(chans) {
		channels = append(channels, string(c))
	}
	if len(members) == 0 && release {
		if _, err := s.coll(collIdentifiers).DeleteMany(ctx, byProfile); err != nil {
			return nil, fmt.Errorf("release identifiers of profile %s: %w", id, err)
		}
	}
	rules, err := s.rules(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return bson.D{
		{Key: "channels", Value: channels},
		{Key: "identifiers", Value: identDocs(ids)},
		{Key: "contactCount", Value: len(members)},
		{Key: "autoName", Value: identity.Name(ids, rules)},
	}, nil
}

func sortIdentifiers(ids []related.Identifier) {
	slices.SortFunc(ids, func(a, b related.Identifier) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

// recoverTenant finishes the merges of tenant that a crash (or a writer
// still at work) left without their done mark, once per Store and
// tenant: the first write of a tenant after a start pays one find for it.
func (s *Store) recoverTenant(ctx context.Context, tenant string) error {
	st := s.profileState()
	if st.isRecovered(tenant) {
		return nil
	}
	if err := s.recoverMerges(ctx, bson.D{{Key: "done", Value: false}, {Key: "tenant", Value: tenant}}); err != nil {
		return err
	}
	st.markRecovered(tenant)
	return nil
}

// recoverAll finishes every tenant's unfinished merges, once per Store.
func (s *Store) recoverAll(ctx context.Context) error {
	st := s.profileState()
	if st.isRecovered("") {
		return nil
	}
	if err := s.recoverMerges(ctx, bson.D{{Key: "done", Value: false}}); err != nil {
		return err
	}
	st.markRecovered("")
	return nil
}

func (s *Store) recoverMerges(ctx context.Context, filter bson.D) error {
	docs, err := findEvery[mergeDoc](ctx, s.coll(collMerges), filter, nil)
	if err != nil {
		return fmt.Errorf("mongo: find unfinished merges: %w", err)
	}
	ts := now()
	for _, d := range docs {
		s.log.InfoContext(ctx, "mongo: finishing a merge left half-done", "tenant", d.Tenant, "loser", d.Loser, "winner", d.Winner)
		events, err := s.finishMerge(ctx, d.Tenant, d.Loser, d.Winner, ts)
		if err == nil {
			var ev []store.Event
			_, ev, err = s.refreshProfile(ctx, d.Tenant, d.Winner, nil, false, false, ts)
			events = append(events, ev...)
		}
		s.publishEvents(ctx, events)
		if err != nil {
			return fmt.Errorf("mongo: finish merge of %s: %w", d.Loser, err)
		}
	}
	return nil
}

// linkRecorded links the contact of a recorded message and makes sure the
// message's interaction is in the contact's profile. contactCreated and
// itCreated say whether the write created the contact and the
// interaction. It returns the contact as it now is and the events of the
// interactions whose profile changed; it.ProfileID is updated.
func (s *Store) linkRecorded(ctx context.Context, c *contactDoc, it *interactionDoc, contactCreated, itCreated bool, ts time.Time) (*contactDoc, []store.Event, error) {
	run := linkRun{interactionID: it.ID, by: "rule", ts: ts, fresh: contactCreated, known: it}
	next, wrote, events, err := s.linkContact(ctx, c, run)
	if err != nil {
		return nil, events, err
	}
	if it.ContactID != next.ID {
		return next, events, nil // the thread's interaction belongs to another contact
	}
	if wrote {
		// Linking moved the contact after the interaction existed, and
		// its interactions after that.
		it.ProfileID = next.ProfileID
		return next, events, nil
	}
	// A new interaction was created with the profile the contact had when
	// it was read, which may have changed since: read the contact again.
	// An existing one is checked against the contact as read.
	reread := itCreated
	for range maxVersionRetries {
		if reread {
			if next, err = s.contactByID(ctx, c.Tenant, c.ID); err != nil {
				return nil, events, err
			}
		}
		if it.ProfileID == next.ProfileID {
			return next, events, nil
		}
		if !reread {
			reread = true // confirm on a fresh read before moving anything
			continue
		}
		if _, err := s.interactions.UpdateOne(ctx, byID(it.Tenant, it.ID),
			bson.D{{Key: "$set", Value: bson.D{{Key: "profileId", Value: next.ProfileID}, {Key: "updatedAt", Value: ts}}}}); err != nil {
			return nil, events, fmt.Errorf("move interaction %s: %w", it.ID, err)
		}
		events = append(events, profileChanged(it.Tenant, it.ID, it.ContactID, it.ProfileID, next.ProfileID, ts))
		it.ProfileID = next.ProfileID
	}
	return nil, events, fmt.Errorf("interaction %s: its contact kept moving", it.ID)
}
