package dht

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func newStringStorage(maxEntries int) *TimedStorage[string, string] {
	return NewTimedStorage(TimedStorageConfig[string, string]{MaxEntries: maxEntries, Compare: strings.Compare})
}

func tsKeys(items []Entry[string, string]) []string {
	var keys []string
	for _, e := range items {
		keys = append(keys, e.Key)
	}
	return keys
}

func mustStore[K comparable, V any](t *testing.T, s *TimedStorage[K, V], key K, value V, exp, now float64, want bool) {
	t.Helper()
	got, err := s.Store(key, value, exp, now)
	if got != want || (want && err != nil) {
		t.Fatalf("Store(%v, exp %v, now %v) = %v, %v; want %v", key, exp, now, got, err, want)
	}
}

// TestTimedStorageHivemind covers hivemind's test_dht_storage.py cases on TimedStorage semantics:
// test_store, test_get_expired, test_get_empty, test_change_expiration_time, test_maxsize_cache,
// test_localstorage_top and test_localstorage_freeze.
func TestTimedStorageHivemind(t *testing.T) {
	t.Run("store_get_expired_empty", func(t *testing.T) {
		s := newStringStorage(0)
		if _, ok := s.Get("k", 0); ok {
			t.Fatal("empty storage returned a record")
		}
		mustStore(t, s, "k", "v", 10.1, 10, true)
		if e, ok := s.Get("k", 10); !ok || e.Value != "v" || e.Expiration != 10.1 {
			t.Fatalf("Get = %+v, %v", e, ok)
		}
		if _, ok := s.Get("k", 10.5); ok {
			t.Fatal("expired record returned")
		}
	})
	t.Run("change_expiration_time", func(t *testing.T) {
		s := newStringStorage(0)
		mustStore(t, s, "k", "v1", 11, 10, true)
		mustStore(t, s, "k", "v2", 20, 10, true)
		mustStore(t, s, "k", "v3", 15, 10, false)
		mustStore(t, s, "k", "v3", 20, 10, false) // equal is not newer
		if e, ok := s.Get("k", 12); !ok || e.Value != "v2" {
			t.Fatalf("after the old expiry: %+v, %v", e, ok)
		}
	})
	t.Run("rejected_store_changes_nothing_Q1", func(t *testing.T) {
		// Quirk Q1 (fixed): hivemind re-points the expiry tracking to the refused, older expiration
		// and drops the newer value when that older time passes.
		s := newStringStorage(0)
		mustStore(t, s, "k", "new", 15, 10, true)
		mustStore(t, s, "k", "old", 10.3, 10, false)
		if e, ok := s.Get("k", 10.5); !ok || e.Value != "new" || e.Expiration != 15 {
			t.Fatalf("Get = %+v, %v", e, ok)
		}
	})
	t.Run("maxsize_cache", func(t *testing.T) {
		s := newStringStorage(2)
		mustStore(t, s, "a", "1", 20, 10, true)
		mustStore(t, s, "b", "2", 21, 10, true)
		mustStore(t, s, "a", "1", 25, 10, true) // update: a now expires last
		mustStore(t, s, "c", "3", 22, 10, true) // evicts b, the earliest
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"a", "c"}) {
			t.Fatalf("items = %v", got)
		}
	})
	t.Run("top", func(t *testing.T) {
		s := newStringStorage(3)
		mustStore(t, s, "x", "", 13, 10, true)
		mustStore(t, s, "y", "", 11, 10, true)
		mustStore(t, s, "z", "", 12, 10, true)
		top := func(want string) {
			t.Helper()
			if e, ok := s.Top(10); !ok || e.Key != want {
				t.Fatalf("Top = %+v, %v; want %q", e, ok, want)
			}
		}
		top("y")
		mustStore(t, s, "y", "", 14, 10, true)
		top("z")
		s.Delete("z")
		top("x")
		mustStore(t, s, "w", "", 11.5, 10, true)
		top("w")
		mustStore(t, s, "v", "", 20, 10, true) // full: evicts w
		top("x")
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"x", "y", "v"}) {
			t.Fatalf("items = %v", got)
		}
		s.Clear()
		if _, ok := s.Top(10); ok || s.Len(10) != 0 || s.Usage() != (Cost{}) {
			t.Fatal("Clear left records")
		}
	})
	t.Run("freeze", func(t *testing.T) {
		s := newStringStorage(2)
		mustStore(t, s, "a", "", 11, 10, true)
		if s.SetFrozen(true) {
			t.Fatal("was frozen")
		}
		mustStore(t, s, "b", "", 5, 10, true) // past expirations are accepted while frozen
		mustStore(t, s, "c", "", 12, 10, true)
		mustStore(t, s, "d", "", 13, 10, true) // beyond the bound too
		if n := s.Len(100); n != 4 {
			t.Fatalf("frozen Len = %d, want 4", n)
		}
		s.SetFrozen(false)
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"c", "d"}) {
			t.Fatalf("after unfreezing: %v, want [c d]", got)
		}
	})
	t.Run("invalid_expirations", func(t *testing.T) {
		s := newStringStorage(0)
		for _, exp := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			if ok, err := s.Store("k", "", exp, 10); ok || !errors.Is(err, ErrInvalidExpiration) {
				t.Errorf("Store(exp %v) = %v, %v", exp, ok, err)
			}
		}
		if s.Len(10) != 0 {
			t.Fatal("an invalid store left a record")
		}
	})
}

