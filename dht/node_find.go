package dht

import (
	"context"
	"math"
	"slices"
	"sync"
)

// FindNearestNodes returns, for each query, the k nodes nearest to it that a beam search of the
// network found (hivemind's find_nearest_nodes, spec §2.3), nearest first. k ≤ 0 means BucketSize;
// the beam is max(BucketSize, k). Unless excludeSelf, the node itself is among the candidates.
// The nodes are the nearest *known* ones: a node that did not answer may still be listed.
func (n *Node) FindNearestNodes(ctx context.Context, queries []ID, k int, excludeSelf bool) ([][]Contact, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	if k <= 0 {
		k = n.cfg.BucketSize
	}
	beam := max(n.cfg.BucketSize, k)
	book := newPeerBook()
	now := n.now()
	n.mu.Lock()
	for _, q := range queries {
		for _, c := range n.table.NearestNeighbors(q, beam, &n.id) {
			if !n.blacklist.isBanned(c.Peer, now) {
				book.add(c)
			}
		}
	}
	n.mu.Unlock()
	res, err := n.lookup(ctx, lookupParams{
		queries:        queries,
		beam:           beam,
		queriesPerCall: int(math.Sqrt(float64(len(queries)))),
		book:           book,
	})
	if n.isClosed() {
		return nil, ErrShutdown // also when every RPC failed as the node closed (no error then)
	}
	if err != nil {
		return nil, err
	}
	out := make([][]Contact, len(queries))
	for i, q := range queries {
		out[i] = n.nearestContacts(q, res[q].nearest, k, excludeSelf, book)
	}
	return out, nil
}

// nearestContacts turns a traversal's nearest list into at most k contacts, inserting the node
// itself by distance unless excludeSelf.
func (n *Node) nearestContacts(q ID, nearest []ID, k int, excludeSelf bool, book *peerBook) []Contact {
	ids := slices.Clone(nearest)
	if !excludeSelf {
		ids = append(ids, n.id)
		slices.SortFunc(ids, func(a, b ID) int { return a.Xor(q).Cmp(b.Xor(q)) })
	}
	out := make([]Contact, 0, min(k, len(ids)))
	for _, id := range ids[:min(k, len(ids))] {
		if id == n.id {
			out = append(out, Contact{ID: n.id, Peer: n.self})
			continue
		}
		p, _ := book.get(id)
		out = append(out, Contact{ID: id, Peer: p})
	}
	return out
}

// lookupParams describe one network traversal driven by the node.
type lookupParams struct {
	queries []ID
	beam    int
	// queriesPerCall caps the keys of one FIND; lookup lowers it to MaxRequestItems, the bound the
	// node assumes its peers apply to an inbound FIND (a larger one is refused whole, and the peer
	// would be banned and evicted for it).
	queriesPerCall int
	// book maps node IDs to peers: the initial nodes, then every neighbour learned.
	book *peerBook
	// onValue, when set, receives every value a peer returned for a query (nil when it had none)
	// and reports whether that query's search is finished (traversal stops exploring it). It runs
	// on the goroutine of the FIND call.
	onValue func(query ID, v *foundValue, source ID) (stop bool)
	// found is traverseParams.found.
	found func(query ID, nearest []ID)
	// trace, when set, counts the FINDs sent and notes the round of each as it completes, before
	// onValue sees its answer.
	trace *opTrace
}

// lookup runs traverse over the network: getNeighbors is a blacklist-aware FIND.
func (n *Node) lookup(ctx context.Context, p lookupParams) (map[ID]traverseResult, error) {
	ctx, cancel := n.withLifetime(ctx)
	defer cancel()
	return traverse(ctx, traverseParams{
		queries:        p.queries,
		initial:        p.book.ids(),
		beamSize:       max(1, p.beam),
		numWorkers:     n.cfg.NumWorkers,
		queriesPerCall: max(1, min(p.queriesPerCall, n.cfg.MaxRequestItems)),
		skip:           []ID{n.id},
		found:          p.found,
		getNeighbors: func(ctx context.Context, node ID, queries []ID, round int) map[ID]neighborReply {
			peer, ok := p.book.get(node)
			if !ok {
				return nil
			}
			answers, ok := n.callFindWithBlacklist(ctx, peer, queries, p.trace, round)
			if !ok {
				return nil
			}
			out := make(map[ID]neighborReply, len(queries))
			p.book.addAnswers(answers)
			for i, q := range queries {
				ids := make([]ID, len(answers[i].nearest))
				for j, c := range answers[i].nearest {
					ids[j] = c.ID
				}
				r := neighborReply{neighbors: ids}
				if p.onValue != nil {
					r.stop = p.onValue(q, answers[i].value, node)
				}
				out[q] = r
			}
			return out
		},
	})
}

// callFindWithBlacklist is callFind that skips banned peers (without counting a failure), bans a
// peer that does not answer, unbans one that does, and drops banned peers from the neighbours
// returned (hivemind's _call_find_with_blacklist). ok is false when there is no answer.
//
// A call that never reached the peer is not the peer's failure and bans nothing (peerFailed): our
// own context ended first, or no address is known for the peer (ErrNoAddress). Banning for the
// latter, as hivemind does for every failed call, makes a fresh node whose peer routing is not
// ready yet ban every peer its first lookups learn of for BlacklistTime, and store to its initial
// peer alone (issue 13). trace (may be nil) counts the call when it is sent and notes its round
// when it completes.
func (n *Node) callFindWithBlacklist(ctx context.Context, peer PeerID, keys []ID, trace *opTrace, round int) ([]findAnswer, bool) {
	n.mu.Lock()
	banned := n.blacklist.isBanned(peer, n.now())
	n.mu.Unlock()
	if banned {
		return nil, false
	}
	trace.sent()
	answers, err := n.callFind(ctx, peer, keys)
	trace.completed(round)
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		if n.peerFailed(ctx, err) {
			n.blacklist.registerFailure(peer, now)
		}
		return nil, false
	}
	n.blacklist.registerSuccess(peer)
	for i := range answers {
		answers[i].nearest = slices.DeleteFunc(answers[i].nearest, func(c Contact) bool {
			return n.blacklist.isBanned(c.Peer, now)
		})
	}
	return answers, true
}

// BannedPeers returns the peers the blacklist currently bans (for status and tests).
func (n *Node) BannedPeers() []PeerID {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blacklist.bannedPeers(now)
}

// peerBook is a lookup's node ID → peer map (hivemind's node_to_peer_id), shared by the calls of
// one traversal.
type peerBook struct {
	mu    sync.Mutex
	peers map[ID]PeerID
	order []ID
}

func newPeerBook() *peerBook { return &peerBook{peers: make(map[ID]PeerID)} }

// add records (or updates) a contact.
func (b *peerBook) add(c Contact) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.peers[c.ID]; !ok {
		b.order = append(b.order, c.ID)
	}
	b.peers[c.ID] = c.Peer
}

// addAnswers records the contacts of a FIND's answers (the keys of one FIND share most of their
// neighbours), under one lock.
func (b *peerBook) addAnswers(answers []findAnswer) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range answers {
		for _, c := range a.nearest {
			if p, ok := b.peers[c.ID]; !ok {
				b.order = append(b.order, c.ID)
			} else if p == c.Peer {
				continue
			}
			b.peers[c.ID] = c.Peer
		}
	}
}

func (b *peerBook) get(id ID) (PeerID, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.peers[id]
	return p, ok
}

// ids returns the known node IDs in the order they were first added.
func (b *peerBook) ids() []ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.order)
}
