package dht

import (
	"context"
	"time"
)

// refreshLoop is the routing-table refresh (spec §2.9, quirk Q4 fixed: hivemind's loop crashes the
// first time it fires). Every RefreshInterval, each bucket not updated during the last interval is
// refreshed by a lookup of a random ID inside it (a bucket last updated exactly one interval ago
// counts as stale) (one multi-query lookup for all of them). Peers
// that fail to answer are evicted by the lookup itself, as in hivemind. It runs on a tracked
// goroutine until the node closes.
func (n *Node) refreshLoop(ctx context.Context) {
	ticker := time.NewTicker(n.cfg.RefreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			n.refreshBuckets(ctx)
		}
	}
}

// refreshBuckets looks up a random ID in every stale bucket.
func (n *Node) refreshBuckets(ctx context.Context) {
	threshold := n.now() - seconds(n.cfg.RefreshInterval)
	n.mu.Lock()
	buckets := n.table.Buckets()
	n.mu.Unlock()
	var ids []ID
	for _, b := range buckets {
		if b.LastUpdated <= threshold {
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
