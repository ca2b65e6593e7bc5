package related

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// idEncoding is lower-case base32hex without padding: its order matches
// the byte order, so ids made later sort later.
var idEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

var (
	idMu   sync.Mutex
	idLast int64
	idSeq  uint16
)

// NewID returns a new 26-character id: 48 bits of milliseconds, 16 bits of
// a per-millisecond sequence and 64 random bits. Ids made in one process
// are strictly increasing, which keeps index inserts at the right-hand end
// of the index and orders ties in time by creation.
func NewID() string {
	var b [16]byte
	ms := time.Now().UnixMilli()
	idMu.Lock()
	if ms <= idLast {
		ms = idLast
		idSeq++
		if idSeq == 0 { // the sequence wrapped: borrow the next millisecond
			ms++
		}
	} else {
		idSeq = 0
	}
	idLast = ms
	seq := idSeq
	idMu.Unlock()
	binary.BigEndian.PutUint64(b[:8], uint64(ms)<<16|uint64(seq))
	_, _ = rand.Read(b[8:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// DerivedID returns an id that is a pure function of parts: the same parts
// give the same id. The store uses it where a unique id is how duplicates
// are refused, such as a message retried with its clientMutationId.
func DerivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return "x" + strings.ToLower(idEncoding.EncodeToString(h.Sum(nil)[:12]))[:19]
}

// NodeType names the kind of object a global id points at.
type NodeType string

// The types that global ids point at.
const (
	NodeInteraction NodeType = "Interaction"
	NodeMessage     NodeType = "Message"
	NodeContact     NodeType = "Contact"
	NodeQueue       NodeType = "Queue"
	NodeProfile     NodeType = "Profile"
	NodeProfileRule NodeType = "ProfileRule"
	NodeSuggestion  NodeType = "ProfileSuggestion"
	NodeConflict    NodeType = "ProfileConflict"
)

// The types of objects that have global ids but are not Nodes: every id
// the API hands out is a global id, unique across types (as a client's
// normalized cache such as Relay's assumes), but ParseGlobalID refuses
// these, so Query.node and Query.nodes answer null for them.
const (
	TypeErasure      NodeType = "Erasure"
	TypeProfileEvent NodeType = "ProfileEvent"
)

// maxGlobalID bounds a global id's length before any decoding happens.
const maxGlobalID = 256

// GlobalID is the opaque id the API hands out: the node type and the
// store's id, so Query.node knows where to look. It carries no tenant: an
// id of another tenant's object simply names nothing the caller can see.
func GlobalID(t NodeType, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(string(t) + ":" + id))
}

// ParseGlobalID splits a global id made by GlobalID. It accepts any input
// without panicking and reports malformed ids as INVALID.
func ParseGlobalID(gid string) (NodeType, string, error) {
	bad := &Error{Code: CodeInvalid, Message: "malformed id"}
	// The decoder skips newlines; only the exact encoding is accepted.
	if gid == "" || len(gid) > maxGlobalID || strings.ContainsAny(gid, "\r\n") {
		return "", "", bad
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(gid)
	if err != nil {
		return "", "", bad
	}
	t, id, ok := strings.Cut(string(raw), ":")
	if !ok || id == "" || !validID(id) {
		return "", "", bad
	}
	switch NodeType(t) {
	case NodeInteraction, NodeMessage, NodeContact, NodeQueue, NodeProfile, NodeProfileRule, NodeSuggestion, NodeConflict:
		return NodeType(t), id, nil
	}
	return "", "", bad
}

// ParseTypedID parses gid and requires it to point at a t.
func ParseTypedID(gid string, t NodeType) (string, error) {
	got, id, err := ParseGlobalID(gid)
	if err != nil {
		return "", err
	}
	if got != t {
		return "", &Error{Code: CodeNotFound, Message: "id is not a " + string(t) + " id"}
	}
	return id, nil
}

// validID reports whether id has the shape of a store id.
func validID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Node is an object that has a global id.
type Node interface {
	// NodeType is the type its global id names.
	NodeType() NodeType
}

// NodeType implements Node.
func (*Interaction) NodeType() NodeType { return NodeInteraction }

// NodeType implements Node.
func (*Message) NodeType() NodeType { return NodeMessage }

// NodeType implements Node.
func (*Contact) NodeType() NodeType { return NodeContact }

// NodeType implements Node.
func (*Queue) NodeType() NodeType { return NodeQueue }
