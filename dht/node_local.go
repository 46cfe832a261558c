package dht

import (
	"errors"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// This file connects the Node to its local storage and cache (LocalStorage) and to the values it
// receives: validation of incoming records, stores of received items, and the values a search
// holds.

// newLocalStores returns the node's storage (bounded by MaxStorageEntries/MaxStorageBytes) and
// cache (bounded by CacheSize entries, or the storage bounds when CacheSize is 0).
func newLocalStores(cfg Config) (storage, cache *LocalStorage, err error) {
	bounds := LocalStorageConfig{MaxEntries: cfg.MaxStorageEntries, MaxBytes: cfg.MaxStorageBytes}
	cacheBounds := bounds
	if cfg.CacheSize > 0 {
		cacheBounds.MaxEntries = cfg.CacheSize
	}
	return NewLocalStorage(bounds), NewLocalStorage(cacheBounds), nil
}

// foundValue is a value a search holds: a regular value's bytes or a dictionary, and its
// expiration (for a dictionary, the outer one: the latest of its subkeys').
type foundValue struct {
	regular    []byte
	dict       *DictionaryValue
	expiration float64
}

// fromLocal converts a local record; the dictionary is already the caller's own copy.
func fromLocal(e LocalEntry) foundValue {
	if e.Kind == ValueDictionary {
		return foundValue{dict: e.Dictionary, expiration: e.Expiration}
	}
	return foundValue{regular: e.Value, expiration: e.Expiration}
}

// clone returns a copy that shares nothing mutable (regular bytes are never modified).
func (v foundValue) clone() foundValue {
	if v.dict != nil {
		v.dict = v.dict.Clone()
	}
	return v
}

// wholeItem returns the value as one STORE item: a regular value with the regular tag, a
// dictionary packed whole with the dictionary tag.
func (v foundValue) wholeItem(key ID, now float64) wireItem {
	if v.dict != nil {
		return wireItem{key: key, tag: []byte(TagDictionary), value: v.dict.Clone().Pack(now), expiration: v.expiration}
	}
	return wireItem{key: key, tag: []byte(TagRegular), value: v.regular, expiration: v.expiration}
}

// result builds a GET result with expiration as the best expiration found; the validator's
// signatures are stripped from every value.
func (v foundValue) result(key ID, expiration float64, validator RecordValidator, now float64) *Result {
	if v.dict == nil {
		return &Result{Value: stripRegular(key, v.regular, expiration, validator), Expiration: expiration}
	}
	r := &Result{IsDictionary: true, Expiration: expiration}
	for _, e := range v.dict.Items(now) {
		value := []byte(e.Value)
		if validator != nil {
			value = validator.StripValue(Record{Key: key.Bytes(), Subkey: e.Subkey, Value: value, Expiration: e.Expiration})
		}
		r.Dictionary = append(r.Dictionary, DictionaryEntry{
			Subkey:     append([]byte(nil), e.Subkey...),
			Value:      append([]byte(nil), value...),
			Expiration: e.Expiration,
		})
	}
	return r
}

// mergeDictionary stores every live subkey of src into dst with the usual rules (hivemind merges
// the dictionaries of several replicas this way in add_candidate).
func mergeDictionary(dst, src *DictionaryValue, now float64) {
	for _, e := range src.Items(now) {
		_, _ = dst.Store(e.Subkey, e.Value, e.Expiration, now)
	}
}

// localGetLocked reads one local store; the value is the caller's own. Called with n.mu held.
func (n *Node) localGetLocked(s *LocalStorage, key ID, now float64) (foundValue, bool) {
	e, ok := s.Get(key, now)
	if !ok {
		return foundValue{}, false
	}
	return fromLocal(e), true
}

// localNewestLocked returns what rpc_find serves for key: the storage's record, or the cache's
// when it is strictly newer. Called with n.mu held.
func (n *Node) localNewestLocked(key ID, now float64) (LocalEntry, bool) {
	e, ok := n.storage.Get(key, now)
	if c, cok := n.cache.Get(key, now); cok && (!ok || c.Expiration > e.Expiration) {
		return c, true
	}
	return e, ok
}

// wire returns a local record as a FindResult's type, value and expiration.
func (e LocalEntry) wire() (dhtpb.ResultType, []byte, float64) {
	if e.Kind == ValueDictionary {
		return dhtpb.ResultType_FOUND_DICTIONARY, e.Value, e.Expiration
	}
	return dhtpb.ResultType_FOUND_REGULAR, e.Value, e.Expiration
}

// receivedValue validates one FindResult (hivemind's call_find): a regular value or every subkey
// of a dictionary must pass the validator, else the key counts as not found. A non-finite
// expiration or an undecodable dictionary counts as not found too.
func (n *Node) receivedValue(key ID, r *dhtpb.FindResult) *foundValue {
	exp := r.GetExpirationTime()
	if !validFloat(exp) {
		return nil
	}
	switch r.GetType() {
	case dhtpb.ResultType_FOUND_REGULAR:
		if !n.validRecord(key.Bytes(), []byte(TagRegular), r.GetValue(), exp) {
			return nil
		}
		return &foundValue{regular: r.GetValue(), expiration: exp}
	case dhtpb.ResultType_FOUND_DICTIONARY:
		d, err := UnpackDictionary(r.GetValue())
		if err != nil || !n.validDictionary(key.Bytes(), d) {
			return nil
		}
		return &foundValue{dict: d, expiration: exp}
	default:
		return nil
	}
}

// validDictionary validates every subkey of d, expired ones included (hivemind validates under
// freeze()).
func (n *Node) validDictionary(key []byte, d *DictionaryValue) bool {
	if n.cfg.Validator == nil {
		return true
	}
	prev := d.SetFrozen(true)
	defer d.SetFrozen(prev)
	for _, e := range d.Items(0) {
		if !n.validRecord(key, e.Subkey, e.Value, e.Expiration) {
			return false
		}
	}
	return true
}

// prepareReceived validates one item of an inbound STORE from the peer from (rawKey is the key as
// sent, which is what validators see, as in hivemind) and returns it ready for applyWrites, or nil
// when it is refused. It runs outside every lock.
func (n *Node) prepareReceived(from PeerID, rawKey []byte, it wireItem, inCache bool) *localWrite {
	if !validFloat(it.expiration) {
		return nil
	}
	if string(it.tag) == TagDictionary {
		d, err := UnpackDictionary(it.value)
		if err != nil || !n.validDictionary(rawKey, d) {
			return nil
		}
		return &localWrite{item: it, dict: d, inCache: inCache, from: from}
	}
	if !n.validRecord(rawKey, it.tag, it.value, it.expiration) {
		return nil
	}
	return &localWrite{item: it, inCache: inCache, from: from}
}

// target returns the cache or the storage.
func (n *Node) target(inCache bool) *LocalStorage {
	if inCache {
		return n.cache
	}
	return n.storage
}

// storeItemLocked stores one item (a regular value or a subkey) into s on behalf of the peer from
// ("": the node itself, or unknown), whose account it is charged to. Called with n.mu held.
func (n *Node) storeItemLocked(s *LocalStorage, from PeerID, it wireItem, now float64) bool {
	var ok bool
	var err error
	switch string(it.tag) {
	case TagRegular:
		ok, err = s.StoreFrom(from, it.key, it.value, it.expiration, now)
	case TagDictionary:
		return false // whole dictionaries go through storeDictionaryLocked
	default:
		ok, err = s.StoreSubkeyFrom(from, it.key, it.tag, it.value, it.expiration, now)
	}
	if err != nil && !errors.Is(err, ErrStorageFull) {
		n.log.Debug("dht: local store refused", "err", err)
	}
	return ok && err == nil
}

// storeDictionaryLocked stores every live subkey of d under key on behalf of the peer from. all is
// the AND of the results (quirk Q2 fixed: hivemind stops at the first refused subkey), some whether
// one subkey was stored. Called with n.mu held.
func (n *Node) storeDictionaryLocked(s *LocalStorage, from PeerID, key ID, d *DictionaryValue, now float64) (all, some bool) {
	all = true
	for _, e := range d.Items(now) {
		ok, err := s.StoreSubkeyFrom(from, key, e.Subkey, e.Value, e.Expiration, now)
		ok = ok && err == nil
		all = all && ok
		some = some || ok
	}
	return all, some
}

// storeWholeLocked stores a whole value (as a GET found it) into s, replacing what s holds, in the
// shared account "" (the node chose to cache it). A dictionary replaces the key's record by its
// subkeys. A value expiring beyond the horizon HandleStore enforces (expirationLimit; for a
// dictionary, any live subkey) is ignored: a peer cannot plant, through its FIND answers, a record
// that a STORE of its own would not get in (a GET still returns such a value: peers without the
// horizon, as Python ones, may legitimately hold it). Called with n.mu held.
func (n *Node) storeWholeLocked(s *LocalStorage, it wireItem, now float64) {
	limit := n.expirationLimit(now)
	if it.expiration > limit {
		return
	}
	if string(it.tag) != TagDictionary {
		_ = n.storeItemLocked(s, "", it, now)
		return
	}
	d, err := UnpackDictionary(it.value)
	if err != nil || latestLiveExpiration(d, now) > limit {
		return
	}
	s.Delete(it.key)
	n.storeDictionaryLocked(s, "", it.key, d, now)
}
