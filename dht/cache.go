package dht

import (
	"context"
	"time"
)

// This file holds the caching policies of spec §2.7: caching GET results locally and at the
// nearest nodes, updating the cache after a STORE, and refreshing used cache entries shortly
// before they expire.

// cacheNewResult runs when a network search ends (hivemind's _cache_new_result). A value newer
// than both our storage and cache is cached locally (unless DisableCacheLocally; always for a
// cache refresh) and pushed, in the background, to the CacheNearest nearest nodes of the search
// other than the one that served it (quirk Q13 kept: they may not have answered, or may hold it).
// A value expiring beyond MaxExpirationHorizon is neither cached nor pushed: a Go peer would
// refuse it, and a Python peer would keep a record that some hostile peer set.
// It runs on the traversal goroutine and does not block. The pushes go through pushes (the node's
// push batcher), so the values a GetMany found for many keys, or concurrent gets found, reach a
// node in a few STOREs (in_cache set per item) rather than one STORE per key as in hivemind; a
// push alone for its node is one STORE either way.
func (n *Node) cacheNewResult(st *searchState, nearest []ID, book *peerBook, pushes *storeBatcher) {
	v := st.snapshot()
	if v == nil {
		return
	}
	now := n.now()
	item := v.wholeItem(st.key, now)
	n.mu.Lock()
	newest := true
	for _, s := range []*LocalStorage{n.storage, n.cache} {
		if e, ok := s.Get(st.key, now); ok && e.Expiration >= v.expiration {
			newest = false
		}
	}
	if newest && (!n.cfg.DisableCacheLocally || st.isRefresh) {
		n.storeWholeLocked(n.cache, item, now)
	}
	n.mu.Unlock()
	if !newest || n.cfg.CacheNearest <= 0 {
		return
	}
	if v.expiration > n.expirationLimit(now) {
		return // Go peers would refuse it; Python peers would keep a record a hostile peer set
	}
	sent := 0
	for _, node := range nearest {
		if sent >= n.cfg.CacheNearest {
			break
		}
		if node == st.source || node == n.id {
			continue
		}
		peer, ok := book.get(node)
		if !ok {
			continue
		}
		sent++
		push := item
		push.inCache = true
		pushes.store(peer, []wireItem{push}, 0, func(storeReply) {})
	}
}

// updateCacheOnStore updates the cache after a key's store (hivemind's _update_cache_on_store):
// an accepted regular value is cached; a regular value rejected everywhere schedules an immediate
// refresh of a cached copy that is not newer (someone holds a newer value); accepted subkeys of a
// cached dictionary are added to it, and the key is refreshed at once.
func (n *Node) updateCacheOnStore(key ID, items []storeItem, oks []bool) {
	accepted, dictionary := false, false
	var best wireItem
	for i, it := range items {
		accepted = accepted || oks[i]
		dictionary = dictionary || it.subkey != nil
		if i == 0 || it.wire.expiration > best.expiration {
			best = it.wire
		}
	}
	now := n.now()
	refresh := false
	n.mu.Lock()
	switch {
	case accepted && !dictionary:
		_, _ = n.cache.Store(key, best.value, best.expiration, now)
	case !accepted && !dictionary:
		if e, ok := n.cache.Get(key, now); ok && e.Expiration <= best.expiration {
			refresh = true
		}
	case dictionary && n.cache.Contains(key, now):
		for i, it := range items {
			if oks[i] && it.subkey != nil {
				_, _ = n.cache.StoreSubkey(key, it.subkey, it.wire.value, it.wire.expiration, now)
			}
		}
		refresh = true
	}
	n.mu.Unlock()
	if refresh {
		n.scheduleRefresh(key, now)
	}
}

// scheduleRefresh queues key for a cache refresh at DHT time at (hivemind's _schedule_for_refresh:
// like its frozen TimedStorage queue, an earlier time than the one queued is ignored) and wakes
// the refresh loop when at becomes the earliest.
func (n *Node) scheduleRefresh(key ID, at float64) {
	if n.cfg.CacheRefreshBeforeExpiry <= 0 || !validFloat(at) {
		return
	}
	n.mu.Lock()
	top, ok := n.refreshQ.Top(0)
	_, _ = n.refreshQ.Store(key, struct{}{}, at, 0)
	start := !n.refreshOn
	n.refreshOn = true
	n.mu.Unlock()
	if start && !n.spawn(n.cacheRefreshLoop) {
		return
	}
	if !ok || at < top.Expiration {
		select {
		case n.wakeQ <- struct{}{}:
		default:
		}
	}
}

// cacheRefreshLoop re-fetches queued keys when their refresh time comes (hivemind's
// _refresh_stale_cache_entries): it takes the earliest key and up to ChunkSize-1 more that are due,
// and searches them with a sufficient expiration past what the cache holds, which caches the newer
// values found. It runs on a tracked goroutine, started at the first scheduled refresh, until the
// node closes.
func (n *Node) cacheRefreshLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		n.mu.Lock()
		top, ok := n.refreshQ.Top(0)
		n.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-n.wakeQ:
				continue
			}
		}
		if wait := n.untilDHT(top.Expiration); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-n.wakeQ:
				timer.Stop()
				continue // an earlier key arrived
			case <-timer.C:
			}
		}
		now := n.now()
		n.mu.Lock()
		keys := []ID{top.Key}
		maxExpiration := top.Expiration // a refresh time, not an expiration: quirk Q14, kept
		n.refreshQ.Delete(top.Key)
		for len(keys) < n.cfg.ChunkSize {
			next, ok := n.refreshQ.Top(0)
			if !ok || next.Expiration > now {
				break
			}
			n.refreshQ.Delete(next.Key)
			keys = append(keys, next.Key)
			if e, ok := n.cache.Get(next.Key, now); ok && e.Expiration > maxExpiration {
				maxExpiration = e.Expiration
			}
		}
		n.mu.Unlock()
		sufficient := maxExpiration + seconds(n.cfg.CacheRefreshBeforeExpiry) + 1
		states, stop := n.search(keys, sufficient, true)
		for _, st := range states {
			select {
			case <-st.done:
			case <-ctx.Done():
				stop()
				return
			}
		}
	}
}
