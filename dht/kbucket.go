package dht

import (
	"bytes"
	"math/big"
	"slices"
)

// Contact is a node known to the routing table: its DHT node ID and the peer that announced it.
type Contact struct {
	ID   ID
	Peer PeerID
}

// kbucket is hivemind's KBucket: the nodes whose IDs fall in [lower, lower+2^(160-depth)).
//
// Active nodes (at most size) and replacement nodes are each kept from least to most recently
// updated. pinged holds the nodes handed out by requestPing and not updated since; like hivemind it
// is not cleared when a node is deleted (only an update or a split clears it).
type kbucket struct {
	lower        ID
	depth        int
	size         int
	nodes        contactList
	replacements contactList
	pinged       map[ID]struct{}
	lastUpdated  float64
}

func newKBucket(lower ID, depth, size int, now float64) *kbucket {
	return &kbucket{lower: lower, depth: depth, size: size, lastUpdated: now}
}

// contains reports whether id lies in the bucket's range.
func (b *kbucket) contains(id ID) bool { return sharesPrefix(id, b.lower, b.depth) }

// addOrUpdate is hivemind's KBucket.add_or_update_node: it clears id's ping flag, touches
// lastUpdated, then moves an active node to the most-recent end, adds a new node as active if there
// is room, or else (re)inserts it as the most recent replacement and returns false. With
// maxReplacements >= 0 the least recent replacement beyond that bound is dropped and returned.
func (b *kbucket) addOrUpdate(c Contact, now float64, maxReplacements int) (stored bool, dropped *Contact) {
	delete(b.pinged, c.ID)
	b.lastUpdated = now
	if b.nodes.remove(c.ID) || b.nodes.len() < b.size {
		b.nodes.pushBack(c)
		return true, nil
	}
	b.replacements.remove(c.ID)
	b.replacements.pushBack(c)
	if maxReplacements >= 0 && b.replacements.len() > maxReplacements {
		old, _ := b.replacements.popFront()
		return false, &old
	}
	return false, nil
}

// requestPing returns the least recently updated active node that is not already being pinged, and
// marks it as being pinged (hivemind's request_ping_node).
func (b *kbucket) requestPing() (Contact, bool) {
	for n := b.nodes.head; n != nil; n = n.next {
		if _, ok := b.pinged[n.c.ID]; ok {
			continue
		}
		if b.pinged == nil {
			b.pinged = make(map[ID]struct{})
		}
		b.prunePinged()
		b.pinged[n.c.ID] = struct{}{}
		return n.c, true
	}
	return Contact{}, false
}

// prunePinged forgets the ping flags of nodes that are no longer active once the flags outnumber
// the active slots several times over. Only active nodes can be handed out, so stale flags (left
// behind by deletions, as in hivemind, which never drops them) only take memory; below the bound
// the flags are kept exactly as hivemind keeps them.
func (b *kbucket) prunePinged() {
	if len(b.pinged) < 4*b.size+16 {
		return
	}
	for id := range b.pinged {
		if !b.nodes.has(id) {
			delete(b.pinged, id)
		}
	}
}

// remove deletes id from the replacements and/or the active nodes. When an active node goes and
// replacements exist, the most recently added replacement is promoted (LIFO, like hivemind).
func (b *kbucket) remove(id ID) bool {
	inReplacements := b.replacements.remove(id)
	if !b.nodes.remove(id) {
		return inReplacements
	}
	if c, ok := b.replacements.popBack(); ok {
		b.nodes.pushBack(c)
	}
	return true
}

// split divides the bucket at its midpoint into two buckets one level deeper and re-adds the active
// nodes, then the replacements, into the half that contains each (an id below the midpoint goes
// left; hivemind sends an id equal to the midpoint left too, quirk Q6, fixed here).
func (b *kbucket) split(now float64, maxReplacements int) (left, right *kbucket) {
	left = newKBucket(b.lower, b.depth+1, b.size, now)
	right = newKBucket(withBit(b.lower, b.depth), b.depth+1, b.size, now)
	for _, list := range []*contactList{&b.nodes, &b.replacements} {
		for n := list.head; n != nil; n = n.next {
			dst := left
			if bitAt(n.c.ID, b.depth) == 1 {
				dst = right
			}
			// Children get at most what the parent held in each list, so nothing is dropped here.
			dst.addOrUpdate(n.c, now, maxReplacements)
		}
	}
	return left, right
}