func TestTimedStorageOrder(t *testing.T) {
	s := newStringStorage(0)
	for i, k := range []string{"a", "b", "c"} {
		mustStore(t, s, k, "", float64(20+i), 10, true)
	}
	mustStore(t, s, "a", "updated", 30, 10, true) // keeps its place
	s.Delete("b")
	mustStore(t, s, "b", "again", 25, 10, true) // moves to the end
	if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"a", "c", "b"}) {
		t.Fatalf("items = %v, want [a c b]", got)
	}
	// A stale (expired, not yet removed) key updated before any read keeps its place too, as in
	// hivemind, where the expired record is still in the dict.
	s2 := newStringStorage(0)
	mustStore(t, s2, "a", "", 11, 10, true)
	mustStore(t, s2, "b", "", 30, 10, true)
	mustStore(t, s2, "a", "", 40, 12, true)
	if got := tsKeys(s2.Items(12)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("items = %v, want [a b]", got)
	}
}

func TestTimedStorageTiesAreDeterministic(t *testing.T) {
	// Quirk heap_key_comparison_typeerror (fixed): equal expirations never fail; ties go by Compare,
	// or first stored first without one.
	withCmp := newStringStorage(0)
	noCmp := NewTimedStorage(TimedStorageConfig[string, string]{})
	for _, k := range []string{"m", "z", "a"} {
		mustStore(t, withCmp, k, "", 20, 10, true)
		mustStore(t, noCmp, k, "", 20, 10, true)
	}
	if e, _ := withCmp.Top(10); e.Key != "a" {
		t.Errorf("Top with Compare = %q, want a", e.Key)
	}
	if e, _ := noCmp.Top(10); e.Key != "m" {
		t.Errorf("Top without Compare = %q, want m (first stored)", e.Key)
	}
}

