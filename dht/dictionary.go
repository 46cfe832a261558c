package dht

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// dictionarySubkeyOverhead is the bookkeeping cost charged per subkey on top of its bytes, so that
// byte bounds also bound the memory of many tiny subkeys.
const dictionarySubkeyOverhead = 48

// DictionaryValue is hivemind's DictionaryDHTValue (msgpack ext 0x50): the value stored under a key
// whose records have subkeys. Each subkey has its own value bytes and expiration, with TimedStorage
// rules (a subkey's value is replaced only by a strictly later expiration; expired subkeys vanish).
//
// Subkeys are msgpack encodings and are distinct by their bytes: 1, true and 1.0 are three subkeys,
// and so are 0 and false (hivemind follows Python dict equality and merges them: quirk Q7, fixed).
// Stores canonicalize a subkey (decode, re-encode) so that equal values have equal bytes, and read
// it as hivemind's rpc_store does (canonicalSubkey): an ext of an unknown code is its payload (bin),
// and a subkey hivemind would raise on (a malformed timestamp or dictionary inside it) is refused.
//
// LatestExpiration is the maximum of every valid expiration ever passed to Store, refused stores
// included, as in hivemind (quirk latest_expiration_counts_rejected_stores, kept: the value is part
// of the packed form other peers compare).
//
// A DictionaryValue is not safe for concurrent use. The value slices it returns are shared with it
// and must not be modified.
type DictionaryValue struct {
	entries *TimedStorage[string, []byte] // canonical subkey bytes → value bytes
	latest  float64
	maxSize int // 0: unbounded (packed as +inf)
}

// NewDictionaryValue returns an empty dictionary holding at most maxSize subkeys (evicting the
// earliest expirations first); maxSize <= 0 means unbounded, hivemind's default (+inf).
func NewDictionaryValue(maxSize int) *DictionaryValue {
	maxSize = max(maxSize, 0)
	return &DictionaryValue{
		entries: NewTimedStorage(TimedStorageConfig[string, []byte]{
			MaxEntries: maxSize,
			Cost: func(subkey string, value []byte) Cost {
				return Cost{Entries: 1, Bytes: int64(len(subkey)+len(value)) + dictionarySubkeyOverhead}
			},
			Compare: strings.Compare,
		}),
		latest:  math.Inf(-1),
		maxSize: maxSize,
	}
}

// maxDictionaryNesting bounds how deeply dictionaries may nest inside subkeys (a subkey holding a
// dictionary whose subkey holds a dictionary, ...). Each level is decoded on its own, so the work
// grows with depth × size; hivemind has no bound of its own and raises at Python's recursion limit,
// a few hundred levels down. Deeper nesting is refused (ErrInvalidValue wrapping msgpack.ErrTooDeep).
const maxDictionaryNesting = 16

// canonicalSubkey checks that subkey is the msgpack encoding of exactly one value that hivemind's
// rpc_store can decode, and returns that value's canonical encoding: what hivemind writes when it
// packs the decoded subkey. So the subkeys of a dictionary are distinct by what hivemind would send
// for them (canonicalValue says how each kind of value comes out):
//
//   - an ext of a code hivemind does not register (say 7) decodes to its payload bytes, as hivemind's
//     ext hook leaves it, and is written as bin: an ext-7 subkey and a bin subkey with the same
//     bytes are one subkey;
//   - a timestamp (ext −1) that is not 4, 8 or 12 bytes, or a dictionary (ext 0x50) whose payload is
//     not a valid DictionaryDHTValue, anywhere inside the subkey, is an error wrapping
//     ErrInvalidValue: hivemind's rpc_store raises on it, so such a subkey is never stored.
func canonicalSubkey(subkey []byte) (string, error) {
	v, err := msgpack.Unmarshal(subkey)
	if err == nil {
		v, err = canonicalValue(v, 0)
	}
	var canon []byte
	if err == nil {
		canon, err = msgpack.Marshal(v)
	}
	if err != nil {
		return "", fmt.Errorf("%w: subkey: %w", ErrInvalidValue, err)
	}
	return string(canon), nil
}

