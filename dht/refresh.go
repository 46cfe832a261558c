package dht

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// refreshLoop is the routing-table refresh (spec §2.9, quirk Q4 fixed: hivemind's loop crashes the
// first time it fires). Every RefreshInterval it first re-contacts the initial peers missing from
// the routing table (an extension, see reconnectInitialPeers), then refreshes each bucket not
// updated during the last interval by a lookup of a random ID inside it (a bucket last updated
// exactly one interval ago counts as stale), all of them in one multi-query lookup. Two extensions
// widen that lookup: a table holding fewer than BucketSize nodes refreshes every bucket, and a tick
// that brought an initial peer back also looks up the node's own ID, as Bootstrap does. Peers that
// fail to answer are evicted by the lookup itself, as in hivemind. It runs on a tracked goroutine
// until the node closes.
//
// Between ticks it also rejoins early when the routing table loses its last node (see rejoin).
func (n *Node) refreshLoop(ctx context.Context) {
	ticker := time.NewTicker(n.cfg.RefreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			n.refreshBuckets(ctx)
		case <-n.lonely:
			n.rejoin(ctx)
		}
	}
}

// rejoinFirstWait is rejoin's first wait; each unanswered attempt doubles it.
const rejoinFirstWait = time.Second

// noteIfLonelyLocked wakes the refresh loop's rejoin when the routing table holds no active node
// and the node has initial peers to rejoin through. n.mu must be held.
func (n *Node) noteIfLonelyLocked() {
	if n.table.Len() > 0 || len(n.initialPeers) == 0 {
		return
	}
	select {
	case n.lonely <- struct{}{}:
	default: // a rejoin is already due
	}
}

// rejoin re-contacts the initial peers of a node whose routing table lost its last node, without
// waiting for the next refresh tick: after rejoinFirstWait, then after waits that double while no
// initial peer answers, until a wait would reach RefreshInterval (the regular refresh takes over
// from there). It stops as soon as the table holds a node again (an initial peer answered, or
// another node contacted this one); when an initial peer answered, it looks up the node's own ID,
// as Bootstrap does, so that the nodes near it learn of it and it of them.
//
// Extension to hivemind (and to the refresh of reconnectInitialPeers, which alone would leave such
// a node isolated for up to a whole RefreshInterval): a node cut off the network for a few
// seconds evicts every node it fails to reach, and stores meanwhile land on it alone; the sooner it
// is back in the others' tables, the sooner those records are found and handed off (handoff.go).
// The cost is a ping per initial peer per attempt, and only while the table is empty.
func (n *Node) rejoin(ctx context.Context) {
	for wait := rejoinFirstWait; wait < n.cfg.RefreshInterval; wait *= 2 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n.mu.Lock()
		held := n.table.Len()
		n.mu.Unlock()
		if held > 0 {
			return
		}
		if n.reconnectInitialPeers(ctx) > 0 {
			if _, err := n.FindNearestNodes(ctx, []ID{n.id}, 0, false); err != nil && ctx.Err() == nil {
				n.log.Debug("dht: rejoin lookup failed", "err", err)
			}
			return
		}
	}
}

// refreshBuckets runs one tick of the refresh: the initial peers first, so that the lookup can go
// through the ones that came back, then a lookup of a random ID in every stale bucket (every
// bucket while the table holds fewer than BucketSize nodes), plus the node's own ID when an
// initial peer came back.
func (n *Node) refreshBuckets(ctx context.Context) {
	rejoined := n.reconnectInitialPeers(ctx)
	if ctx.Err() != nil {
		return
	}
	threshold := n.now() - seconds(n.cfg.RefreshInterval)
	n.mu.Lock()
	buckets := n.table.Buckets()
	sparse := n.table.Len() < n.cfg.BucketSize
	n.mu.Unlock()
	var ids []ID
	if rejoined > 0 {
		ids = append(ids, n.id)
	}
	for _, b := range buckets {
		if sparse || b.LastUpdated <= threshold {
			ids = append(ids, b.RandomID(RandomID()))
		}
	}
	if len(ids) == 0 {
		return
	}
	if _, err := n.FindNearestNodes(ctx, ids, 0, true); err != nil && ctx.Err() == nil {
		n.log.Debug("dht: routing-table refresh failed", "buckets", len(ids), "err", err)
	}
}

// reconnectInitialPeers pings every initial peer (cfg.InitialPeers and those AddInitialPeers
// added) that is not in the routing table (neither active nor a replacement), concurrently on
// tracked goroutines, and returns once each ping has ended (each is bounded by WaitTimeout); it
// returns how many answered. It does nothing before Bootstrap or AddInitialPeers got past its pings
// (New sends nothing by itself).
//
// Extension to hivemind, which contacts its initial peers only at bootstrap: a peer that stops
// answering is deleted from the routing table (spec §3.6), and after a network partition each side
// has deleted every node of the other, so a routing-table refresh (which asks only nodes in the
// table) can never bring them back. The initial peers are the node's fixed points of re-entry.
//
// The ping does not validate (validate=false, like the routing table's own pings of §3.6): an
// answer adds the peer through the normal routing-table update (with the handoff of the records it
// should now store), and it lifts the peer's FIND ban, if any, so that the lookup that follows can
// go through it (in hivemind only a FIND answer lifts a ban; a peer that just answered is not
// unresponsive). Like every PING (spec §2.8), it ignores the blacklist, and a peer that does not
// answer is neither banned nor retried before the next tick: the cost is at most one ping per
// initial peer per RefreshInterval, and none while every initial peer is in the table.
func (n *Node) reconnectInitialPeers(ctx context.Context) int {
	if !n.bootstrapped.Load() {
		return 0
	}
	var absent []PeerID
	n.mu.Lock()
	for _, p := range n.initialPeers {
		if _, held := n.table.idHeldBy(p); held || p == n.self {
			continue
		}
		absent = append(absent, p)
	}
	n.mu.Unlock()
	if len(absent) == 0 {
		return 0
	}
	got := n.pingPeers(ctx, absent)
	n.log.Debug("dht: refresh re-contacted initial peers missing from the routing table",
		"missing", len(absent), "answered", got)
	return got
}

// pingPeers pings every peer without validation (see reconnectInitialPeers), concurrently on
// tracked goroutines, lifts the FIND ban of each peer that answers, and returns once each ping has
// ended (each is bounded by WaitTimeout, and all by ctx); it returns how many answered. ctx must
// end when the node closes (the lifetime context, or one withLifetime made).
func (n *Node) pingPeers(ctx context.Context, peers []PeerID) int {
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
	)
	for _, p := range peers {
		wg.Add(1)
		started := n.spawn(func(context.Context) {
			defer wg.Done()
			if _, err := n.callPing(ctx, p, false, true); err != nil {
				return
			}
			answered.Add(1)
			n.mu.Lock()
			n.blacklist.registerSuccess(p)
			n.mu.Unlock()
		})
		if !started {
			wg.Done() // the node is closing
		}
	}
	wg.Wait()
	return int(answered.Load())
}
