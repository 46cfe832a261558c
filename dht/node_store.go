package dht

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Store stores one item; see StoreMany.
func (n *Node) Store(ctx context.Context, item StoreItem) (StoreResult, error) {
	rs, err := n.StoreMany(ctx, []StoreItem{item})
	if err != nil {
		return StoreResult{}, err
	}
	return rs[0], nil
}

// StoreMany stores items at the NumReplicas nodes nearest to each key, this node included when it
// is among them (hivemind's store_many, spec §2.5). Items of one key travel together in one STORE
// per replica. For each key a lookup finds the nearest nodes; stores start as soon as that key's
// lookup ends, nearest first, and a node that does not answer is replaced by the next nearest
// until NumReplicas nodes answered (a node that answers counts even if it rejected the item, as in
// hivemind) or the candidates run out. Unlike hivemind, which sends one STORE per key and replica,
// the keys bound for one node share its STOREs: while a STORE to a node is in flight, the items of
// other keys for that node wait and leave together in the next one (storeBatcher), so a call of
// many keys makes a few STOREs per node instead of one per key. A STORE of several keys is a
// request hivemind's rpc_store answers item by item, as it would the separate ones.
//
// Results are aligned with items: Stored is true iff at least one node, this one included,
// accepted the item (quirk Q3: hivemind reports the last replica's answer); Replicas lists every
// replica's answer in the order the answers came, not nearest first, and Accepted counts those
// that accepted. Values and subkeys are Go values of the msgpack model or msgpack.Raw; each record
// is signed by the validator before it leaves. An item that cannot be encoded is an error wrapping
// ErrInvalidValue, a NaN or infinite expiration one wrapping ErrInvalidExpiration; nothing is
// stored then. A validator's rejection is a false result.
func (n *Node) StoreMany(ctx context.Context, items []StoreItem) ([]StoreResult, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	groups, order, err := n.prepareStore(items)
	if err != nil {
		return nil, err
	}
	results := make([]StoreResult, len(items))
	if len(items) == 0 {
		return results, nil
	}

	book := newPeerBook()
	n.mu.Lock()
	for _, key := range order {
		for _, c := range n.table.NearestNeighbors(key, n.cfg.BucketSize, &n.id) {
			book.add(c)
		}
	}
	n.mu.Unlock()

	ctx, cancel := n.withLifetime(ctx)
	defer cancel()
	var wg sync.WaitGroup
	trace := &opTrace{}
	stores := newStoreBatcher(ctx, n, trace)
	_, err = n.lookup(ctx, lookupParams{
		queries:        order,
		beam:           max(n.cfg.BucketSize, n.cfg.NumReplicas),
		queriesPerCall: int(math.Sqrt(float64(len(order)))),
		book:           book,
		trace:          trace,
		found: func(key ID, nearest []ID) {
			after := trace.deepest()
			wg.Go(func() { n.storeKey(ctx, key, nearest, groups[key], book, results, stores, after) })
		},
	})
	wg.Wait()
	stores.wait()
	if n.isClosed() {
		return nil, ErrShutdown // also when every RPC failed as the node closed (no error then)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	n.stats.opDone(opStore, trace, trace.deepest())
	return results, nil
}

// storeItem is one StoreItem encoded for the wire.
type storeItem struct {
	index  int    // position in the caller's items
	subkey []byte // msgpack of the subkey; nil for a regular value
	wire   wireItem
}

// prepareStore encodes, signs and groups items by key ID (order: first appearance).
func (n *Node) prepareStore(items []StoreItem) (map[ID][]storeItem, []ID, error) {
	groups := make(map[ID][]storeItem)
	var order []ID
	for i, it := range items {
		if !validFloat(it.Expiration) {
			return nil, nil, fmt.Errorf("%w: item %d: %v", ErrInvalidExpiration, i, it.Expiration)
		}
		value, err := encodeValue(it.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: item %d value: %w", ErrInvalidValue, i, err)
		}
		var subkey []byte
		if it.Subkey != nil {
			if subkey, err = encodeValue(it.Subkey); err != nil {
				return nil, nil, fmt.Errorf("%w: item %d subkey: %w", ErrInvalidValue, i, err)
			}
			if string(subkey) == TagRegular {
				subkey = nil // a nil subkey given as msgpack: a regular value, as in hivemind
			}
		}
		key := it.Key.ID()
		tag := []byte(TagRegular)
		if subkey != nil {
			tag = subkey
		}
		if n.cfg.Validator != nil {
			value = n.cfg.Validator.SignValue(Record{Key: key.Bytes(), Subkey: tag, Value: value, Expiration: it.Expiration})
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], storeItem{
			index:  i,
			subkey: subkey,
			wire:   wireItem{key: key, tag: tag, value: value, expiration: it.Expiration},
		})
	}
	return groups, order, nil
}