// canonicalValue returns v, a value msgpack.Unmarshal decoded from a subkey, as hivemind holds it
// after its own decoding, ready to be encoded again. msgpack.Unmarshal already did what hivemind's
// ext hook does to unknown ext codes (their payload bytes) and timestamps (refused unless 4, 8 or 12
// bytes); what is left is the dictionaries (ext 0x50) inside v, which hivemind's ext hook decodes
// with DictionaryDHTValue.unpackb, raising on a malformed payload. Here each is checked by
// unpackDictionaryPayload (an error if malformed) and replaced by its canonical packing: the
// decoded dictionary packed whole (Pack while frozen: every entry it carries is kept, expired or
// not). hivemind keeps the decoded object as the subkey and packs it again each time it packs the
// outer dictionary, dropping the inner entries expired by then; subkeys here are byte strings, and
// packing once, whole, gives one that does not change with the clock. Lists, tuples and map values
// are rewritten in place (v is freshly decoded and owned by the caller); other values stay as they
// are.
func canonicalValue(v any, nesting int) (any, error) {
	var err error
	switch x := v.(type) {
	case []any:
		for i := range x {
			if x[i], err = canonicalValue(x[i], nesting); err != nil {
				return nil, err
			}
		}
	case msgpack.Tuple:
		for i := range x {
			if x[i], err = canonicalValue(x[i], nesting); err != nil {
				return nil, err
			}
		}
	case *msgpack.Map:
		keys := slices.Collect(x.Keys())
		for _, k := range keys {
			item, _ := x.Get(k)
			if item, err = canonicalValue(item, nesting); err != nil {
				return nil, err
			}
			x.Set(k, item)
		}
	case msgpack.Ext:
		if x.Code != msgpack.ExtDictionary {
			return x, nil
		}
		if nesting >= maxDictionaryNesting {
			return nil, fmt.Errorf("%w: dictionaries nested more than %d deep in a subkey", msgpack.ErrTooDeep, maxDictionaryNesting)
		}
		d, err := unpackDictionaryPayload(x.Data, nesting+1)
		if err != nil {
			return nil, err
		}
		d.SetFrozen(true)
		return msgpack.Raw(d.Pack(0)), nil
	}
	return v, nil
}

// Store stores value under subkey until expiration and reports whether it was stored (see
// TimedStorage.Store for the rules and errors). subkey must be the msgpack encoding of one value,
// else the error wraps ErrInvalidValue. value is copied.
func (d *DictionaryValue) Store(subkey, value []byte, expiration, now float64) (bool, error) {
	if err := checkExpiration(expiration); err != nil {
		return false, err
	}
	canon, err := canonicalSubkey(subkey)
	if err != nil {
		return false, err
	}
	return d.store(canon, value, expiration, now)
}

// store is Store for a canonical subkey and a valid expiration.
func (d *DictionaryValue) store(subkey string, value []byte, expiration, now float64) (bool, error) {
	d.latest = max(d.latest, expiration)
	return d.entries.Store(subkey, bytes.Clone(value), expiration, now)
}

// growth returns how much a store of (subkey, value, expiration) would add to the dictionary's cost
// if it were accepted, and whether it would be (ignoring bounds).
func (d *DictionaryValue) growth(subkey string, value []byte, expiration, now float64) (Cost, bool) {
	if expiration < now && !d.entries.frozen {
		return Cost{}, false
	}
	cost := d.entries.costOf(subkey, value)
	if e := d.entries.entryOf(subkey); e != nil {
		if !(e.expiration < expiration) {
			return Cost{}, false
		}
		return cost.sub(e.cost), true
	}
	return cost, true
}

// Get returns the live entry of subkey (given as msgpack; an invalid encoding is never found).
func (d *DictionaryValue) Get(subkey []byte, now float64) (DictionaryEntry, bool) {
	canon, err := canonicalSubkey(subkey)
	if err != nil {
		return DictionaryEntry{}, false
	}
	e, ok := d.entries.Get(canon, now)
	if !ok {
		return DictionaryEntry{}, false
	}
	return dictionaryEntry(e), true
}

