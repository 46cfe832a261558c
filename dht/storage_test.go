package dht

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func lsKey(i int) ID { return HashID(binary.BigEndian.AppendUint64(nil, uint64(i))) }

func lsSubkey(t testing.TB, s string) []byte { return dictMarshal(t, s) }

func lsStore(t *testing.T, s *LocalStorage, key ID, value string, exp, now float64, want bool) {
	t.Helper()
	got, err := s.Store(key, []byte(value), exp, now)
	if got != want || (want && err != nil) {
		t.Fatalf("Store(%x, %q, %v) = %v, %v; want %v", key[:4], value, exp, got, err, want)
	}
}

func lsStoreSubkey(t *testing.T, s *LocalStorage, key ID, subkey, value string, exp, now float64, want bool) {
	t.Helper()
	got, err := s.StoreSubkey(key, lsSubkey(t, subkey), []byte(value), exp, now)
	if got != want || (want && err != nil) {
		t.Fatalf("StoreSubkey(%x, %q, %q, %v) = %v, %v; want %v", key[:4], subkey, value, exp, got, err, want)
	}
}

// TestLocalStorageNested is hivemind's test_localstorage_nested (spec §5.3 transitions).
func TestLocalStorageNested(t *testing.T) {
	s := NewLocalStorage(LocalStorageConfig{})
	k1, k2 := lsKey(1), lsKey(2)
	const now = 100.0
	lsStore(t, s, k1, "regular", now+10, now, true)
	lsStoreSubkey(t, s, k1, "a", "1", now+5, now, false)  // older than the regular value
	lsStoreSubkey(t, s, k1, "a", "1", now+10, now, false) // equal: still refused
	lsStoreSubkey(t, s, k1, "a", "1", now+11, now, true)  // newer: becomes a dictionary
	lsStoreSubkey(t, s, k1, "b", "2", now+8, now, true)   // older subkey: added, outer unchanged
	e, ok := s.Get(k1, now)
	if !ok || e.Kind != ValueDictionary || e.Expiration != now+11 || e.Dictionary.Len(now) != 2 || e.Dictionary.LatestExpiration() != now+11 {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	if d, err := UnpackDictionary(e.Value); err != nil || !bytes.Equal(d.Pack(now), e.Value) {
		t.Fatalf("wire value does not round-trip: %v", err)
	}
	lsStoreSubkey(t, s, k1, "c", "3", now+20, now, true) // raises the outer expiration
	if e, _ := s.Get(k1, now); e.Expiration != now+20 {
		t.Fatalf("outer expiration %v, want %v", e.Expiration, now+20)
	}
	lsStore(t, s, k1, "regular again", now+20, now, false) // not newer than the dictionary
	lsStore(t, s, k1, "regular again", now+21, now, true)  // newer: replaces it
	if e, _ := s.Get(k1, now); e.Kind != ValueRegular || string(e.Value) != "regular again" || e.Dictionary != nil {
		t.Fatalf("Get = %+v", e)
	}
	// Subkeys expire individually; the outer record lives on.
	lsStoreSubkey(t, s, k2, "short", "s", now+1, now, true)
	lsStoreSubkey(t, s, k2, "long", "l", now+9, now, true)
	e, ok = s.Get(k2, now+2)
	if !ok || e.Dictionary.Len(now+2) != 1 || e.Expiration != now+9 {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	// The copy given out is independent.
	e.Dictionary.Store(lsSubkey(t, "x"), nil, now+9, now+2)
	if e2, _ := s.Get(k2, now+2); e2.Dictionary.Len(now+2) != 1 {
		t.Fatal("a returned dictionary aliases the stored one")
	}
	if top, ok := s.Top(now + 2); !ok || top.Key != k2 {
		t.Fatalf("Top = %x, %v", top.Key, ok)
	}
	if items := s.Items(now + 2); len(items) != 2 || items[0].Key != k1 || items[1].Key != k2 {
		t.Fatalf("items = %+v", items)
	}
	if !s.Delete(k1) || s.Contains(k1, now) || s.Len(now) != 1 {
		t.Fatal("Delete failed")
	}
}

func TestLocalStorageErrors(t *testing.T) {
	s := NewLocalStorage(LocalStorageConfig{})
	k := lsKey(1)
	if ok, err := s.StoreSubkey(k, []byte{0xc1}, nil, 10, 0); ok || !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("bad subkey: %v, %v", ok, err)
	}
	for _, exp := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if ok, err := s.StoreSubkey(k, lsSubkey(t, "a"), nil, exp, 0); ok || !errors.Is(err, ErrInvalidExpiration) {
			t.Fatalf("StoreSubkey(exp %v) = %v, %v", exp, ok, err)
		}
		if ok, err := s.Store(k, nil, exp, 0); ok || !errors.Is(err, ErrInvalidExpiration) {
			t.Fatalf("Store(exp %v) = %v, %v", exp, ok, err)
		}
	}
	if s.Len(0) != 0 || s.Usage() != (Cost{}) {
		t.Fatal("refused stores left something behind")
	}
	if ok, err := s.StoreSubkey(k, lsSubkey(t, "a"), nil, 5, 10); ok || err != nil {
		t.Fatalf("expired subkey store = %v, %v", ok, err)
	}
	if s.Len(10) != 0 {
		t.Fatal("an expired subkey store left a record")
	}
}