// encodeValue returns the msgpack of a Go value, or the bytes of a msgpack.Raw as they are (they
// must hold exactly one value).
func encodeValue(v any) ([]byte, error) {
	if raw, ok := v.(msgpack.Raw); ok {
		if _, err := msgpack.Unmarshal(raw); err != nil {
			return nil, err
		}
		return slices.Clone([]byte(raw)), nil
	}
	return msgpack.Marshal(v)
}

// storeKey stores one key's items at its nearest nodes (hivemind's on_found). It runs on its own
// goroutine; results[i] is written only for this key's items. The STOREs go through stores; the
// first ones follow the lookup's round after, a replacement follows the failure it replaces.
func (n *Node) storeKey(ctx context.Context, key ID, nearest []ID, items []storeItem, book *peerBook, results []StoreResult,
	stores *storeBatcher, after int) {
	candidates := slices.DeleteFunc(slices.Clone(nearest), func(id ID) bool { return id == n.id })
	candidates = append(candidates, n.id)
	slices.SortFunc(candidates, func(a, b ID) int { return a.Xor(key).Cmp(b.Xor(key)) })
	wire := make([]wireItem, len(items))
	for i, it := range items {
		wire[i] = it.wire
	}

	type reply struct {
		node  ID
		peer  PeerID
		oks   []bool
		err   error
		round int
	}
	record := func(r reply) {
		for i, it := range items {
			rr := ReplicaResult{Peer: r.peer, Node: r.node, Err: r.err}
			if r.err == nil && i < len(r.oks) {
				rr.Accepted = r.oks[i]
			}
			res := &results[it.index]
			res.Replicas = append(res.Replicas, rr)
			res.Stored = res.Stored || rr.Accepted
		}
	}
	replies := make(chan reply, len(candidates))
	successes, pending := 0, 0
	for successes < n.cfg.NumReplicas && (len(candidates) > 0 || pending > 0) {
		for len(candidates) > 0 && successes+pending < n.cfg.NumReplicas && ctx.Err() == nil {
			node := candidates[0]
			candidates = candidates[1:]
			if node == n.id {
				successes++
				record(reply{node: n.id, peer: n.self, oks: n.storeLocal(items)})
				continue
			}
			peer, ok := book.get(node)
			if !ok {
				continue
			}
			pending++
			stores.store(peer, wire, after, func(r storeReply) { // replies has room: this never blocks
				replies <- reply{node: node, peer: peer, oks: r.oks, err: r.err, round: r.round}
			})
		}
		if pending == 0 {
			break
		}
		r := <-replies
		after = max(after, r.round)
		pending--
		if r.err == nil {
			successes++
		}
		record(r)
	}
	if !n.cfg.DisableCacheOnStore {
		oks := make([]bool, len(items))
		for i, it := range items {
			oks[i] = results[it.index].Stored
		}
		n.updateCacheOnStore(key, items, oks)
	}
}

// storeLocal validates and stores a key's items in the local storage (and persists them), one
// answer per item.
func (n *Node) storeLocal(items []storeItem) []bool {
	writes := make([]*localWrite, len(items))
	for i, it := range items {
		if n.validRecord(it.wire.key.Bytes(), it.wire.tag, it.wire.value, it.wire.expiration) {
			writes[i] = &localWrite{item: it.wire}
		}
	}
	return n.applyWrites(writes)
}

// validRecord runs the validator (if any) on one record; it is never called under n.mu.
func (n *Node) validRecord(key, tag, value []byte, expiration float64) bool {
	if n.cfg.Validator == nil {
		return true
	}
	ok, reason := n.cfg.Validator.Validate(Record{Key: key, Subkey: tag, Value: value, Expiration: expiration})
	if !ok {
		n.log.Debug("dht: record rejected by the validator", "reason", reason)
	}
	return ok
}

// Bounds of one STORE that carries the items of several keys (a key's own items go whole when the
// bounds allow); the node's MaxRequestItems bounds it too, as the limit it assumes its peers apply
// to an inbound STORE (handoff applies both): a peer answers a larger request with an error, and
// the keys in it would lose that replica.
const (
	maxStoreBatchItems = 1000
	maxStoreBatchBytes = 1 << 20 // well below the 4 MiB frame cap of hivemind's peers
)