func TestTimedStorageBounds(t *testing.T) {
	byteCost := func(k, v string) Cost { return Cost{Entries: 1, Bytes: int64(len(v))} }
	t.Run("flood_with_earlier_expirations_is_refused", func(t *testing.T) {
		s := NewTimedStorage(TimedStorageConfig[string, string]{MaxEntries: 3, Compare: strings.Compare})
		for i := range 3 {
			mustStore(t, s, fmt.Sprint("keep", i), "", 100, 10, true)
		}
		for i := range 100 {
			ok, err := s.Store(fmt.Sprint("flood", i), "", 50, 10)
			if ok || !errors.Is(err, ErrStorageFull) {
				t.Fatalf("flood store %d = %v, %v; want ErrStorageFull", i, ok, err)
			}
		}
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"keep0", "keep1", "keep2"}) {
			t.Fatalf("items = %v", got)
		}
		// Equal expirations: the tie-break decides. "zzz" comes after keep* in eviction order, so
		// keep0 (first in that order) goes; "a" would come first itself, so it is refused.
		mustStore(t, s, "zzz", "", 100, 10, true)
		if ok, err := s.Store("a", "", 100, 10); ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("tied store = %v, %v", ok, err)
		}
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"keep1", "keep2", "zzz"}) {
			t.Fatalf("items = %v", got)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s := NewTimedStorage(TimedStorageConfig[string, string]{MaxBytes: 10, Cost: byteCost, Compare: strings.Compare})
		mustStore(t, s, "a", "12345", 20, 10, true)
		mustStore(t, s, "b", "1234", 21, 10, true)
		if ok, err := s.Store("big", "12345678901", 30, 10); ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("oversized record = %v, %v", ok, err)
		}
		if s.Len(10) != 2 {
			t.Fatal("an oversized record evicted others")
		}
		// Needs 8 bytes: evicting a (5) is not enough, b is evicted too.
		mustStore(t, s, "c", "12345678", 30, 10, true)
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"c"}) || s.Usage() != (Cost{Entries: 1, Bytes: 8}) {
			t.Fatalf("items = %v, usage %+v", got, s.Usage())
		}
		// Needs 10 bytes but only an entry expiring later could make room: refused, nothing evicted.
		if ok, err := s.Store("d", "1234567890", 25, 10); ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("store = %v, %v", ok, err)
		}
		// Growing a record in place evicts others first, never the record itself.
		mustStore(t, s, "e", "1", 40, 10, true)
		mustStore(t, s, "e", "123456789", 41, 10, true)
		if got := tsKeys(s.Items(10)); !slices.Equal(got, []string{"e"}) {
			t.Fatalf("items = %v", got)
		}
		if ok, err := s.Store("e", "12345678901", 42, 10); ok || !errors.Is(err, ErrStorageFull) {
			t.Fatalf("oversized update = %v, %v", ok, err)
		}
	})
	t.Run("expired_records_make_room", func(t *testing.T) {
		s := newStringStorage(2)
		mustStore(t, s, "a", "", 11, 10, true)
		mustStore(t, s, "b", "", 12, 10, true)
		mustStore(t, s, "c", "", 13, 12.5, true) // a and b are expired by now: no eviction needed
		mustStore(t, s, "d", "", 5, 10, false)   // already expired
		if got := tsKeys(s.Items(12.5)); !slices.Equal(got, []string{"c"}) {
			t.Fatalf("items = %v", got)
		}
	})
}

// tsModel is a naive TimedStorage with MaxEntries (every record costing 1), keys compared as strings.
type tsModel struct {
	max    int
	frozen bool
	recs   []Entry[string, string] // insertion order
}

func (m *tsModel) find(key string) int {
	return slices.IndexFunc(m.recs, func(e Entry[string, string]) bool { return e.Key == key })
}

// minIndex returns the record evicted first.
func (m *tsModel) minIndex() int {
	best := -1
	for i, e := range m.recs {
		if best < 0 || e.Expiration < m.recs[best].Expiration ||
			(e.Expiration == m.recs[best].Expiration && e.Key < m.recs[best].Key) {
			best = i
		}
	}
	return best
}

func (m *tsModel) purge(now float64) {
	if m.frozen {
		return
	}
	m.recs = slices.DeleteFunc(m.recs, func(e Entry[string, string]) bool { return e.Expiration < now })
	for m.max > 0 && len(m.recs) > m.max {
		m.recs = slices.Delete(m.recs, m.minIndex(), m.minIndex()+1)
	}
}

