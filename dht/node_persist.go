package dht

import (
	"fmt"
	"slices"
)

// This file connects the Node's storage to cfg.Persister: the records loaded at New, and the
// writes that follow every request that changed the storage (see Persister for the contract).

// localWrite is one validated item on its way into the storage or the cache.
type localWrite struct {
	item    wireItem
	dict    *DictionaryValue // the unpacked value of a whole dictionary (tag TagDictionary)
	inCache bool
	from    PeerID // the sender of an inbound STORE, whose account the item is charged to; "" for ours
}

// applyWrites stores validated items (a nil entry is a refused item) and answers one boolean per
// item. With a Persister, the new state of every storage key they changed is persisted in one
// Persist call before it returns, and an item whose key could not be persisted is answered false.
// The state lock is taken per item; persistMu, held throughout when an item is for the storage,
// orders the Persist calls.
func (n *Node) applyWrites(ws []*localWrite) []bool {
	ok := make([]bool, len(ws))
	p := n.cfg.Persister
	if p != nil && slices.ContainsFunc(ws, func(w *localWrite) bool { return w != nil && !w.inCache }) {
		n.persistMu.Lock()
		defer n.persistMu.Unlock()
	} else {
		p = nil // nothing for the storage: the cache is not persisted
	}
	var (
		batch []PersistedRecord
		at    map[ID]int // index in batch, by key
	)
	for i, w := range ws {
		if w == nil {
			continue
		}
		now := n.now()
		n.mu.Lock()
		s := n.target(w.inCache)
		var changed bool
		if w.dict != nil {
			ok[i], changed = n.storeDictionaryLocked(s, w.from, w.item.key, w.dict, now)
		} else {
			ok[i] = n.storeItemLocked(s, w.from, w.item, now)
			changed = ok[i]
		}
		if p != nil && changed && !w.inCache {
			if r, live := n.storage.persisted(w.item.key, now); live {
				if at == nil {
					at = make(map[ID]int)
				}
				if j, seen := at[r.Key]; seen {
					batch[j] = r // the latest state of the key wins
				} else {
					at[r.Key] = len(batch)
					batch = append(batch, r)
				}
			}
		}
		n.mu.Unlock()
	}
	if len(batch) == 0 {
		return ok
	}
	if err := p.Persist(batch); err != nil {
		n.log.Warn("dht: persisting stored records failed; the items are answered false",
			"records", len(batch), "err", err)
		for i, w := range ws {
			if w == nil || w.inCache {
				continue
			}
			if _, seen := at[w.item.key]; seen {
				ok[i] = false
			}
		}
	}
	return ok
}

// load feeds cfg.Persister's records into the storage (New, before anything else runs), each in
// its Owner's account.
func (n *Node) load() error {
	p := n.cfg.Persister
	if p == nil {
		return nil
	}
	now := n.now()
	var loaded, expired, unusable int
	n.mu.Lock()
	defer n.mu.Unlock()
	err := p.Load(func(r PersistedRecord) {
		var ok bool
		switch r.Kind {
		case ValueRegular:
			var err error
			if ok, err = n.storage.StoreFrom(r.Owner, r.Key, r.Value, r.Expiration, now); err != nil {
				unusable++
				n.log.Warn("dht: persisted record not loaded", "key", r.Key.String(), "err", err)
				return
			}
		case ValueDictionary:
			d, err := UnpackDictionary(r.Value)
			if err != nil {
				unusable++
				n.log.Warn("dht: persisted dictionary not loaded", "key", r.Key.String(), "err", err)
				return
			}
			_, ok = n.storeDictionaryLocked(n.storage, r.Owner, r.Key, d, now)
		default:
			unusable++
			n.log.Warn("dht: persisted record of unknown kind not loaded", "key", r.Key.String(), "kind", r.Kind)
			return
		}
		if ok {
			loaded++
		} else {
			expired++
		}
	})
	if err != nil {
		return fmt.Errorf("dht: load persisted records: %w", err)
	}
	n.log.Debug("dht: persisted records loaded", "loaded", loaded, "expired", expired, "unusable", unusable,
		"stored_keys", n.storage.Len(now))
	return nil
}
