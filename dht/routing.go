package dht

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// DefaultMaxReplacements bounds each bucket's replacement list (hivemind's is unbounded). It is far
// above what a bucket collects in practice (about 300 per bucket with 10,000 random nodes) while
// keeping a flood of made-up node IDs from growing the table without limit.
const DefaultMaxReplacements = 1024

// errRoutingConfig prefixes every RoutingConfig.Validate error.
var errRoutingConfig = errors.New("dht: invalid routing config")

// RoutingConfig configures a RoutingTable. The zero value of every field means its default.
type RoutingConfig struct {
	// BucketSize is k, the number of active nodes per bucket. Default DefaultBucketSize (20).
	BucketSize int
	// DepthModulo is b: a full bucket that does not contain our own ID still splits while its
	// depth is not a multiple of b. Default DefaultDepthModulo (5).
	DepthModulo int
	// MaxReplacements bounds each bucket's replacement list; the least recently updated
	// replacement is forgotten first. Default DefaultMaxReplacements; negative means unbounded,
	// as in hivemind.
	MaxReplacements int
}

// Validate reports every invalid field.
func (c RoutingConfig) Validate() error {
	var errs []error
	if c.BucketSize < 0 {
		errs = append(errs, fmt.Errorf("%w: BucketSize must not be negative, got %d", errRoutingConfig, c.BucketSize))
	}
	if c.DepthModulo < 0 {
		errs = append(errs, fmt.Errorf("%w: DepthModulo must not be negative, got %d", errRoutingConfig, c.DepthModulo))
	}
	return errors.Join(errs...)
}

func (c RoutingConfig) withDefaults() RoutingConfig {
	if c.BucketSize == 0 {
		c.BucketSize = DefaultBucketSize
	}
	if c.DepthModulo == 0 {
		c.DepthModulo = DefaultDepthModulo
	}
	if c.MaxReplacements == 0 {
		c.MaxReplacements = DefaultMaxReplacements
	}
	return c
}

// RoutingTable is hivemind's RoutingTable: Kademlia k-buckets around our own node ID, plus the maps
// node ID → peer and peer → node ID over every node in the table (active and replacement).
//
// It is a pure data structure: no goroutines, no locks, no clock (the caller passes `now`, which
// only stamps the buckets' LastUpdated), no I/O (a node to ping is returned to the caller). It is
// not safe for concurrent use; the Node guards it with a lock.
//
// Behaviour follows hivemind (spec §4.2-4.3, vectors/routing.json) with one fix: when a bucket
// splits, a node ID equal to the midpoint goes to the right half, which is the half whose range
// contains it (quirk Q6). Two bounds hivemind lacks keep memory finite: replacement lists are capped
// (RoutingConfig.MaxReplacements) and stale ping flags of deleted nodes are pruned once they
// outnumber a bucket's slots several times over. Like hivemind, the peer → node map keeps an old
// peer's entry when a node re-announces itself under a new peer (until that node is deleted through
// the new peer, or another node claims the old peer), and the table holds one peer under several
// node IDs if it is told to (as hivemind's does; see vectors/routing.json). The Node never tells it
// to: it keeps at most one node ID per peer and deletes an ID only through the peer holding it
// (Node.updateRoutingTable).
type RoutingTable struct {
	self    ID
	cfg     RoutingConfig
	buckets []*kbucket // sorted by lower bound, covering [0, 2^160) without gaps
	peerOf  map[ID]PeerID
	nodeOf  map[PeerID]ID
}

// NewRoutingTable returns an empty table (one bucket covering every ID) for our own node ID self.
// now stamps the first bucket's LastUpdated. An invalid config is an error.
func NewRoutingTable(self ID, cfg RoutingConfig, now float64) (*RoutingTable, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &RoutingTable{
		self:    self,
		cfg:     cfg,
		buckets: []*kbucket{newKBucket(ID{}, 0, cfg.BucketSize, now)},
		peerOf:  make(map[ID]PeerID),
		nodeOf:  make(map[PeerID]ID),
	}, nil
}

// Self returns our own node ID.
func (t *RoutingTable) Self() ID { return t.self }

// Config returns the table's configuration with defaults applied.
func (t *RoutingTable) Config() RoutingConfig { return t.cfg }

// Add is hivemind's add_or_update_node, called whenever a node answered a request or sent one: the
// node becomes (or is refreshed as) the most recently updated node of its bucket, or its most recent
// replacement if the bucket is full. A full bucket splits if it contains our own ID or its depth is
// not a multiple of DepthModulo, and the add is retried. If it cannot split, Add returns
// ping=true and the bucket's least recently updated active node not already being pinged: the
// caller should ping it and Delete it if it does not answer (a node that answers is Added again,
// which clears its ping flag). now stamps the bucket's LastUpdated.
func (t *RoutingTable) Add(id ID, peer PeerID, now float64) (toPing Contact, ping bool) {
	for {
		index := t.BucketIndex(id)
		b := t.buckets[index]
		stored, dropped := b.addOrUpdate(Contact{ID: id, Peer: peer}, now, t.cfg.MaxReplacements)
		if dropped != nil {
			t.forget(dropped.ID)
		}
		t.peerOf[id] = peer
		t.nodeOf[peer] = id
		if stored {
			return Contact{}, false
		}
		if b.depth < IDLen*8 && (b.contains(t.self) || b.depth%t.cfg.DepthModulo != 0) {
			left, right := b.split(now, t.cfg.MaxReplacements)
			t.buckets[index] = left
			t.buckets = slices.Insert(t.buckets, index+1, right)
			continue
		}
		return b.requestPing()
	}
}

