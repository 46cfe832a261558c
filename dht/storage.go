package dht

import (
	"bytes"
	"fmt"
)

// DefaultMaxStorageBytes is the default byte bound of a LocalStorage (1 GiB of keys, values, subkeys
// and per-record overhead).
const DefaultMaxStorageBytes = 1 << 30

// localRecordOverhead is the bookkeeping cost charged per key on top of its bytes.
const localRecordOverhead = 64

// LocalStorageConfig bounds a LocalStorage. The zero value means the defaults.
type LocalStorageConfig struct {
	// MaxEntries bounds the keys plus dictionary subkeys held. Default DefaultMaxStorageEntries;
	// negative means unbounded.
	MaxEntries int
	// MaxBytes bounds the bytes held: per key its 20 bytes, its value or its subkeys and their
	// values, and a fixed overhead per key and per subkey. Default DefaultMaxStorageBytes; negative
	// means unbounded.
	MaxBytes int64
}

// ValueKind tells a regular value from a dictionary value.
type ValueKind uint8

// The kinds of stored values.
const (
	// ValueRegular is a value stored without a subkey.
	ValueRegular ValueKind = iota + 1
	// ValueDictionary is a DictionaryValue: the value of a key stored with subkeys.
	ValueDictionary
)

// LocalEntry is a record of a LocalStorage, as rpc_find needs it.
type LocalEntry struct {
	Key  ID
	Kind ValueKind
	// Value is what rpc_find sends as FindResult.value: a regular value's bytes, or the packed
	// dictionary (ext 0x50, the subkeys live at the `now` of the call). Shared with the storage for
	// regular values: do not modify.
	Value []byte
	// Dictionary is an independent copy of the dictionary (ValueDictionary only).
	Dictionary *DictionaryValue
	// Expiration is the record's expiration (for a dictionary, the latest of its subkeys').
	Expiration float64
}

// localValue is what a LocalStorage holds under a key: exactly one of the two is set.
type localValue struct {
	regular []byte
	dict    *DictionaryValue
}

// LocalStorage is hivemind's DHTLocalStorage: a TimedStorage from key IDs to regular values (bytes)
// or DictionaryValues, with the transitions between the two of spec §5.3:
//
//   - Store (no subkey) follows TimedStorage rules: a strictly later expiration replaces whatever is
//     stored, a dictionary included (its outer expiration is its latest subkey expiration);
//   - StoreSubkey turns a missing key or an older regular value into a new dictionary holding the one
//     subkey; adds to an existing dictionary (raising its expiration when the subkey's is later);
//     and is refused when a regular value with an equal or later expiration is stored.
//
// Unlike hivemind's, it is bounded (LocalStorageConfig), and eviction is fair between the peers
// that stored the records (TimedStorage's eviction rule): each key belongs to the account of the
// peer whose store last changed it (StoreFrom, StoreSubkeyFrom: for a dictionary, the peer that
// last stored one of its subkeys), or to the shared account "" (Store, StoreSubkey: the node's own
// stores, records of unknown origin). Over a bound, the earliest-expiring record of the account
// with the largest share of the bounds is evicted, and a store that would have to evict its own
// record is refused with an error wrapping ErrStorageFull. So memory stays bounded under a flood
// of stores, and a flood from one peer evicts that peer's records first: it cannot push out the
// records of peers that hold less, even those expiring sooner. With the one account "" this is
// hivemind's earliest-expiration-first eviction (quirk Q9). The fixes of TimedStorage apply (quirk
// Q1, NaN and infinite expirations) and those of DictionaryValue (Q7).
//
// It is a pure structure: no goroutines, locks or clock; `now` is passed in. Not safe for
// concurrent use.
type LocalStorage struct {
	ts *TimedStorage[ID, localValue]
}

// NewLocalStorage returns an empty storage with cfg's bounds.
func NewLocalStorage(cfg LocalStorageConfig) *LocalStorage {
	switch {
	case cfg.MaxEntries == 0:
		cfg.MaxEntries = DefaultMaxStorageEntries
	case cfg.MaxEntries < 0:
		cfg.MaxEntries = 0
	}
	switch {
	case cfg.MaxBytes == 0:
		cfg.MaxBytes = DefaultMaxStorageBytes
	case cfg.MaxBytes < 0:
		cfg.MaxBytes = 0
	}
	return &LocalStorage{ts: NewTimedStorage(TimedStorageConfig[ID, localValue]{
		MaxEntries: cfg.MaxEntries,
		MaxBytes:   cfg.MaxBytes,
		Cost:       localCost,
		Compare:    ID.Cmp,
	})}
}