// lsRecount recomputes a storage's usage from scratch (regular values and dictionaries as packed).
func lsRecount(s *LocalStorage) Cost {
	var c Cost
	for e := s.ts.head; e != nil; e = e.next {
		c = c.add(localCost(e.key, e.value))
	}
	return c
}

func TestLocalStorageBounds(t *testing.T) {
	t.Run("subkeys_count_as_entries", func(t *testing.T) {
		s := NewLocalStorage(LocalStorageConfig{MaxEntries: 4, MaxBytes: -1})
		k1, k2 := lsKey(1), lsKey(2)
		lsStoreSubkey(t, s, k1, "a", "", 50, 0, true) // 2 entries: the key and its subkey
		lsStoreSubkey(t, s, k1, "b", "", 50, 0, true) // 3
		lsStore(t, s, k2, "x", 10, 0, true)           // 4
		// One more subkey evicts k2, whose expiration is earlier.
		lsStoreSubkey(t, s, k1, "c", "", 50, 0, true)
		if s.Contains(k2, 0) || s.Usage().Entries != 4 {
			t.Fatalf("usage %+v, k2 present %v", s.Usage(), s.Contains(k2, 0))
		}
		// Nothing left to evict but the dictionary itself: refused, and nothing changes.
		before := s.ts.entryOf(k1).value.dict.Pack(0)
		ok, err := s.StoreSubkey(k1, lsSubkey(t, "d"), nil, 60, 0)
		if ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("StoreSubkey beyond the bound = %v, %v", ok, err)
		}
		if e, _ := s.Get(k1, 0); !bytes.Equal(e.Value, before) || e.Expiration != 50 {
			t.Fatalf("a refused subkey changed the dictionary: exp %v", e.Expiration)
		}
		// Replacing an existing subkey's value does not grow the entry count.
		lsStoreSubkey(t, s, k1, "a", "", 55, 0, true)
	})
	t.Run("bytes", func(t *testing.T) {
		perKey := int64(IDLen + localRecordOverhead)
		s := NewLocalStorage(LocalStorageConfig{MaxEntries: -1, MaxBytes: 3*perKey + 30})
		for i := range 3 {
			lsStore(t, s, lsKey(i), "0123456789", float64(10+i), 0, true)
		}
		if ok, err := s.Store(lsKey(9), make([]byte, 1000), 100, 0); ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("oversized value = %v, %v", ok, err)
		}
		lsStore(t, s, lsKey(3), "0123456789", 20, 0, true) // evicts key 0
		if s.Contains(lsKey(0), 0) || s.Len(0) != 3 {
			t.Fatal("key 0 was not evicted")
		}
		if ok, err := s.Store(lsKey(4), []byte("0123456789"), 5, 0); ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("earliest-expiring store = %v, %v", ok, err)
		}
	})
	t.Run("flood_stays_bounded", func(t *testing.T) {
		s := NewLocalStorage(LocalStorageConfig{MaxEntries: 1000, MaxBytes: 200_000})
		r := rand.New(rand.NewPCG(1, 1))
		refused := 0
		for i := range 20_000 {
			var ok bool
			var err error
			exp := 100 + r.Float64()*1000
			if r.IntN(3) == 0 {
				ok, err = s.StoreSubkey(lsKey(r.IntN(50)), lsSubkey(t, fmt.Sprint(i)), make([]byte, r.IntN(300)), exp, 0)
			} else {
				ok, err = s.Store(lsKey(i), make([]byte, r.IntN(300)), exp, 0)
			}
			if !ok && err != nil {
				if !errors.Is(err, ErrStorageFull) {
					t.Fatalf("store %d: %v", i, err)
				}
				refused++
			}
			if u := s.Usage(); u.Entries > 1000 || u.Bytes > 200_000 {
				t.Fatalf("store %d: usage %+v beyond the bounds", i, u)
			}
		}
		if refused == 0 {
			t.Fatal("a flood beyond the bounds was never refused")
		}
		if got, want := s.Usage(), lsRecount(s); got != want {
			t.Fatalf("usage %+v, recounted %+v", got, want)
		}
		s.Items(500) // expires records and dictionary subkeys
		if got, want := s.Usage(), lsRecount(s); got != want {
			t.Fatalf("after expiry: usage %+v, recounted %+v", got, want)
		}
	})
}