// Delete removes a node (active or replacement) from its bucket and reports whether it was there.
// Removing an active node promotes the bucket's most recent replacement. The node → peer entry goes;
// the peer → node entry goes only if it still points at this node.
func (t *RoutingTable) Delete(id ID) bool {
	if !t.buckets[t.BucketIndex(id)].remove(id) {
		return false
	}
	t.forget(id)
	return true
}

// forget drops id from both maps (the peer's entry only if it points at id).
func (t *RoutingTable) forget(id ID) {
	peer, ok := t.peerOf[id]
	if !ok {
		return
	}
	delete(t.peerOf, id)
	if t.nodeOf[peer] == id {
		delete(t.nodeOf, peer)
	}
}

// PeerByID returns the peer of a node in the table (active or replacement).
func (t *RoutingTable) PeerByID(id ID) (PeerID, bool) {
	p, ok := t.peerOf[id]
	return p, ok
}

// IDByPeer returns the node ID last announced by a peer in the table (see the RoutingTable doc for
// the stale entries hivemind keeps).
func (t *RoutingTable) IDByPeer(peer PeerID) (ID, bool) {
	id, ok := t.nodeOf[peer]
	return id, ok
}

// idHeldBy returns the node ID the table holds under peer: IDByPeer's, unless that entry is stale
// (the node has been re-announced under another peer since).
func (t *RoutingTable) idHeldBy(peer PeerID) (ID, bool) {
	id, ok := t.nodeOf[peer]
	if !ok || t.peerOf[id] != peer {
		return ID{}, false
	}
	return id, true
}

// BucketIndex returns the index of the bucket whose range contains id.
func (t *RoutingTable) BucketIndex(id ID) int {
	return sort.Search(len(t.buckets), func(i int) bool { return t.buckets[i].lower.Cmp(id) > 0 }) - 1
}

// NumBuckets returns the number of buckets.
func (t *RoutingTable) NumBuckets() int { return len(t.buckets) }

// Len returns the number of active nodes.
func (t *RoutingTable) Len() int {
	n := 0
	for _, b := range t.buckets {
		n += b.nodes.len()
	}
	return n
}

// RoutingStats counts what a RoutingTable holds.
type RoutingStats struct {
	Buckets      int
	Active       int
	Replacements int
	// NodeIDs and PeerIDs are the sizes of the node → peer and peer → node maps.
	NodeIDs, PeerIDs int
}

// Stats returns the table's counts.
func (t *RoutingTable) Stats() RoutingStats {
	s := RoutingStats{Buckets: len(t.buckets), NodeIDs: len(t.peerOf), PeerIDs: len(t.nodeOf)}
	for _, b := range t.buckets {
		s.Active += b.nodes.len()
		s.Replacements += b.replacements.len()
	}
	return s
}

// Buckets returns a snapshot of every bucket in ID order.
func (t *RoutingTable) Buckets() []BucketInfo {
	out := make([]BucketInfo, len(t.buckets))
	for i, b := range t.buckets {
		out[i] = b.info()
	}
	return out
}

// activeView returns a copy of the table's buckets and active nodes: enough for NearestNeighbors
// (no replacements, ping flags or peer maps), for work done outside the lock guarding the table.
func (t *RoutingTable) activeView() *RoutingTable {
	v := &RoutingTable{self: t.self, cfg: t.cfg, buckets: make([]*kbucket, len(t.buckets))}
	for i, b := range t.buckets {
		c := &kbucket{lower: b.lower, depth: b.depth, size: b.size, lastUpdated: b.lastUpdated}
		for e := b.nodes.head; e != nil; e = e.next {
			c.nodes.pushBack(e.c)
		}
		v.buckets[i] = c
	}
	return v
}

// NearestNeighbors returns up to k active nodes nearest to query by XOR distance, nearest first,
// never including exclude (nil excludes nothing). It is exact: the result equals a brute-force sort
// of every active node. Replacement nodes are never returned.
//
// Like hivemind, it starts from query's bucket and climbs the split tree one level at a time, adding
// the sibling subtree's buckets, until it holds k candidates (k+1 with exclude) or reaches the root;
// every node outside the subtree collected so far is farther than every node inside it.
func (t *RoutingTable) NearestNeighbors(query ID, k int, exclude *ID) []Contact {
	if k <= 0 {
		return nil
	}
	want := k
	if exclude != nil {
		want++
	}
	type candidate struct {
		dist ID
		c    Contact
	}
	var cands []candidate
	collect := func(b *kbucket) {
		for n := b.nodes.head; n != nil; n = n.next {
			cands = append(cands, candidate{dist: n.c.ID.Xor(query), c: n.c})
		}
	}
	index := t.BucketIndex(query)
	collect(t.buckets[index])
	left, right := index, index+1 // buckets collected: [left, right)
	lower, depth := t.buckets[index].lower, t.buckets[index].depth
	for depth > 0 && len(cands) < want {
		depth--
		if bitAt(lower, depth) == 0 { // we were the left child: add the right sibling subtree
			for right < len(t.buckets) && sharesPrefix(t.buckets[right].lower, lower, depth) {
				collect(t.buckets[right])
				right++
			}
		} else { // we were the right child: add the left sibling subtree
			lower = withoutBit(lower, depth)
			for left > 0 && sharesPrefix(t.buckets[left-1].lower, lower, depth) {
				left--
				collect(t.buckets[left])
			}
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int { return bytes.Compare(a.dist[:], b.dist[:]) })
	out := make([]Contact, 0, min(k, len(cands)))
	for _, c := range cands {
		if len(out) == k {
			break
		}
		if exclude != nil && c.c.ID == *exclude {
			continue
		}
		out = append(out, c.c)
	}
	return out
}
