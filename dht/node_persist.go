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
// item. With a Persister, the new state of every storage key they changed (taken after the key's
// last item, so a dictionary is packed once per request, not once per subkey) is persisted in one
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
		batch   []PersistedRecord
		last    map[ID]int  // the index of each storage key's last item
		changed map[ID]bool // the storage keys an item changed
	)
	if p != nil {
		last, changed = make(map[ID]int), make(map[ID]bool)
		for i, w := range ws {
			if w != nil && !w.inCache {
				last[w.item.key] = i
			}
		}
	}
	for i, w := range ws {
		if w == nil {
			continue
		}
		now := n.now()
		n.mu.Lock()
		s := n.target(w.inCache)
		var some bool
		if w.dict != nil {
			ok[i], some = n.storeDictionaryLocked(s, w.from, w.item.key, w.dict, now)
		} else {
			ok[i] = n.storeItemLocked(s, w.from, w.item, now)
			some = ok[i]
		}
		if p != nil && !w.inCache {
			key := w.item.key
			changed[key] = changed[key] || some
			if last[key] == i && changed[key] {
				if r, live := n.storage.persisted(key, now); live {
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
		failed := make(map[ID]bool, len(batch))
		for _, r := range batch {
			failed[r.Key] = true
		}
		for i, w := range ws {
			if w != nil && !w.inCache && failed[w.item.key] {
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
