package identity

// union is the union-find Partition grows its components in, with what a
// component's constraints need: its members (for keep-apart decisions)
// and the values it holds of keys whose rule bounds MaxPerProfile.
type union struct {
	parent  []int
	members map[int][]int
	values  map[int]map[string]map[string]bool // root -> key -> value
	limits  map[string]int
	apart   map[string][]string
	ids     []string
	index   map[string]int
}

type unionResult int

const (
	joinedOK unionResult = iota
	refusedApart
	refusedLimit
)

func newUnion(contacts []ContactFacts, linkable [][]Claim, rules map[string]Rule, apart map[string][]string, index map[string]int) *union {
	u := &union{
		parent:  make([]int, len(contacts)),
		members: make(map[int][]int, len(contacts)),
		values:  map[int]map[string]map[string]bool{},
		limits:  map[string]int{},
		apart:   apart,
		ids:     make([]string, len(contacts)),
		index:   index,
	}
	for k, r := range rules {
		if r.MaxPerProfile > 0 {
			u.limits[k] = r.MaxPerProfile
		}
	}
	for i, c := range contacts {
		u.parent[i] = i
		u.members[i] = []int{i}
		u.ids[i] = c.ID
		for _, cl := range linkable[i] {
			if _, ok := u.limits[cl.Key]; !ok {
				continue
			}
			if u.values[i] == nil {
				u.values[i] = map[string]map[string]bool{}
			}
			if u.values[i][cl.Key] == nil {
				u.values[i][cl.Key] = map[string]bool{}
			}
			u.values[i][cl.Key][cl.Value] = true
		}
	}
	return u
}

func (u *union) find(i int) int {
	for u.parent[i] != i {
		u.parent[i] = u.parent[u.parent[i]]
		i = u.parent[i]
	}
	return i
}

// apartFrom reports whether a keep-apart decision names a member of i's
// component and a contact for which is returns true.
func (u *union) apartFrom(i int, is func(partner string) bool) bool {
	for _, m := range u.members[u.find(i)] {
		for _, p := range u.apart[u.ids[m]] {
			if is(p) {
				return true
			}
		}
	}
	return false
}

// check says whether the components of a and b may join: never across a
// keep-apart decision, and, when limits is set, never past a rule's
// MaxPerProfile.
func (u *union) check(a, b int, limits bool) unionResult {
	ra, rb := u.find(a), u.find(b)
	if len(u.members[ra]) > len(u.members[rb]) {
		ra, rb = rb, ra
	}
	if u.apartFrom(ra, func(p string) bool {
		j, ok := u.index[p]
		return ok && u.find(j) == rb
	}) {
		return refusedApart
	}
	if limits {
		for k, max := range u.limits {
			va, vb := u.values[ra][k], u.values[rb][k]
			n := len(vb)
			for v := range va {
				if !vb[v] {
					n++
				}
			}
			if n > max {
				return refusedLimit
			}
		}
	}
	return joinedOK
}

// join joins the components of a and b, which check allowed.
func (u *union) join(a, b int) {
	ra, rb := u.find(a), u.find(b)
	if ra == rb {
		return
	}
	if len(u.members[ra]) < len(u.members[rb]) {
		ra, rb = rb, ra
	}
	u.parent[rb] = ra
	u.members[ra] = append(u.members[ra], u.members[rb]...)
	delete(u.members, rb)
	for k, vs := range u.values[rb] {
		if u.values[ra] == nil {
			u.values[ra] = map[string]map[string]bool{}
		}
		if u.values[ra][k] == nil {
			u.values[ra][k] = map[string]bool{}
		}
		for v := range vs {
			u.values[ra][k][v] = true
		}
	}
	delete(u.values, rb)
}

// union joins a manual decision's contacts unless a keep-apart decision
// forbids it (limits do not apply to what an admin decided).
func (u *union) union(a, b int, limits bool) bool {
	if u.find(a) == u.find(b) {
		return false
	}
	if u.check(a, b, limits) != joinedOK {
		return false
	}
	u.join(a, b)
	return true
}

// tryUnion joins a rule edge's contacts if the constraints allow.
func (u *union) tryUnion(a, b int) unionResult {
	r := u.check(a, b, true)
	if r == joinedOK {
		u.join(a, b)
	}
	return r
}