func localCost(_ ID, v localValue) Cost {
	if v.dict != nil {
		u := v.dict.Usage()
		return Cost{Entries: 1 + u.Entries, Bytes: IDLen + localRecordOverhead + u.Bytes}
	}
	return Cost{Entries: 1, Bytes: IDLen + localRecordOverhead + int64(len(v.regular))}
}

// Store stores a regular value (msgpack bytes, possibly signed) under key until expiration, with
// TimedStorage rules, and reports whether it was stored. value is copied. Errors wrap
// ErrInvalidExpiration or ErrStorageFull; a refusal by the rules is (false, nil). The record goes
// to the shared account "" (see StoreFrom).
func (s *LocalStorage) Store(key ID, value []byte, expiration, now float64) (bool, error) {
	return s.StoreFrom("", key, value, expiration, now)
}

// StoreFrom is Store on behalf of the peer owner (the sender of a STORE; "" is the shared account
// of the node's own and unknown-origin records): a stored record moves to owner's account.
func (s *LocalStorage) StoreFrom(owner PeerID, key ID, value []byte, expiration, now float64) (bool, error) {
	return s.ts.StoreFrom(string(owner), key, localValue{regular: bytes.Clone(value)}, expiration, now)
}

// StoreSubkey stores value under subkey (a msgpack encoding) of key's dictionary until expiration,
// as hivemind's store_subkey (see the type's documentation), and reports whether it was stored.
// value is copied. Errors wrap ErrInvalidExpiration, ErrInvalidValue (a subkey that is not one
// msgpack value) or ErrStorageFull; a refusal by the rules is (false, nil). The key goes to the
// shared account "" when the subkey is accepted (see StoreSubkeyFrom).
func (s *LocalStorage) StoreSubkey(key ID, subkey, value []byte, expiration, now float64) (bool, error) {
	return s.StoreSubkeyFrom("", key, subkey, value, expiration, now)
}

// StoreSubkeyFrom is StoreSubkey on behalf of the peer owner: when the subkey is accepted, the
// whole key (the dictionary with every subkey) moves to owner's account.
func (s *LocalStorage) StoreSubkeyFrom(owner PeerID, key ID, subkey, value []byte, expiration, now float64) (bool, error) {
	if err := checkExpiration(expiration); err != nil {
		return false, err
	}
	canon, err := canonicalSubkey(subkey)
	if err != nil {
		return false, err
	}
	cur, ok := s.ts.Get(key, now)
	switch {
	case !ok || (cur.Value.dict == nil && expiration > cur.Expiration):
		d := NewDictionaryValue(0)
		if _, err := d.store(canon, value, expiration, now); err != nil {
			return false, err
		}
		return s.ts.StoreFrom(string(owner), key, localValue{dict: d}, d.LatestExpiration(), now)
	case cur.Value.dict != nil:
		d, e := cur.Value.dict, s.ts.entryOf(key)
		if grow, accepted := d.growth(canon, value, expiration, now); accepted {
			// Make room, refresh the outer expiration (when the subkey's is the latest) and move the
			// key to owner's account first, so that a refused subkey changes nothing.
			outer := e.expiration
			if expiration > d.LatestExpiration() {
				outer = max(outer, expiration)
			}
			if err := s.ts.update(e, string(owner), outer, e.cost.add(grow), now); err != nil {
				return false, fmt.Errorf("%w: dictionary of %d subkeys", ErrStorageFull, d.entries.Usage().Entries)
			}
		}
		stored, err := d.store(canon, value, expiration, now)
		s.ts.recost(e)
		return stored, err
	default:
		return false, nil
	}
}

// Get returns the live record stored under key.
func (s *LocalStorage) Get(key ID, now float64) (LocalEntry, bool) {
	e, ok := s.ts.Get(key, now)
	if !ok {
		return LocalEntry{}, false
	}
	return s.entry(e, now), true
}

