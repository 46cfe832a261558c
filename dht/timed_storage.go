package dht

import (
	"container/heap"
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
//     expirations are evicted first (quirk Q9: not LRU), within the eviction rule below;
//   - iteration follows insertion order: replacing a key's value keeps its place, deleting and
//     storing it again moves it to the end;
//   - while frozen, nothing expires or is evicted and past expirations are accepted.
//
// It differs where hivemind has bugs: a refused store changes nothing at all (quirk Q1: hivemind
// still re-points the key's expiry tracking); NaN and infinite expirations are refused with an error
// wrapping ErrInvalidExpiration; and a store that cannot fit the bounds without evicting the record
// itself is refused with an error wrapping ErrStorageFull instead of being accepted and evicted at
// once, so a flood beyond the bounds is refused item by item. That last one is a deliberate
// policy, and a peer sees it: a Node answers such an item of a STORE with store_ok false, where
// hivemind's store returns True and drops the record at once (TestFullStorageRefusesWhatHivemindDrops).
//
// # Fair eviction between owners
//
// Every record belongs to the account of its owner: the string given to StoreFrom (for a DHT node,
// the peer whose STORE wrote it last), or the shared account "" for Store. Over a bound, the
// victim is the earliest-expiring record (ties: Compare, then first stored) of the account with
// the largest share of the bounds, its dominant share max(entries/MaxEntries, bytes/MaxBytes)
// over the bounds set (its entries when there is none); equal shares go to the account whose
// earliest record comes first. A store by an owner that would have to evict its own new record
// is refused (ErrStorageFull). So a flood from one owner, once it holds the largest share, evicts
// that owner's own records and never those of an owner holding less, however soon they expire.
// With one account (every record stored by Store, or all by one owner) this is exactly hivemind's
// earliest-expiration-first order. hivemind has no owners, so with several accounts this is a
// deliberate divergence, and one a peer sees on the wire, since a Node answers FINDs from this
// storage: a FIND still returns a record that hivemind's rule, at the same bound, would have
// evicted (a smaller account's record expiring soonest), and no longer returns the flooder's
// records that hivemind would have kept (TestFullStorageKeepsWhatHivemindEvicts). (hivemind's
// DHTProtocol does not bound its storage at all, only its cache.)
//
// Accounts exist while they hold a record, so there are never more accounts than records; the
// owner string is kept once per account.
//
// Every operation is O(log n + log a) for n records and a accounts (an indexed heap per account,
// two indexed heaps of accounts, an ordered list; no stale heap entries), except Items which is
// O(n). Methods take `now` (DHT time, Unix seconds); there is no clock, goroutine or lock inside, so
// it is not safe for concurrent use, and must not be copied (use it through the pointer
// NewTimedStorage returns).
type TimedStorage[K comparable, V any] struct {
	cfg        TimedStorageConfig[K, V]
	frozen     bool
	index      map[K]*timedEntry[K, V]
	head, tail *timedEntry[K, V] // insertion order
	total      Cost
	seq        uint64

	local    storageAccount[K, V]             // owner "" (embedded: a one-owner storage allocates no account)
	accounts map[string]*storageAccount[K, V] // the other owners holding a record; nil until one does
	// acctHeaps are the accounts holding a record: [byShare] has the next to evict from on top
	// (largest dominant share, then earliest record), [byHead] the one with the earliest record.
	acctHeaps [2]accountHeap[K, V]
	acctBuf   [2]*storageAccount[K, V] // backing arrays of acctHeaps for the first account
}

// The heaps of accounts.
const (
	byShare = iota
	byHead
)

// storageAccount is the records of one owner.
type storageAccount[K comparable, V any] struct {
	owner   string
	records recordHeap[K, V] // earliest (expiration, Compare, seq) on top
	usage   Cost
	share   float64 // dominant share of usage (TimedStorage.share)
	pos     [2]int  // index in acctHeaps[byShare], acctHeaps[byHead]; -1 when absent
}

type timedEntry[K comparable, V any] struct {
	key        K
	value      V
	expiration float64
	cost       Cost
	seq        uint64
	acct       *storageAccount[K, V] // the owner's account (kept after detach, for a rollback)
	heapIndex  int                   // in acct.records; -1 when detached
	prev, next *timedEntry[K, V]
	// dropped marks a record removed from the storage. A dropped record keeps its next pointer,
	// so a cursor resting on it (keysAfter) finds its way back into the list.
	dropped bool
}

// NewTimedStorage returns an empty storage.
func NewTimedStorage[K comparable, V any](cfg TimedStorageConfig[K, V]) *TimedStorage[K, V] {
	s := &TimedStorage[K, V]{cfg: cfg, index: make(map[K]*timedEntry[K, V])}
	s.local = storageAccount[K, V]{records: recordHeap[K, V]{s: s}, pos: [2]int{-1, -1}}
	for h := range s.acctHeaps {
		s.acctHeaps[h] = accountHeap[K, V]{items: s.acctBuf[h : h : h+1], by: h, s: s}
	}
	return s
}

// checkExpiration refuses NaN and infinite expirations (hivemind accepts them: quirks nan_expiration
// and infinite_expiration; a NaN record would never expire and would block the key forever).
func checkExpiration(exp float64) error {
	if math.IsNaN(exp) || math.IsInf(exp, 0) {
		return fmt.Errorf("%w: %v", ErrInvalidExpiration, exp)
	}
	return nil
}

// Store stores value under key until expiration, in the shared account "", and reports whether it
// was stored. A refusal because the expiration is past or not newer than the stored one is
// (false, nil); a NaN or infinite expiration gives an error wrapping ErrInvalidExpiration, a store
// beyond the bounds one wrapping ErrStorageFull. The storage keeps value as it is (it does not copy
// it).
func (s *TimedStorage[K, V]) Store(key K, value V, expiration, now float64) (bool, error) {
	return s.StoreFrom("", key, value, expiration, now)
}

// StoreFrom is Store on behalf of owner: the record, a replaced one included, moves to owner's
// account (see the type's documentation for the eviction rule).
func (s *TimedStorage[K, V]) StoreFrom(owner string, key K, value V, expiration, now float64) (bool, error) {
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
	if e != nil { // replace in place: the key keeps its place in the iteration order
		if err := s.update(e, owner, expiration, cost, now); err != nil {
			return false, err
		}
		e.value = value
		return true, nil
	}
	if !s.frozen && !s.withinBounds(cost) {
		return false, fmt.Errorf("%w: one record costs %d entries, %d bytes", ErrStorageFull, cost.Entries, cost.Bytes)
	}
	s.seq++
	e = &timedEntry[K, V]{key: key, value: value, expiration: expiration, cost: cost, seq: s.seq}
	s.attach(e, s.account(owner))
	if !s.frozen && !s.makeRoom(e, now) {
		s.detach(e)
		return false, fmt.Errorf("%w: %d entries, %d bytes in use", ErrStorageFull, s.total.Entries, s.total.Bytes)
	}
	e.prev = s.tail
	if s.tail != nil {
		s.tail.next = e
	} else {
		s.head = e
	}
	s.tail = e
	s.index[key] = e
	return true, nil
}

// update gives the stored record e a new expiration (not past, unless frozen), cost and owner,
// making room as a new record would; on ErrStorageFull nothing changed. A change that does not
// grow the record needs no room (and, as in hivemind, expires nothing).
func (s *TimedStorage[K, V]) update(e *timedEntry[K, V], owner string, expiration float64, cost Cost, now float64) error {
	oldExp, oldCost, oldAcct := e.expiration, e.cost, e.acct
	grows := cost.Entries > oldCost.Entries || cost.Bytes > oldCost.Bytes
	if grows && !s.frozen && !s.withinBounds(cost) {
		return fmt.Errorf("%w: one record costs %d entries, %d bytes", ErrStorageFull, cost.Entries, cost.Bytes)
	}
	s.reattach(e, s.account(owner), expiration, cost)
	if grows && !s.frozen && !s.makeRoom(e, now) {
		s.reattach(e, oldAcct, oldExp, oldCost)
		return fmt.Errorf("%w: %d entries, %d bytes in use", ErrStorageFull, s.total.Entries, s.total.Bytes)
	}
	return nil
}

// reattach gives the counted record e a new expiration and cost in account a: in place when a is
// already its account, else by moving it there (detach, attach).
func (s *TimedStorage[K, V]) reattach(e *timedEntry[K, V], a *storageAccount[K, V], expiration float64, cost Cost) {
	if e.acct != a {
		s.detach(e)
		e.expiration, e.cost = expiration, cost
		s.attach(e, a)
		return
	}
	a.usage = a.usage.sub(e.cost).add(cost)
	a.share = s.share(a.usage)
	s.total = s.total.sub(e.cost).add(cost)
	e.expiration, e.cost = expiration, cost
	heap.Fix(&a.records, e.heapIndex)
	s.acctFix(a)
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
	if e := s.earliest(); e != nil {
		return e.entry(), true
	}
	return Entry[K, V]{}, false
}

// Delete removes the record stored under key, if any, and reports whether there was one.
func (s *TimedStorage[K, V]) Delete(key K) bool {
	e, ok := s.index[key]
	if ok {
		s.remove(e)
	}
	return ok
}

// Clear removes every record.
func (s *TimedStorage[K, V]) Clear() {
	for e := s.head; e != nil; e = e.next {
		e.dropped = true
	}
	clear(s.index)
	clear(s.local.records.items)
	s.local.records.items, s.local.usage, s.local.share, s.local.pos = s.local.records.items[:0], Cost{}, 0, [2]int{-1, -1}
	s.accounts = nil
	for h := range s.acctHeaps {
		clear(s.acctHeaps[h].items)
		s.acctHeaps[h].items = s.acctHeaps[h].items[:0]
	}
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

// OwnerUsage returns the summed cost of the records of owner's account, expired ones not yet
// removed included (zero when it holds none).
func (s *TimedStorage[K, V]) OwnerUsage(owner string) Cost {
	if owner == "" {
		return s.local.usage
	}
	if a := s.accounts[owner]; a != nil {
		return a.usage
	}
	return Cost{}
}

// Owners returns the number of accounts holding a record ("" included when it holds one).
func (s *TimedStorage[K, V]) Owners() int { return s.acctHeaps[byShare].Len() }

// RemoveOutdated removes the records expired at now, then evicts records (see the type's
// documentation) while a bound is exceeded, which only happens after unfreezing. Every reading
// method calls it; call it directly to reclaim memory without reading. It does nothing while
// frozen.
func (s *TimedStorage[K, V]) RemoveOutdated(now float64) {
	if s.frozen {
		return
	}
	s.removeExpired(now)
	for !s.withinBounds(s.total) {
		v := s.victim()
		if v == nil {
			return
		}
		s.remove(v)
	}
}

// removeExpired removes the records expired at now.
func (s *TimedStorage[K, V]) removeExpired(now float64) {
	for e := s.earliest(); e != nil && e.expiration < now; e = s.earliest() {
		s.remove(e)
	}
}

// earliest returns the record with the earliest expiration (ties: Compare, then first stored).
func (s *TimedStorage[K, V]) earliest() *timedEntry[K, V] {
	if h := s.acctHeaps[byHead].items; len(h) > 0 {
		return h[0].records.items[0]
	}
	return nil
}

// victim returns the record to evict next: the earliest of the account with the largest share.
func (s *TimedStorage[K, V]) victim() *timedEntry[K, V] {
	if h := s.acctHeaps[byShare].items; len(h) > 0 {
		return h[0].records.items[0]
	}
	return nil
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

// makeRoom brings the storage within its bounds now that e (attached, not expired) is counted:
// expired records go first; then, while a bound is exceeded, victims are evicted. If e itself
// would be the next victim, the victims are restored (the expired records stay removed) and
// makeRoom returns false; e is left attached.
func (s *TimedStorage[K, V]) makeRoom(e *timedEntry[K, V], now float64) bool {
	s.removeExpired(now)
	if s.withinBounds(s.total) {
		return true
	}
	var victims []*timedEntry[K, V]
	for !s.withinBounds(s.total) {
		v := s.victim()
		if v == e {
			for i := len(victims) - 1; i >= 0; i-- {
				s.attach(victims[i], victims[i].acct)
			}
			return false
		}
		s.detach(v)
		victims = append(victims, v)
	}
	for _, v := range victims {
		s.drop(v)
	}
	return true
}

// account returns owner's account: its current one, or a new one that attach registers.
func (s *TimedStorage[K, V]) account(owner string) *storageAccount[K, V] {
	if owner == "" {
		return &s.local
	}
	if a := s.accounts[owner]; a != nil {
		return a
	}
	return &storageAccount[K, V]{owner: owner, records: recordHeap[K, V]{s: s}, pos: [2]int{-1, -1}}
}

// attach counts e (not counted) in account a, registering a when it held nothing.
func (s *TimedStorage[K, V]) attach(e *timedEntry[K, V], a *storageAccount[K, V]) {
	e.acct = a
	heap.Push(&a.records, e)
	a.usage = a.usage.add(e.cost)
	a.share = s.share(a.usage)
	s.total = s.total.add(e.cost)
	if a.records.Len() == 1 {
		if a != &s.local {
			if s.accounts == nil {
				s.accounts = make(map[string]*storageAccount[K, V])
			}
			s.accounts[a.owner] = a
		}
		for h := range s.acctHeaps {
			heap.Push(&s.acctHeaps[h], a)
		}
		return
	}
	s.acctFix(a)
}

// detach stops counting e (it stays in the index and the order list; e.acct is kept), and
// unregisters its account when e was its last record.
func (s *TimedStorage[K, V]) detach(e *timedEntry[K, V]) {
	a := e.acct
	heap.Remove(&a.records, e.heapIndex)
	a.usage = a.usage.sub(e.cost)
	a.share = s.share(a.usage)
	s.total = s.total.sub(e.cost)
	if a.records.Len() == 0 {
		for h := range s.acctHeaps {
			heap.Remove(&s.acctHeaps[h], a.pos[h])
		}
		if a != &s.local {
			delete(s.accounts, a.owner)
		}
		return
	}
	s.acctFix(a)
}

// remove removes e from the storage.
func (s *TimedStorage[K, V]) remove(e *timedEntry[K, V]) {
	s.detach(e)
	s.drop(e)
}

// drop removes e (already detached) from the index and the order list.
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
}

// entryOf returns key's record without expiring anything (for LocalStorage).
func (s *TimedStorage[K, V]) entryOf(key K) *timedEntry[K, V] { return s.index[key] }

// ownerOf returns the owner of key's record ("" when there is none).
func (s *TimedStorage[K, V]) ownerOf(key K) string {
	if e := s.index[key]; e != nil {
		return e.acct.owner
	}
	return ""
}

// recost recomputes the cost of e after its value changed in place.
func (s *TimedStorage[K, V]) recost(e *timedEntry[K, V]) {
	cost := s.costOf(e.key, e.value)
	a := e.acct
	a.usage = a.usage.sub(e.cost).add(cost)
	a.share = s.share(a.usage)
	s.total = s.total.sub(e.cost).add(cost)
	e.cost = cost
	s.acctFix(a)
}

func (e *timedEntry[K, V]) entry() Entry[K, V] {
	return Entry[K, V]{Key: e.key, Value: e.value, Expiration: e.expiration}
}

// ---- the heaps (container/heap), each element knowing its index ----

// less is the eviction order of records: earliest expiration, then Compare, then first stored.
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

// recordHeap is an account's records, a heap.Interface ordered by TimedStorage.less (the earliest
// on top); each record keeps its index in heapIndex.
type recordHeap[K comparable, V any] struct {
	items []*timedEntry[K, V]
	s     *TimedStorage[K, V]
}

func (h *recordHeap[K, V]) Len() int           { return len(h.items) }
func (h *recordHeap[K, V]) Less(i, j int) bool { return h.s.less(h.items[i], h.items[j]) }
func (h *recordHeap[K, V]) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].heapIndex, h.items[j].heapIndex = i, j
}
func (h *recordHeap[K, V]) Push(x any) {
	e := x.(*timedEntry[K, V])
	e.heapIndex = len(h.items)
	h.items = append(h.items, e)
}
func (h *recordHeap[K, V]) Pop() any {
	last := len(h.items) - 1
	e := h.items[last]
	h.items[last] = nil
	h.items = h.items[:last]
	e.heapIndex = -1
	return e
}

