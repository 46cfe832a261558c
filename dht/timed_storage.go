package dht

import (
	"fmt"
	"math"
)

// Entry is one record of a TimedStorage (hivemind's key plus ValueWithExpiration).
type Entry[K comparable, V any] struct {
	Key        K
	Value      V
	Expiration float64
}

// Cost is what one record counts against a TimedStorage's bounds.
type Cost struct {
	Entries int
	Bytes   int64
}

func (c Cost) add(o Cost) Cost { return Cost{Entries: c.Entries + o.Entries, Bytes: c.Bytes + o.Bytes} }
func (c Cost) sub(o Cost) Cost { return Cost{Entries: c.Entries - o.Entries, Bytes: c.Bytes - o.Bytes} }

// TimedStorageConfig configures a TimedStorage. The zero value is hivemind's TimedStorage: unbounded,
// every record costing one entry.
type TimedStorageConfig[K comparable, V any] struct {
	// MaxEntries bounds the sum of the records' Cost.Entries (hivemind's maxsize when every record
	// costs one entry). Zero means unbounded.
	MaxEntries int
	// MaxBytes bounds the sum of the records' Cost.Bytes. Zero means unbounded.
	MaxBytes int64
	// Cost gives what a record counts against the bounds; nil means {Entries: 1}.
	Cost func(key K, value V) Cost
	// Compare orders keys whose expirations are equal (for Top and for eviction). nil means first
	// stored first. It never fails, whatever the keys (hivemind raises comparing keys of different
	// types: quirk heap_key_comparison_typeerror, fixed).
	Compare func(a, b K) int
}

// TimedStorage is hivemind's TimedStorage: a map from keys to values that each live until an
// expiration time, with optional bounds. Like hivemind's:
//
//   - a store whose expiration is already past (expiration < now) is refused; equal to now is
//     accepted and lives until now moves past it;
//   - a key's value is replaced only by a store with a strictly greater expiration;
//   - expired records disappear at the next access; over a bound, the records with the earliest
//     expirations are evicted first (quirk Q9: not LRU);
//   - iteration follows insertion order: replacing a key's value keeps its place, deleting and
//     storing it again moves it to the end;
//   - while frozen, nothing expires or is evicted and past expirations are accepted.
//
// It differs where hivemind has bugs: a refused store changes nothing at all (quirk Q1: hivemind
// still re-points the key's expiry tracking); NaN and infinite expirations are refused with an error
// wrapping ErrInvalidExpiration; and a store that cannot fit the bounds without evicting the record
// itself (its expiration is the earliest) is refused with an error wrapping ErrStorageFull instead
// of being accepted and evicted at once, so a flood beyond the bounds is refused item by item.
//
// Every operation is O(log n) (an indexed heap plus an ordered list; no stale heap entries), except
// Items which is O(n). Methods take `now` (DHT time, Unix seconds); there is no clock, goroutine or
// lock inside, so it is not safe for concurrent use.
type TimedStorage[K comparable, V any] struct {
	cfg        TimedStorageConfig[K, V]
	frozen     bool
	index      map[K]*timedEntry[K, V]
	heap       []*timedEntry[K, V] // min-heap by (expiration, tie-break)
	head, tail *timedEntry[K, V]   // insertion order
	total      Cost
	seq        uint64
}

type timedEntry[K comparable, V any] struct {
	key        K
	value      V
	expiration float64
	cost       Cost
	seq        uint64
	heapIndex  int
	prev, next *timedEntry[K, V]
	// dropped marks a record removed from the storage. A dropped record keeps its next pointer,
	// so a cursor resting on it (keysAfter) finds its way back into the list.
	dropped bool
}

// NewTimedStorage returns an empty storage.
func NewTimedStorage[K comparable, V any](cfg TimedStorageConfig[K, V]) *TimedStorage[K, V] {
	return &TimedStorage[K, V]{cfg: cfg, index: make(map[K]*timedEntry[K, V])}
}