func (m *tsModel) store(key, value string, exp, now float64) (bool, bool) {
	if exp < now && !m.frozen {
		return false, false
	}
	i := m.find(key)
	if i >= 0 {
		if !(m.recs[i].Expiration < exp) {
			return false, false
		}
		m.recs[i].Value, m.recs[i].Expiration = value, exp
		return true, false
	}
	if !m.frozen {
		m.recs = slices.DeleteFunc(m.recs, func(e Entry[string, string]) bool { return e.Expiration < now })
		kept := slices.Clone(m.recs)
		for m.max > 0 && len(m.recs)+1 > m.max {
			j := m.minIndex()
			if v := m.recs[j]; !(v.Expiration < exp || (v.Expiration == exp && v.Key < key)) {
				m.recs = kept
				return false, true
			}
			m.recs = slices.Delete(m.recs, j, j+1)
		}
	}
	m.recs = append(m.recs, Entry[string, string]{Key: key, Value: value, Expiration: exp})
	return true, false
}

// TestTimedStorageModel drives random operations on TimedStorage and on the naive model and
// compares every result: the indexed heap, the order list and the bounds against brute force.
func TestTimedStorageModel(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for trial := range 300 {
		maxEntries := r.IntN(6)
		s := newStringStorage(maxEntries)
		m := &tsModel{max: maxEntries}
		now := 100.0
		for step := range 200 {
			where := fmt.Sprintf("trial %d step %d", trial, step)
			key := string(rune('a' + r.IntN(8)))
			switch op := r.IntN(20); {
			case op < 9:
				exp := now - 2 + float64(r.IntN(12))
				value := fmt.Sprint(step)
				got, err := s.Store(key, value, exp, now)
				want, full := m.store(key, value, exp, now)
				if got != want || errors.Is(err, ErrStorageFull) != full {
					t.Fatalf("%s: Store(%s, %v) = %v, %v; model %v, full %v", where, key, exp, got, err, want, full)
				}
			case op < 11:
				now += float64(r.IntN(3))
			case op < 12:
				s.Delete(key)
				if i := m.find(key); i >= 0 {
					m.recs = slices.Delete(m.recs, i, i+1)
				}
			case op < 13:
				frozen := r.IntN(3) == 0
				s.SetFrozen(frozen)
				m.frozen = frozen
			case op < 15:
				m.purge(now)
				e, ok := s.Top(now)
				if i := m.minIndex(); ok != (i >= 0) || (ok && !frozenTopMatches(m, e)) {
					t.Fatalf("%s: Top = %+v, %v; model %v", where, e, ok, m.recs)
				}
			case op < 17:
				m.purge(now)
				e, ok := s.Get(key, now)
				i := m.find(key)
				if ok != (i >= 0) || (ok && e != m.recs[i]) {
					t.Fatalf("%s: Get(%s) = %+v, %v; model %v", where, key, e, ok, m.recs)
				}
			default:
				m.purge(now)
				if got := s.Items(now); !slices.Equal(got, m.recs) {
					t.Fatalf("%s: Items = %v; model %v", where, got, m.recs)
				}
			}
			if !m.frozen && maxEntries > 0 && s.Usage().Entries > maxEntries && len(m.recs) <= maxEntries {
				t.Fatalf("%s: %d entries held, bound %d", where, s.Usage().Entries, maxEntries)
			}
		}
	}
}

// frozenTopMatches checks Top against the model's minimum (ties: the lowest key).
func frozenTopMatches(m *tsModel, e Entry[string, string]) bool {
	return m.recs[m.minIndex()] == e
}

func BenchmarkTimedStorageStore100k(b *testing.B) {
	s := NewTimedStorage(TimedStorageConfig[int, int]{})
	for i := range 100_000 {
		s.Store(i, i, float64(1000+i), 0)
	}
	for i := 0; b.Loop(); i++ {
		s.Store(i%100_000, i, float64(200_000+i), 0)
	}
}