// info returns a snapshot of the bucket.
func (b *kbucket) info() BucketInfo {
	pinged := make([]ID, 0, len(b.pinged))
	for id := range b.pinged {
		pinged = append(pinged, id)
	}
	slices.SortFunc(pinged, ID.Cmp)
	return BucketInfo{
		Lower:         b.lower,
		Depth:         b.depth,
		LastUpdated:   b.lastUpdated,
		Nodes:         b.nodes.all(),
		Replacements:  b.replacements.all(),
		PingRequested: pinged,
	}
}

// BucketInfo is a snapshot of one k-bucket, for statistics and the routing-table refresh.
type BucketInfo struct {
	// Lower is the inclusive lower bound; the bucket covers the IDs sharing its first Depth bits.
	Lower ID
	// Depth is the bucket's depth in the split tree: it covers 2^(160-Depth) IDs.
	Depth int
	// LastUpdated is the `now` of the bucket's creation or of its latest add/update attempt.
	LastUpdated float64
	// Nodes are the active nodes, least recently updated first.
	Nodes []Contact
	// Replacements are the replacement nodes, least recently updated first.
	Replacements []Contact
	// PingRequested are the node IDs handed out for pinging and not updated since, ascending.
	PingRequested []ID
}

// Contains reports whether id lies in the bucket's range.
func (b BucketInfo) Contains(id ID) bool { return sharesPrefix(id, b.Lower, b.Depth) }

// RandomID returns an ID inside the bucket's range: the bucket's first Depth bits followed by the
// remaining bits of random (pass RandomID() for a uniform choice).
func (b BucketInfo) RandomID(random ID) ID {
	out := random
	full := b.Depth / 8
	copy(out[:full], b.Lower[:full])
	if rem := b.Depth % 8; rem != 0 {
		mask := byte(0xff) << (8 - rem)
		out[full] = b.Lower[full]&mask | random[full]&^mask
	}
	return out
}

// Bounds returns the range [lower, upper) as integers; upper may be 2^160.
func (b BucketInfo) Bounds() (lower, upper *big.Int) {
	lower = b.Lower.Big()
	size := new(big.Int).Lsh(big.NewInt(1), uint(IDLen*8-b.Depth))
	return lower, new(big.Int).Add(lower, size)
}

// bitAt returns bit i of id, counting from the most significant bit (0..159).
func bitAt(id ID, i int) byte { return id[i/8] >> (7 - i%8) & 1 }

// withBit returns id with bit i (from the most significant bit) set.
func withBit(id ID, i int) ID {
	id[i/8] |= 0x80 >> (i % 8)
	return id
}

// withoutBit returns id with bit i (from the most significant bit) cleared.
func withoutBit(id ID, i int) ID {
	id[i/8] &^= 0x80 >> (i % 8)
	return id
}

// sharesPrefix reports whether a and b agree on their first n bits.
func sharesPrefix(a, b ID, n int) bool {
	full := n / 8
	if !bytes.Equal(a[:full], b[:full]) {
		return false
	}
	if rem := n % 8; rem != 0 {
		mask := byte(0xff) << (8 - rem)
		return a[full]&mask == b[full]&mask
	}
	return true
}

// contactList is an insertion-ordered set of contacts keyed by node ID, with O(1) lookup, removal
// and push/pop at both ends. The zero value is empty and ready to use.
type contactList struct {
	index      map[ID]*contactNode
	head, tail *contactNode
}

type contactNode struct {
	c          Contact
	prev, next *contactNode
}

func (l *contactList) len() int { return len(l.index) }

func (l *contactList) has(id ID) bool {
	_, ok := l.index[id]
	return ok
}

func (l *contactList) pushBack(c Contact) {
	if l.index == nil {
		l.index = make(map[ID]*contactNode)
	}
	n := &contactNode{c: c, prev: l.tail}
	if l.tail != nil {
		l.tail.next = n
	} else {
		l.head = n
	}
	l.tail = n
	l.index[c.ID] = n
}

func (l *contactList) unlink(n *contactNode) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	delete(l.index, n.c.ID)
}

func (l *contactList) remove(id ID) bool {
	n, ok := l.index[id]
	if ok {
		l.unlink(n)
	}
	return ok
}

func (l *contactList) popFront() (Contact, bool) {
	if l.head == nil {
		return Contact{}, false
	}
	n := l.head
	l.unlink(n)
	return n.c, true
}

func (l *contactList) popBack() (Contact, bool) {
	if l.tail == nil {
		return Contact{}, false
	}
	n := l.tail
	l.unlink(n)
	return n.c, true
}

func (l *contactList) all() []Contact {
	out := make([]Contact, 0, l.len())
	for n := l.head; n != nil; n = n.next {
		out = append(out, n.c)
	}
	return out
}