// checkExpiration refuses NaN and infinite expirations (hivemind accepts them: quirks nan_expiration
// and infinite_expiration; a NaN record would never expire and would block the key forever).
func checkExpiration(exp float64) error {
	if math.IsNaN(exp) || math.IsInf(exp, 0) {
		return fmt.Errorf("%w: %v", ErrInvalidExpiration, exp)
	}
	return nil
}

// Store stores value under key until expiration and reports whether it was stored. A refusal
// because the expiration is past or not newer than the stored one is (false, nil); a NaN or
// infinite expiration gives an error wrapping ErrInvalidExpiration, a store beyond the bounds one
// wrapping ErrStorageFull. The storage keeps value as it is (it does not copy it).
func (s *TimedStorage[K, V]) Store(key K, value V, expiration, now float64) (bool, error) {
	if err := checkExpiration(expiration); err != nil {
		return false, err
	}
	if expiration < now && !s.frozen {
		return false, nil
	}
	e := s.index[key]
	if e != nil && !(e.expiration < expiration) {
		return false, nil
	}
	cost := s.costOf(key, value)
	if !s.frozen {
		if !s.withinBounds(cost) {
			return false, fmt.Errorf("%w: one record costs %d entries, %d bytes", ErrStorageFull, cost.Entries, cost.Bytes)
		}
		need := cost
		if e != nil {
			need = cost.sub(e.cost)
		}
		// A replacement that does not grow needs no room (and, as in hivemind, expires nothing).
		grows := e == nil || need.Entries > 0 || need.Bytes > 0
		if grows && !s.reserve(need, expiration, key, e, now) {
			return false, fmt.Errorf("%w: %d entries, %d bytes in use", ErrStorageFull, s.total.Entries, s.total.Bytes)
		}
	}
	if e != nil { // replace in place: the key keeps its place in the iteration order
		s.total = s.total.sub(e.cost).add(cost)
		e.value, e.expiration, e.cost = value, expiration, cost
		s.fix(e.heapIndex)
		return true, nil
	}
	s.seq++
	e = &timedEntry[K, V]{key: key, value: value, expiration: expiration, cost: cost, seq: s.seq, prev: s.tail}
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
	s.index[key] = e
	s.total = s.total.add(cost)
	s.push(e)
	return true, nil
}

// Get returns the live record stored under key.
func (s *TimedStorage[K, V]) Get(key K, now float64) (Entry[K, V], bool) {
	s.RemoveOutdated(now)
	e, ok := s.index[key]
	if !ok {
		return Entry[K, V]{}, false
	}
	return e.entry(), true
}

// Contains reports whether a live record is stored under key.
func (s *TimedStorage[K, V]) Contains(key K, now float64) bool {
	s.RemoveOutdated(now)
	_, ok := s.index[key]
	return ok
}

// Len returns the number of live records.
func (s *TimedStorage[K, V]) Len(now float64) int {
	s.RemoveOutdated(now)
	return len(s.index)
}

// Items returns every live record in insertion order.
func (s *TimedStorage[K, V]) Items(now float64) []Entry[K, V] {
	s.RemoveOutdated(now)
	out := make([]Entry[K, V], 0, len(s.index))
	for e := s.head; e != nil; e = e.next {
		out = append(out, e.entry())
	}
	return out
}

// storageCursor is a position in a TimedStorage's insertion order (keysAfter).
type storageCursor[K comparable, V any] struct{ e *timedEntry[K, V] }

// keysAfter appends to dst the keys of the records that follow cursor in insertion order (from
// the first record for the zero cursor), visiting at most max records, and returns the cursor to
// continue from; done reports that the end was reached. It lets a caller walk a big storage in
// short steps, releasing its lock in between. The storage may change between steps: a record
// removed before it is reached is skipped, a record replaced in place is returned once, and a
// record stored (at the end) during the walk may or may not be returned, once. Expired records
// that were not removed yet are returned too.
func (s *TimedStorage[K, V]) keysAfter(dst []K, cursor storageCursor[K, V], max int) (_ []K, next storageCursor[K, V], done bool) {
	e := s.head
	if c := cursor.e; c != nil {
		e = c.next
		// A cursor on a removed record follows the next pointers of removed records, each kept
		// as it was at the removal, to the first record still stored (or to the end).
		for e != nil && e.dropped && max > 0 {
			cursor.e, e = e, e.next
			max--
		}
	}
	for ; e != nil && max > 0; e = e.next {
		if !e.dropped {
			dst = append(dst, e.key)
		}
		cursor.e = e
		max--
	}
	return dst, cursor, e == nil
}