// Delete removes subkey (given as msgpack) and reports whether it was there.
func (d *DictionaryValue) Delete(subkey []byte) bool {
	canon, err := canonicalSubkey(subkey)
	return err == nil && d.entries.Delete(canon)
}

// Len returns the number of live subkeys.
func (d *DictionaryValue) Len(now float64) int { return d.entries.Len(now) }

// Items returns the live entries in insertion order.
func (d *DictionaryValue) Items(now float64) []DictionaryEntry {
	items := d.entries.Items(now)
	out := make([]DictionaryEntry, len(items))
	for i, e := range items {
		out[i] = dictionaryEntry(e)
	}
	return out
}

func dictionaryEntry(e Entry[string, []byte]) DictionaryEntry {
	return DictionaryEntry{Subkey: msgpack.Raw(e.Key), Value: msgpack.Raw(e.Value), Expiration: e.Expiration}
}

// LatestExpiration returns the latest expiration ever passed to Store (-inf for a new dictionary),
// or the one restored by Unpack.
func (d *DictionaryValue) LatestExpiration() float64 { return d.latest }

// MaxSize returns the subkey bound; 0 means unbounded.
func (d *DictionaryValue) MaxSize() int { return d.maxSize }

// SetFrozen freezes or unfreezes the dictionary's expiry and eviction (TimedStorage.SetFrozen).
func (d *DictionaryValue) SetFrozen(frozen bool) (previous bool) { return d.entries.SetFrozen(frozen) }

// Usage returns the cost of the subkeys held: one entry per subkey and its bytes plus a fixed
// overhead per subkey.
func (d *DictionaryValue) Usage() Cost { return d.entries.Usage() }

// Clone returns an independent copy (same subkeys, order, expirations, latest expiration, bound).
func (d *DictionaryValue) Clone() *DictionaryValue {
	c := NewDictionaryValue(d.maxSize)
	c.latest = d.latest
	c.entries.SetFrozen(true)
	for e := d.entries.head; e != nil; e = e.next {
		c.entries.Store(e.key, e.value, e.expiration, 0)
	}
	c.entries.SetFrozen(d.entries.frozen)
	return c
}

// Pack returns the dictionary's msgpack encoding exactly as hivemind writes it (spec §6.3): ext 0x50
// wrapping the msgpack of [maxsize, latest_expiration_time, [[subkey, value, expiration], ...]],
// with maxsize the float +inf when unbounded, each subkey written as its msgpack bytes, each value
// as bin, and the subkeys expired at now left out (and removed, unless frozen).
func (d *DictionaryValue) Pack(now float64) []byte {
	items := d.entries.Items(now)
	list := make([]any, len(items))
	for i, e := range items {
		list[i] = []any{msgpack.Raw(e.Key), e.Value, e.Expiration}
	}
	var maxSize any = math.Inf(1)
	if d.maxSize > 0 {
		maxSize = d.maxSize
	}
	payload, err := msgpack.Marshal([]any{maxSize, d.latest, list})
	if err == nil {
		var packed []byte
		packed, err = msgpack.Marshal(msgpack.Ext{Code: msgpack.ExtDictionary, Data: payload})
		if err == nil {
			return packed
		}
	}
	// Subkeys are canonical encodings, values bytes, expirations floats: encoding cannot fail.
	panic("dht: packing a DictionaryValue failed: " + err.Error())
}

// UnpackDictionary decodes a packed dictionary: one msgpack value, ext 0x50 (as in a FindResult
// value or a STORE with the dictionary tag). Errors wrap ErrInvalidValue.
func UnpackDictionary(packed []byte) (*DictionaryValue, error) {
	v, err := msgpack.Unmarshal(packed)
	if err != nil {
		return nil, fmt.Errorf("%w: dictionary: %w", ErrInvalidValue, err)
	}
	ext, ok := v.(msgpack.Ext)
	if !ok || ext.Code != msgpack.ExtDictionary {
		return nil, fmt.Errorf("%w: dictionary: not an ext 0x50 value", ErrInvalidValue)
	}
	return UnpackDictionaryPayload(ext.Data)
}