// storeBatcher sends the STOREs of one StoreMany (or a search's cache pushes, newPushBatcher),
// coalescing them per peer: at most one STORE to a peer is in flight; the items queued for it
// meanwhile leave together in the next one (whole keys, up to maxStoreBatchItems, MaxRequestItems
// and maxStoreBatchBytes; a key with more items or bytes than a STORE may carry goes in several). A STORE
// alone for its peer leaves at once, so a single key's stores are sent exactly as without it. Every STORE is counted in the trace (if any); the round of a STORE
// follows the previous one to the same peer and the lookup rounds of the keys it carries.
type storeBatcher struct {
	ctx   context.Context
	n     *Node
	trace *opTrace
	wg    sync.WaitGroup    // the per-peer senders of a StoreMany
	start func(func()) bool // starts a sender; false when it cannot (the node closed)
	// pushes marks the node's push batcher: a peer's queue is forgotten once empty, and items for
	// a peer with maxQueuedPushStores full STOREs waiting are dropped (a push is best effort).
	pushes bool

	mu    sync.Mutex
	peers map[PeerID]*storeQueue
}

// storeQueue is one peer's queue: waiting is sent by the sender goroutine running while busy.
type storeQueue struct {
	busy    bool
	waiting []*storeWait
	round   int // the round of the last STORE sent to the peer
}

// storeWait is one key's items waiting for a STORE to one peer.
type storeWait struct {
	items []wireItem
	after int              // the key's lookup round
	done  func(storeReply) // called once with the answer, on the sender's goroutine
}

// storeReply is a STORE's answer for one key's items.
type storeReply struct {
	oks   []bool
	err   error
	round int
}

// newStoreBatcher returns the batcher of one StoreMany: its senders run under ctx and wait
// returns once they have all returned.
func newStoreBatcher(ctx context.Context, n *Node, trace *opTrace) *storeBatcher {
	b := &storeBatcher{ctx: ctx, n: n, trace: trace, peers: make(map[PeerID]*storeQueue)}
	b.start = func(f func()) bool {
		b.wg.Go(f)
		return true
	}
	return b
}

// newPushBatcher returns the node's batcher for background STOREs (every search's pushes of found
// values to the nearest nodes, Node.pushes): its senders are the node's tracked goroutines, under
// its lifetime, and nothing waits for them. Shared by all searches, it coalesces the pushes of
// concurrent gets bound for one peer into its next STORE; a peer's queue exists only while it has
// pushes waiting or in flight, and holds at most maxQueuedPushStores full STOREs of waiting pushes
// (a push is one item; further pushes to a peer that slow are dropped, answered errPushDropped).
func (n *Node) newPushBatcher() *storeBatcher {
	return &storeBatcher{ctx: n.lifetime, n: n, peers: make(map[PeerID]*storeQueue), pushes: true,
		start: func(f func()) bool { return n.spawn(func(context.Context) { f() }) }}
}

// maxQueuedPushStores bounds the pushes waiting for one peer, in full STOREs (of maxItems pushes).
const maxQueuedPushStores = 4

// errPushDropped answers a push that its peer's full queue could not take.
var errPushDropped = errors.New("dht: cache push dropped: the peer's queue is full")

// maxItems is the most items one STORE of the batcher carries.
func (b *storeBatcher) maxItems() int { return min(maxStoreBatchItems, b.n.cfg.MaxRequestItems) }

// store queues one key's items for peer, to be sent alone or with other keys', and returns at
// once; done receives the peer's answers for them, once. done must not block: it runs on the
// goroutine that sends the peer's STOREs (no goroutine waits per key and replica). Items that one
// STORE cannot carry (more than maxItems, or more than maxStoreBatchBytes) are queued in parts,
// each its own STORE, and done receives their answers joined (storeJoin).
func (b *storeBatcher) store(peer PeerID, items []wireItem, after int, done func(storeReply)) {
	parts := splitStoreItems(items, b.maxItems())
	if len(parts) == 1 {
		b.enqueue(peer, items, after, done)
		return
	}
	j := &storeJoin{reply: storeReply{oks: make([]bool, len(items))}, left: len(parts), done: done}
	off := 0
	for _, part := range parts {
		start := off
		b.enqueue(peer, part, after, func(r storeReply) { j.add(start, r) })
		off += len(part)
	}
}