func TestLocalStorageFreeze(t *testing.T) {
	s := NewLocalStorage(LocalStorageConfig{MaxEntries: 2})
	lsStore(t, s, lsKey(1), "a", 11, 10, true)
	s.SetFrozen(true)
	lsStore(t, s, lsKey(2), "b", 5, 10, true)
	lsStore(t, s, lsKey(3), "c", 12, 10, true)
	lsStore(t, s, lsKey(4), "d", 13, 10, true)
	if s.Len(20) != 4 {
		t.Fatal("frozen storage dropped records")
	}
	if prev := s.SetFrozen(false); !prev {
		t.Fatal("SetFrozen did not report the previous state")
	}
	if s.Len(10) != 2 || !s.Contains(lsKey(3), 10) || !s.Contains(lsKey(4), 10) {
		t.Fatal("unfreezing did not expire and evict")
	}
}

func BenchmarkLocalStorageStore100k(b *testing.B) {
	s := NewLocalStorage(LocalStorageConfig{})
	keys := make([]ID, 100_000)
	for i := range keys {
		keys[i] = lsKey(i)
		s.Store(keys[i], []byte("value"), float64(1000+i), 0)
	}
	value := []byte("a regular value of a few dozen bytes, msgpack-encoded")
	for i := 0; b.Loop(); i++ {
		s.Store(keys[i%len(keys)], value, float64(200_000+i), 0)
	}
}

func BenchmarkLocalStorageGet100k(b *testing.B) {
	s := NewLocalStorage(LocalStorageConfig{})
	keys := make([]ID, 100_000)
	for i := range keys {
		keys[i] = lsKey(i)
		s.Store(keys[i], []byte("value"), float64(1000+i), 0)
	}
	for i := 0; b.Loop(); i++ {
		s.Get(keys[i%len(keys)], 0)
	}
}

func BenchmarkLocalStorageStoreSubkey(b *testing.B) {
	s := NewLocalStorage(LocalStorageConfig{})
	subkeys := make([][]byte, 1000)
	for i := range subkeys {
		subkeys[i] = dictMarshal(b, fmt.Sprint("peer-", i))
	}
	key := lsKey(0)
	for i := 0; b.Loop(); i++ {
		s.StoreSubkey(key, subkeys[i%len(subkeys)], []byte("metrics"), float64(1000+i), 0)
	}
}
