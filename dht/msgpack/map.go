package msgpack

import (
	"fmt"
	"iter"
)

// Map is a msgpack map that keeps insertion order, like a Python dict: the order is part of the
// encoding, so a value built in Go encodes to the same bytes as the dict hivemind would build.
//
// Keys are str (Go string) or bin (Go []byte) only — the only key types hivemind's decoder accepts —
// and a string key never equals a []byte key with the same bytes (Python: "a" != b"a").
// Set on an existing key replaces the value in place (the key keeps its position); deleting a key
// and setting it again moves it to the end. The zero Map is empty and ready to use; a nil *Map
// reads as empty. A Map is not safe for concurrent mutation.
type Map struct {
	keys   []any
	values []any
	// index maps a key to its position; built only once the map grows past linearScanMax entries,
	// since typical hivemind maps (metrics, progress) are small.
	index map[mapKey]int
}

// linearScanMax is the size up to which lookups scan the keys instead of keeping an index.
const linearScanMax = 8

type mapKey struct {
	s   string
	bin bool
}

// NewMap returns an empty map.
func NewMap() *Map { return &Map{} }

// MapOf returns a map holding the given key/value pairs in order (later duplicates replace earlier
// values in place, as in a Python dict literal). It panics if pairs has an odd length or a key is
// neither a string nor a []byte: both are programming errors, like an unhashable Go map key.
func MapOf(pairs ...any) *Map {
	if len(pairs)%2 != 0 {
		panic("msgpack: MapOf needs key/value pairs")
	}
	m := &Map{}
	for i := 0; i < len(pairs); i += 2 {
		m.Set(pairs[i], pairs[i+1])
	}
	return m
}

func keyOf(key any) (mapKey, bool) {
	switch k := key.(type) {
	case string:
		return mapKey{s: k}, true
	case []byte:
		return mapKey{s: string(k), bin: true}, true
	}
	return mapKey{}, false
}

func (m *Map) find(k mapKey) int {
	if m == nil {
		return -1
	}
	if m.index != nil {
		if i, ok := m.index[k]; ok {
			return i
		}
		return -1
	}
	for i, key := range m.keys {
		if kk, _ := keyOf(key); kk == k {
			return i
		}
	}
	return -1
}

// Len returns the number of entries.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.keys)
}

// Get returns the value stored under key (a string or a []byte) and whether it is present.
func (m *Map) Get(key any) (any, bool) {
	k, ok := keyOf(key)
	if !ok {
		return nil, false
	}
	if i := m.find(k); i >= 0 {
		return m.values[i], true
	}
	return nil, false
}

// Set stores value under key. An existing key keeps its position; a new key goes to the end. A []byte
// key is copied. Set panics if key is neither a string nor a []byte (see MapOf).
func (m *Map) Set(key, value any) {
	k, ok := keyOf(key)
	if !ok {
		panic(fmt.Sprintf("msgpack: map key must be string or []byte, not %T", key))
	}
	if i := m.find(k); i >= 0 {
		m.values[i] = value
		return
	}
	if b, isBin := key.([]byte); isBin {
		key = append([]byte{}, b...)
	}
	m.appendNew(k, key, value)
}

// appendNew adds a key known to be absent (and, for []byte, owned by the map).
func (m *Map) appendNew(k mapKey, key, value any) {
	m.keys = append(m.keys, key)
	m.values = append(m.values, value)
	if m.index != nil {
		m.index[k] = len(m.keys) - 1
	} else if len(m.keys) > linearScanMax {
		m.reindex()
	}
}

// Delete removes key and reports whether it was present.
func (m *Map) Delete(key any) bool {
	k, ok := keyOf(key)
	if !ok {
		return false
	}
	i := m.find(k)
	if i < 0 {
		return false
	}
	m.keys = append(m.keys[:i], m.keys[i+1:]...)
	m.values = append(m.values[:i], m.values[i+1:]...)
	// Clear the slots freed at the end so the removed values can be collected.
	m.keys[:len(m.keys)+1][len(m.keys)] = nil
	m.values[:len(m.values)+1][len(m.values)] = nil
	if m.index != nil {
		m.reindex()
	}
	return true
}

func (m *Map) reindex() {
	if len(m.keys) <= linearScanMax {
		m.index = nil
		return
	}
	m.index = make(map[mapKey]int, len(m.keys))
	for i, key := range m.keys {
		k, _ := keyOf(key)
		m.index[k] = i
	}
}

// All iterates over the entries in order. The map must not be modified during the iteration.
func (m *Map) All() iter.Seq2[any, any] {
	return func(yield func(any, any) bool) {
		if m == nil {
			return
		}
		for i, k := range m.keys {
			if !yield(k, m.values[i]) {
				return
			}
		}
	}
}

// Keys iterates over the keys in order.
func (m *Map) Keys() iter.Seq[any] {
	return func(yield func(any) bool) {
		if m == nil {
			return
		}
		for _, k := range m.keys {
			if !yield(k) {
				return
			}
		}
	}
}