// splitStoreItems cuts items, in order, into parts of at most maxItems items and
// maxStoreBatchBytes (an item larger than that is a part alone).
func splitStoreItems(items []wireItem, maxItems int) [][]wireItem {
	var parts [][]wireItem
	start, size := 0, 0
	for i, it := range items {
		if i > start && (i-start >= maxItems || size+it.batchSize() > maxStoreBatchBytes) {
			parts = append(parts, items[start:i])
			start, size = i, 0
		}
		size += it.batchSize()
	}
	return append(parts, items[start:])
}

// storeJoin joins the answers to the parts of one key's items: the oks in order, or the first
// error (the peer failed that replica, whatever it answered for the other parts), and the deepest
// round. Its parts may be answered on different sender goroutines, one after another.
type storeJoin struct {
	mu    sync.Mutex
	reply storeReply
	left  int              // parts not answered yet
	done  func(storeReply) // called once, with the last part's answer
}

// add notes the answer to the part that starts at item off.
func (j *storeJoin) add(off int, r storeReply) {
	j.mu.Lock()
	if r.err == nil {
		copy(j.reply.oks[off:], r.oks)
	} else if j.reply.err == nil {
		j.reply.err = r.err
	}
	j.reply.round = max(j.reply.round, r.round)
	j.left--
	last := j.left == 0
	j.mu.Unlock()
	if last {
		if j.reply.err != nil {
			j.reply.oks = nil
		}
		j.done(j.reply)
	}
}

// enqueue queues items (at most maxItems) for peer as one wait; see store.
func (b *storeBatcher) enqueue(peer PeerID, items []wireItem, after int, done func(storeReply)) {
	w := &storeWait{items: items, after: after, done: done}
	b.mu.Lock()
	q := b.peers[peer]
	if q == nil {
		q = &storeQueue{}
		b.peers[peer] = q
	}
	if b.pushes && len(q.waiting) >= maxQueuedPushStores*b.maxItems() {
		b.mu.Unlock()
		done(storeReply{err: errPushDropped})
		return
	}
	q.waiting = append(q.waiting, w)
	if !q.busy {
		q.busy = true
		if !b.start(func() { b.send(peer, q) }) {
			// The node closed: nobody sends this queue; answer what waits in it.
			q.busy = false
			waiting := q.waiting
			q.waiting = nil
			b.mu.Unlock()
			for _, w := range waiting {
				w.done(storeReply{err: ErrShutdown})
			}
			return
		}
	}
	b.mu.Unlock()
}

// send sends peer's queue, one STORE at a time, until it is empty.
func (b *storeBatcher) send(peer PeerID, q *storeQueue) {
	for {
		b.mu.Lock()
		if len(q.waiting) == 0 {
			q.busy = false
			if b.pushes {
				delete(b.peers, peer) // nothing to keep: pushes carry no rounds
			}
			b.mu.Unlock()
			return
		}
		batch, rest := takeStoreBatch(q.waiting, b.maxItems())
		q.waiting = rest
		round := q.round
		for _, w := range batch {
			round = max(round, w.after)
		}
		round++
		q.round = round
		b.mu.Unlock()

		var items []wireItem
		for _, w := range batch {
			items = append(items, w.items...)
		}
		b.trace.sent()
		oks, err := b.n.callStore(b.ctx, peer, items)
		b.trace.completed(round)
		off := 0
		for _, w := range batch {
			r := storeReply{err: err, round: round}
			if err == nil {
				r.oks = make([]bool, len(w.items))
				for i := range w.items {
					r.oks[i] = off+i < len(oks) && oks[off+i]
				}
			}
			off += len(w.items)
			w.done(r)
		}
	}
}

// takeStoreBatch takes the waits of the next STORE from the front of waiting: at least one, then
// as many more as maxItems and maxStoreBatchBytes allow.
func takeStoreBatch(waiting []*storeWait, maxItems int) (batch, rest []*storeWait) {
	items, size := 0, 0
	for i, w := range waiting {
		wsize := 0
		for _, it := range w.items {
			wsize += it.batchSize()
		}
		if i > 0 && (items+len(w.items) > maxItems || size+wsize > maxStoreBatchBytes) {
			return waiting[:i], waiting[i:]
		}
		items, size = items+len(w.items), size+wsize
	}
	return waiting, nil
}

// wait returns once every sender has returned.
func (b *storeBatcher) wait() { b.wg.Wait() }