// Top returns the live record with the earliest expiration (ties broken by Compare).
func (s *TimedStorage[K, V]) Top(now float64) (Entry[K, V], bool) {
	s.RemoveOutdated(now)
	if len(s.heap) == 0 {
		return Entry[K, V]{}, false
	}
	return s.heap[0].entry(), true
}

// Delete removes the record stored under key, if any, and reports whether there was one.
func (s *TimedStorage[K, V]) Delete(key K) bool {
	e, ok := s.index[key]
	if ok {
		s.removeHeap(e.heapIndex)
		s.drop(e)
	}
	return ok
}

// Clear removes every record.
func (s *TimedStorage[K, V]) Clear() {
	for e := s.head; e != nil; e = e.next {
		e.dropped = true
	}
	clear(s.index)
	clear(s.heap)
	s.heap = s.heap[:0]
	s.head, s.tail = nil, nil
	s.total = Cost{}
}

// SetFrozen freezes or unfreezes the storage and returns the previous state (hivemind's freeze()
// context: restore it when done). While frozen nothing expires or is evicted, and stores with past
// expirations or beyond the bounds are accepted; the next access after unfreezing catches up.
func (s *TimedStorage[K, V]) SetFrozen(frozen bool) (previous bool) {
	previous, s.frozen = s.frozen, frozen
	return previous
}

// Frozen reports whether the storage is frozen.
func (s *TimedStorage[K, V]) Frozen() bool { return s.frozen }

// Usage returns the summed cost of the records held, expired ones not yet removed included.
func (s *TimedStorage[K, V]) Usage() Cost { return s.total }

// RemoveOutdated removes the records expired at now, then evicts records by earliest expiration
// while a bound is exceeded (which only happens after unfreezing). Every reading method calls it;
// call it directly to reclaim memory without reading. It does nothing while frozen.
func (s *TimedStorage[K, V]) RemoveOutdated(now float64) {
	for !s.frozen && len(s.heap) > 0 && (s.heap[0].expiration < now || !s.withinBounds(s.total)) {
		s.drop(s.pop())
	}
}

// withinBounds reports whether a total cost c fits the bounds.
func (s *TimedStorage[K, V]) withinBounds(c Cost) bool {
	return (s.cfg.MaxEntries <= 0 || c.Entries <= s.cfg.MaxEntries) && (s.cfg.MaxBytes <= 0 || c.Bytes <= s.cfg.MaxBytes)
}

func (s *TimedStorage[K, V]) costOf(key K, value V) Cost {
	if s.cfg.Cost == nil {
		return Cost{Entries: 1}
	}
	return s.cfg.Cost(key, value)
}

// reserve makes room for need more cost on behalf of key, which is to get expiration (self is key's
// current record, or nil). Expired records go first, self excepted; then, while the bounds are
// exceeded, records that come before (expiration, key) in eviction order are evicted. If that is
// not enough nothing is evicted (beyond the expired records) and reserve returns false.
func (s *TimedStorage[K, V]) reserve(need Cost, expiration float64, key K, self *timedEntry[K, V], now float64) bool {
	var held []*timedEntry[K, V] // self, popped out of the way and pushed back at the end
	defer func() {
		for _, e := range held {
			s.push(e)
		}
	}()
	for len(s.heap) > 0 && s.heap[0].expiration < now {
		if e := s.pop(); e == self {
			held = append(held, e)
		} else {
			s.drop(e)
		}
	}
	if s.withinBounds(s.total.add(need)) {
		return true
	}
	var victims []*timedEntry[K, V]
	total := s.total.add(need)
	for len(s.heap) > 0 && !s.withinBounds(total) {
		if s.heap[0] == self {
			held = append(held, s.pop())
			continue
		}
		if !s.evictsBefore(s.heap[0], expiration, key, self) {
			break
		}
		e := s.pop()
		victims = append(victims, e)
		total = total.sub(e.cost)
	}
	if !s.withinBounds(total) {
		for _, e := range victims {
			s.push(e)
		}
		return false
	}
	for _, e := range victims {
		s.drop(e)
	}
	return true
}

