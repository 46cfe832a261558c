package dht

import (
	"context"
)

// This file hands records to nodes new to the routing table (hivemind's update_routing_table,
// spec §3.6): a node that is new to the table is sent the records of our storage (not the cache)
// that it should now hold — those we hold while knowing no other node, or for which it is nearer
// than the farthest of our NumReplicas nearest neighbours while we are nearer than all of them.
// Dictionaries are sent whole.
//
// hivemind walks and packs the whole storage when the node is met; at 10^5–10^6 keys that is
// seconds of work, which must not happen under the Node's lock. Here the new node is queued under
// the lock, and one goroutine at a time runs passes. A pass takes the queued nodes (up to
// maxHandoffBatch) and a copy of the routing table's active nodes, then walks the storage
// handoffChunk keys per lock hold: it copies the chunk's key IDs under the lock, selects outside
// it (a bit mask rules out, in a few nanoseconds per key, every key for which we are not the
// nearest known node, the condition hivemind's rule starts with), copies the selected values under
// the lock again, packs dictionaries outside it, and sends each node its records.

const (
	// maxHandoffBatch bounds the new nodes one pass serves (their selection costs grow with it).
	maxHandoffBatch = 64
	// maxHandoffQueue bounds the new nodes waiting for a pass; beyond it new nodes get nothing.
	maxHandoffQueue = 4096
	// handoffChunk is the number of keys (and at most of values) one lock hold copies.
	handoffChunk = 1024
)

// queueHandoffLocked queues a node new to the routing table for a handoff and reports whether a
// pass must be started (n.handoffLoop). Nothing is queued while the storage is empty. Called with
// n.mu held, before the node is added to the table.
func (n *Node) queueHandoffLocked(c Contact, now float64) (start bool) {
	if n.storage.Len(now) == 0 {
		return false
	}
	if len(n.handoffQ) >= maxHandoffQueue {
		n.log.Debug("dht: handoff queue full; the new node gets no records", "node", c.ID.String())
		return false
	}
	n.handoffQ = append(n.handoffQ, c)
	if n.handoffOn {
		return false
	}
	n.handoffOn = true
	return true
}

// handoffLoop runs handoff passes until the queue is empty. One runs at a time (n.handoffOn).
func (n *Node) handoffLoop(ctx context.Context) {
	for ctx.Err() == nil {
		n.mu.Lock()
		batch := n.handoffQ[:min(len(n.handoffQ), maxHandoffBatch)]
		n.handoffQ = n.handoffQ[len(batch):]
		if len(batch) == 0 {
			n.handoffQ = nil
			n.handoffOn = false
			n.mu.Unlock()
			return
		}
		view := n.table.activeView()
		n.mu.Unlock()
		n.handoff(ctx, batch, view)
	}
}