// share is the dominant share of the bounds of an account using u: the largest of its fractions
// of the bounds set, or its entries when none is.
func (s *TimedStorage[K, V]) share(u Cost) float64 {
	if s.cfg.MaxEntries <= 0 && s.cfg.MaxBytes <= 0 {
		return float64(u.Entries)
	}
	var sh float64
	if s.cfg.MaxEntries > 0 {
		sh = float64(u.Entries) / float64(s.cfg.MaxEntries)
	}
	if s.cfg.MaxBytes > 0 {
		sh = max(sh, float64(u.Bytes)/float64(s.cfg.MaxBytes))
	}
	return sh
}

// accountHeap is the accounts holding a record, a heap.Interface: by byShare the account to evict
// from first on top (the larger share, ties: the earlier first record), by byHead the account
// with the earliest record. Each account keeps its index in pos[by].
type accountHeap[K comparable, V any] struct {
	items []*storageAccount[K, V]
	by    int
	s     *TimedStorage[K, V]
}

func (h *accountHeap[K, V]) Len() int { return len(h.items) }
func (h *accountHeap[K, V]) Less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	if h.by == byShare && a.share != b.share {
		return a.share > b.share
	}
	return h.s.less(a.records.items[0], b.records.items[0])
}
func (h *accountHeap[K, V]) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].pos[h.by], h.items[j].pos[h.by] = i, j
}
func (h *accountHeap[K, V]) Push(x any) {
	a := x.(*storageAccount[K, V])
	a.pos[h.by] = len(h.items)
	h.items = append(h.items, a)
}
func (h *accountHeap[K, V]) Pop() any {
	last := len(h.items) - 1
	a := h.items[last]
	h.items[last] = nil
	h.items = h.items[:last]
	a.pos[h.by] = -1
	return a
}

// acctFix restores a's place in both heaps of accounts after its usage or first record changed.
func (s *TimedStorage[K, V]) acctFix(a *storageAccount[K, V]) {
	if s.acctHeaps[byShare].Len() < 2 {
		return
	}
	for h := range s.acctHeaps {
		heap.Fix(&s.acctHeaps[h], a.pos[h])
	}
}