// evictsBefore reports whether e comes before a record of key expiring at expiration in eviction
// order (self is key's current record, whose sequence number it keeps; nil for a new key).
func (s *TimedStorage[K, V]) evictsBefore(e *timedEntry[K, V], expiration float64, key K, self *timedEntry[K, V]) bool {
	if e.expiration != expiration {
		return e.expiration < expiration
	}
	if s.cfg.Compare != nil {
		return s.cfg.Compare(e.key, key) < 0
	}
	return self == nil || e.seq < self.seq
}

// drop removes e (already out of the heap) from the index and the order list.
func (s *TimedStorage[K, V]) drop(e *timedEntry[K, V]) {
	delete(s.index, e.key)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.dropped = nil, true
	s.total = s.total.sub(e.cost)
}

// entryOf returns key's record without expiring anything (for LocalStorage).
func (s *TimedStorage[K, V]) entryOf(key K) *timedEntry[K, V] { return s.index[key] }

// recost recomputes the cost of e after its value changed in place.
func (s *TimedStorage[K, V]) recost(e *timedEntry[K, V]) {
	cost := s.costOf(e.key, e.value)
	s.total = s.total.sub(e.cost).add(cost)
	e.cost = cost
}

func (e *timedEntry[K, V]) entry() Entry[K, V] {
	return Entry[K, V]{Key: e.key, Value: e.value, Expiration: e.expiration}
}

// ---- indexed binary heap ----

func (s *TimedStorage[K, V]) less(a, b *timedEntry[K, V]) bool {
	if a.expiration != b.expiration {
		return a.expiration < b.expiration
	}
	if s.cfg.Compare != nil {
		if c := s.cfg.Compare(a.key, b.key); c != 0 {
			return c < 0
		}
	}
	return a.seq < b.seq
}

func (s *TimedStorage[K, V]) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].heapIndex = i
	s.heap[j].heapIndex = j
}

func (s *TimedStorage[K, V]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !s.less(s.heap[i], s.heap[parent]) {
			return
		}
		s.swap(i, parent)
		i = parent
	}
}

func (s *TimedStorage[K, V]) down(i int) bool {
	start := i
	for {
		smallest, l, r := i, 2*i+1, 2*i+2
		if l < len(s.heap) && s.less(s.heap[l], s.heap[smallest]) {
			smallest = l
		}
		if r < len(s.heap) && s.less(s.heap[r], s.heap[smallest]) {
			smallest = r
		}
		if smallest == i {
			return i > start
		}
		s.swap(i, smallest)
		i = smallest
	}
}

func (s *TimedStorage[K, V]) fix(i int) {
	if !s.down(i) {
		s.up(i)
	}
}

func (s *TimedStorage[K, V]) push(e *timedEntry[K, V]) {
	e.heapIndex = len(s.heap)
	s.heap = append(s.heap, e)
	s.up(e.heapIndex)
}

func (s *TimedStorage[K, V]) pop() *timedEntry[K, V] { return s.removeHeap(0) }

func (s *TimedStorage[K, V]) removeHeap(i int) *timedEntry[K, V] {
	e := s.heap[i]
	last := len(s.heap) - 1
	if i != last {
		s.swap(i, last)
	}
	s.heap[last] = nil
	s.heap = s.heap[:last]
	if i != last {
		s.fix(i)
	}
	e.heapIndex = -1
	return e
}