// entry converts a record, packing (and so expiring the subkeys of) a dictionary.
func (s *LocalStorage) entry(e Entry[ID, localValue], now float64) LocalEntry {
	kind, value := s.pack(e, now)
	out := LocalEntry{Key: e.Key, Kind: kind, Value: value, Expiration: e.Expiration}
	if e.Value.dict != nil {
		out.Dictionary = e.Value.dict.Clone()
	}
	return out
}

// pack returns a record's kind and the value rpc_find serves: a regular value's bytes, or the
// packed dictionary (Pack drops its expired subkeys, so the record is recosted).
func (s *LocalStorage) pack(e Entry[ID, localValue], now float64) (ValueKind, []byte) {
	if e.Value.dict == nil {
		return ValueRegular, e.Value.regular
	}
	packed := e.Value.dict.Pack(now)
	if te := s.ts.entryOf(e.Key); te != nil {
		s.ts.recost(te)
	}
	return ValueDictionary, packed
}

// Contains reports whether a live record is stored under key.
func (s *LocalStorage) Contains(key ID, now float64) bool { return s.ts.Contains(key, now) }

// Len returns the number of live keys.
func (s *LocalStorage) Len(now float64) int { return s.ts.Len(now) }

// Items returns every live record in hivemind's iteration order (insertion order; a replaced value
// keeps its key's place).
func (s *LocalStorage) Items(now float64) []LocalEntry {
	items := s.ts.Items(now)
	out := make([]LocalEntry, len(items))
	for i, e := range items {
		out[i] = s.entry(e, now)
	}
	return out
}

// Top returns the live record with the earliest expiration (ties: the lowest key ID).
func (s *LocalStorage) Top(now float64) (LocalEntry, bool) {
	e, ok := s.ts.Top(now)
	if !ok {
		return LocalEntry{}, false
	}
	return s.entry(e, now), true
}

// Delete removes key's record and reports whether there was one.
func (s *LocalStorage) Delete(key ID) bool { return s.ts.Delete(key) }

// RemoveOutdated drops the records expired at now (reading methods do it too).
func (s *LocalStorage) RemoveOutdated(now float64) { s.ts.RemoveOutdated(now) }

// SetFrozen freezes or unfreezes expiry and eviction and returns the previous state (hivemind's
// freeze(); the dictionaries inside are not frozen, as in hivemind).
func (s *LocalStorage) SetFrozen(frozen bool) (previous bool) { return s.ts.SetFrozen(frozen) }

// Usage returns the entries (keys plus subkeys) and bytes counted against the bounds.
func (s *LocalStorage) Usage() Cost { return s.ts.Usage() }

// OwnerUsage returns the entries and bytes of the keys in owner's account ("": the shared one).
func (s *LocalStorage) OwnerUsage(owner PeerID) Cost { return s.ts.OwnerUsage(string(owner)) }

// Owners returns the number of accounts holding a key ("" included when it holds one); it never
// exceeds the number of keys.
func (s *LocalStorage) Owners() int { return s.ts.Owners() }

// persisted returns key's live record as a Persister keeps it, a dictionary packed (Pack drops its
// expired subkeys, as Get does).
func (s *LocalStorage) persisted(key ID, now float64) (PersistedRecord, bool) {
	e, ok := s.ts.Get(key, now)
	if !ok {
		return PersistedRecord{}, false
	}
	kind, value := s.pack(e, now)
	return PersistedRecord{Key: key, Kind: kind, Value: value, Expiration: e.Expiration, Owner: PeerID(s.ts.ownerOf(key))}, true
}

// keyCursor is a position in a LocalStorage's iteration order (keysAfter).
type keyCursor = storageCursor[ID, localValue]

// keysAfter appends the key IDs of up to max records following cursor in iteration order (see
// TimedStorage.keysAfter): a walk over the whole storage in short steps.
func (s *LocalStorage) keysAfter(dst []ID, cursor keyCursor, max int) ([]ID, keyCursor, bool) {
	return s.ts.keysAfter(dst, cursor, max)
}

// copyValue returns key's live value without packing: a regular value's bytes (shared: do not
// modify) or an independent copy of the dictionary.
func (s *LocalStorage) copyValue(key ID, now float64) (localValue, float64, bool) {
	e, ok := s.ts.Get(key, now)
	if !ok {
		return localValue{}, 0, false
	}
	v := e.Value
	if v.dict != nil {
		v.dict = v.dict.Clone()
	}
	return v, e.Expiration, true
}