// UnpackDictionaryPayload decodes the payload of an ext 0x50 value, like hivemind's
// DictionaryDHTValue.unpackb: the entries are stored while frozen (so expired ones and ones beyond
// maxsize are kept until the next access), then latest_expiration_time is restored from the
// payload. Hostile input gives an error wrapping ErrInvalidValue, never a panic; memory stays
// proportional to the input. Entries with a NaN or infinite expiration are dropped (a store would
// refuse them), and a repeated subkey follows the store rules (a strictly later expiration wins).
// Subkeys are read as canonicalSubkey reads them: re-encoded canonically, and a payload with a
// subkey that hivemind cannot decode (a malformed timestamp or nested dictionary) is an error.
func UnpackDictionaryPayload(payload []byte) (*DictionaryValue, error) {
	return unpackDictionaryPayload(payload, 0)
}

// unpackDictionaryPayload is UnpackDictionaryPayload for a dictionary nested in nesting others'
// subkeys.
func unpackDictionaryPayload(payload []byte, nesting int) (*DictionaryValue, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: dictionary payload: %s", ErrInvalidValue, fmt.Sprintf(format, args...))
	}
	v, err := msgpack.Unmarshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: dictionary payload: %w", ErrInvalidValue, err)
	}
	top, ok := asSequence(v)
	if !ok || len(top) != 3 {
		return nil, bad("want [maxsize, latest_expiration_time, items], got %T", v)
	}
	var maxSize int
	switch m := top[0].(type) {
	case float64:
		if !math.IsInf(m, 1) {
			return nil, bad("float maxsize %v is not +inf", m)
		}
	case int64:
		if m < 0 {
			return nil, bad("negative maxsize %d", m)
		}
		maxSize = int(m) // 0 means unbounded, as in hivemind (maxsize or inf)
	default:
		return nil, bad("maxsize of type %T", top[0])
	}
	latest, ok := asExpiration(top[1])
	if !ok || math.IsNaN(latest) || math.IsInf(latest, 1) {
		return nil, bad("latest_expiration_time %v", top[1])
	}
	items, ok := asSequence(top[2])
	if !ok {
		return nil, bad("items of type %T", top[2])
	}
	d := NewDictionaryValue(maxSize)
	d.entries.SetFrozen(true)
	for i, it := range items {
		item, ok := asSequence(it)
		if !ok || len(item) != 3 {
			return nil, bad("item %d is not [subkey, value, expiration]", i)
		}
		canon, err := canonicalValue(item[0], nesting)
		if err != nil {
			return nil, fmt.Errorf("%w: dictionary payload: item %d subkey: %w", ErrInvalidValue, i, err)
		}
		subkey, err := msgpack.Marshal(canon)
		if err != nil {
			return nil, fmt.Errorf("%w: dictionary payload: item %d subkey: %w", ErrInvalidValue, i, err)
		}
		value, ok := item[1].([]byte)
		if !ok {
			return nil, bad("item %d value of type %T, want bytes", i, item[1])
		}
		exp, ok := asExpiration(item[2])
		if !ok {
			return nil, bad("item %d expiration of type %T", i, item[2])
		}
		if checkExpiration(exp) != nil {
			continue
		}
		d.entries.Store(string(subkey), value, exp, 0) // decoded bytes never alias the input
	}
	d.entries.SetFrozen(false)
	d.latest = latest
	return d, nil
}

// asSequence accepts a msgpack array or tuple (hivemind unpacks either).
func asSequence(v any) ([]any, bool) {
	switch s := v.(type) {
	case []any:
		return s, true
	case msgpack.Tuple:
		return s, true
	}
	return nil, false
}

// asExpiration accepts a float or an integer (a Python peer may send either).
func asExpiration(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