// handoff walks the storage handoffChunk keys at a time and sends each node of batch the records
// it should hold, in STOREs of at most MaxRequestItems items and maxStoreBatchBytes (a record
// larger than that goes alone).
func (n *Node) handoff(ctx context.Context, batch []Contact, view *RoutingTable) {
	sel := n.newHandoffSelector(batch, view)
	pending := make([][]wireItem, len(batch))
	pendingBytes := make([]int, len(batch))
	send := func(j int, items []wireItem) {
		peer := batch[j].Peer
		n.spawn(func(ctx context.Context) { _, _ = n.callStore(ctx, peer, items) })
	}
	keys := make([]ID, 0, handoffChunk)
	var cursor keyCursor
	for done := false; !done && ctx.Err() == nil; {
		now := n.now()
		n.mu.Lock()
		keys, cursor, done = n.storage.keysAfter(keys[:0], cursor, handoffChunk)
		n.mu.Unlock()
		selected := sel.selectKeys(keys)
		items := n.handoffItems(keys, selected, now)
		for j, indexes := range selected {
			for _, ki := range indexes {
				it, ok := items[ki]
				if !ok {
					continue
				}
				size := it.batchSize()
				if len(pending[j]) > 0 &&
					(len(pending[j]) >= n.cfg.MaxRequestItems || pendingBytes[j]+size > maxStoreBatchBytes) {
					send(j, pending[j])
					pending[j], pendingBytes[j] = nil, 0
				}
				pending[j] = append(pending[j], it)
				pendingBytes[j] += size
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	for j, items := range pending {
		if len(items) > 0 {
			send(j, items)
		}
	}
}

// handoffSelector decides which keys the nodes of a batch should receive.
type handoffSelector struct {
	self     ID
	replicas int
	batch    []Contact
	view     *RoutingTable
	pos      map[ID]int // batch index, by node ID (the first, for a repeated node)
	// mask holds, for each active node of view other than ours and the batch's, the first bit
	// where its ID differs from ours: we are nearer to a key than all of them iff the key agrees
	// with our ID on every bit of mask.
	mask ID
}

// newHandoffSelector prepares the selection for batch (in arrival order). view is a copy of the
// routing table's active nodes taken after the batch was added: node j is judged against the table
// it met, without the batch nodes j and later.
func (n *Node) newHandoffSelector(batch []Contact, view *RoutingTable) *handoffSelector {
	s := &handoffSelector{self: n.id, replicas: n.cfg.NumReplicas, batch: batch, view: view, pos: make(map[ID]int, len(batch))}
	for j, c := range batch {
		if _, seen := s.pos[c.ID]; !seen {
			s.pos[c.ID] = j
		}
	}
	for _, b := range view.buckets {
		for e := b.nodes.head; e != nil; e = e.next {
			if _, inBatch := s.pos[e.c.ID]; !inBatch && e.c.ID != n.id {
				s.mask = withBit(s.mask, firstDifference(e.c.ID, n.id))
			}
		}
	}
	return s
}

// selectKeys returns, per batch node, the indexes of the keys it should receive (hivemind's rule:
// the key is ours alone — we know no other node — or the new node is nearer than the farthest of
// our NumReplicas nearest neighbours while we are nearer than all of them).
func (s *handoffSelector) selectKeys(keys []ID) [][]int {
	selected := make([][]int, len(s.batch))
	want := s.replicas + len(s.batch)
	for ki, key := range keys {
		self := s.self.Xor(key)
		if !disjoint(self, s.mask) {
			continue // another node is nearer: it hands the record over, not us
		}
		neighbors := s.view.NearestNeighbors(key, want, &s.self)
		for j, c := range s.batch {
			var nearest, farthest ID
			count := 0
			for _, x := range neighbors {
				if k, inBatch := s.pos[x.ID]; inBatch && k >= j {
					continue // not in the table yet when node j came
				}
				if count == 0 {
					nearest = x.ID.Xor(key)
				}
				farthest = x.ID.Xor(key)
				if count++; count == s.replicas {
					break
				}
			}
			if count > 0 && (!c.ID.Xor(key).Less(farthest) || !self.Less(nearest)) {
				continue
			}
			selected[j] = append(selected[j], ki)
		}
	}
	return selected
}

// handoffItems returns the STORE items of the selected keys (by index into keys), dictionaries
// whole: the values are copied in one lock hold and the dictionaries packed outside it. Keys gone
// since keys was taken are left out.
func (n *Node) handoffItems(keys []ID, selected [][]int, now float64) map[int]wireItem {
	var union []int
	seen := make([]bool, len(keys))
	for _, s := range selected {
		for _, ki := range s {
			if !seen[ki] {
				seen[ki] = true
				union = append(union, ki)
			}
		}
	}
	if len(union) == 0 {
		return nil
	}
	values := make([]localValue, len(union))
	exps := make([]float64, len(union))
	found := make([]bool, len(union))
	n.mu.Lock()
	for i, ki := range union {
		values[i], exps[i], found[i] = n.storage.copyValue(keys[ki], now)
	}
	n.mu.Unlock()
	items := make(map[int]wireItem, len(union))
	for i, ki := range union {
		if !found[i] {
			continue
		}
		it := wireItem{key: keys[ki], tag: []byte(TagRegular), value: values[i].regular, expiration: exps[i]}
		if d := values[i].dict; d != nil {
			it.tag, it.value = []byte(TagDictionary), d.Pack(now)
		}
		items[ki] = it
	}
	return items
}

// firstDifference returns the index (from the most significant bit) of the first bit where a and
// b differ; a and b must differ.
func firstDifference(a, b ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			bit := 0
			for x&0x80 == 0 {
				x <<= 1
				bit++
			}
			return i*8 + bit
		}
	}
	return IDLen*8 - 1
}

// disjoint reports whether a and b have no bit set in common.
func disjoint(a, b ID) bool {
	for i := range a {
		if a[i]&b[i] != 0 {
			return false
		}
	}
	return true
}
