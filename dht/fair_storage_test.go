package dht

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests pin the fair eviction between the owners of a bounded storage (TimedStorage's
// eviction rule): a flood from one owner evicts that owner's own records first. hivemind evicts the
// earliest expirations whoever stored them, so each test below that involves two owners fails on
// hivemind's rule; with one owner the order is hivemind's (storage.json vectors, the TimedStorage
// tests and TestFairStorageOneOwnerIsHivemind).

// TestFairStorageFloodEvictsTheFloodersRecords: owner B's records expire soonest; a flood from A
// expiring much later fills the storage but evicts only A's records, while A holds more.
func TestFairStorageFloodEvictsTheFloodersRecords(t *testing.T) {
	s := newStringStorage(10)
	for i := range 3 {
		if ok, err := s.StoreFrom("B", fmt.Sprint("b", i), "honest", 100+float64(i), 0); !ok || err != nil {
			t.Fatalf("B's store %d: %v %v", i, ok, err)
		}
	}
	for i := range 100 {
		// Every flood record is accepted: the flooder's earliest record makes room.
		if ok, err := s.StoreFrom("A", fmt.Sprintf("a%03d", i), "flood", 1000+float64(i), 0); !ok || err != nil {
			t.Fatalf("A's store %d: %v %v", i, ok, err)
		}
	}
	if got := s.Len(0); got != 10 {
		t.Fatalf("Len = %d, want the bound 10", got)
	}
	for i := range 3 {
		if !s.Contains(fmt.Sprint("b", i), 0) {
			t.Errorf("B's record b%d was evicted by A's flood", i)
		}
	}
	if a, b := s.OwnerUsage("A"), s.OwnerUsage("B"); a.Entries != 7 || b.Entries != 3 {
		t.Errorf("usage A %+v, B %+v; want 7 and 3 entries", a, b)
	}
	// A kept its 7 latest records.
	for i := 93; i < 100; i++ {
		if !s.Contains(fmt.Sprintf("a%03d", i), 0) {
			t.Errorf("A's latest record a%03d is missing", i)
		}
	}
	// B, the smaller account, still gets in: A makes room.
	mustStoreFrom(t, s, "B", "b3", "", 500, 0, true)
	if a := s.OwnerUsage("A"); a.Entries != 6 || s.Contains("a093", 0) {
		t.Errorf("B's store did not evict A's earliest record: A %+v", a)
	}
}

// TestFairStorageRefusesTheLargestOwnersEarliest: a store whose record would be the next victim
// (the largest account's earliest) is refused and changes nothing; the same record from a smaller
// owner gets in.
func TestFairStorageRefusesTheLargestOwnersEarliest(t *testing.T) {
	s := newStringStorage(4)
	mustStoreFrom(t, s, "A", "a1", "", 50, 0, true)
	mustStoreFrom(t, s, "A", "a2", "", 60, 0, true)
	mustStoreFrom(t, s, "A", "a3", "", 70, 0, true)
	mustStoreFrom(t, s, "B", "b1", "", 80, 0, true)
	before := s.Items(0)
	ok, err := s.StoreFrom("A", "a0", "", 40, 0)
	if ok || !errors.Is(err, ErrStorageFull) {
		t.Fatalf("A's store of its own earliest record: %v, %v; want ErrStorageFull", ok, err)
	}
	if got := s.Items(0); !slices.Equal(got, before) || s.Owners() != 2 || s.OwnerUsage("A").Entries != 3 {
		t.Fatalf("a refused store changed the storage: %v -> %v", before, got)
	}
	// From C (a new, smaller account) the same expiration gets in, at A's expense.
	mustStoreFrom(t, s, "C", "c0", "", 40, 0, true)
	if s.Contains("a1", 0) || !s.Contains("b1", 0) || !s.Contains("c0", 0) {
		t.Fatalf("C's store evicted the wrong record: %v", tsKeys(s.Items(0)))
	}
}

// TestFairStorageTiesFollowHivemindOrder: accounts of equal share give up their records in
// hivemind's order (earliest expiration first), and refuse a record that would come first.
func TestFairStorageTiesFollowHivemindOrder(t *testing.T) {
	s, ref := newStringStorage(4), newStringStorage(4)
	for i, r := range []struct {
		key  string
		exp  float64
		want bool
	}{
		{"a", 30, true}, {"b", 10, true}, {"c", 20, true}, {"d", 40, true},
		{"e", 50, true},  // one record per owner: b, the earliest, goes
		{"f", 15, false}, // f would be the earliest: refused
		{"g", 25, true},  // c goes
	} {
		mustStoreFrom(t, s, fmt.Sprint("owner-", i), r.key, "", r.exp, 0, r.want)
		mustStore(t, ref, r.key, "", r.exp, 0, r.want)
	}
	if got, want := tsKeys(s.Items(0)), tsKeys(ref.Items(0)); !slices.Equal(got, want) || !slices.Equal(got, []string{"a", "d", "e", "g"}) {
		t.Errorf("one record per owner: kept %v, hivemind's order keeps %v", got, want)
	}
}

// TestFairStorageOneOwnerIsHivemind: with one owner, whichever it is, every operation gives what
// Store (the shared account, hivemind's order) gives.
func TestFairStorageOneOwnerIsHivemind(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	ref, owned := newStringStorage(16), newStringStorage(16)
	now := 0.0
	for step := range 5000 {
		key := fmt.Sprint("k", rng.IntN(40))
		exp := now + float64(rng.IntN(100)) - 5
		switch rng.IntN(10) {
		case 0:
			if ref.Delete(key) != owned.Delete(key) {
				t.Fatalf("step %d: Delete differs", step)
			}
		case 1:
			now += float64(rng.IntN(10))
		default:
			ok1, err1 := ref.Store(key, fmt.Sprint(step), exp, now)
			ok2, err2 := owned.StoreFrom("peer", key, fmt.Sprint(step), exp, now)
			if ok1 != ok2 || (err1 == nil) != (err2 == nil) {
				t.Fatalf("step %d: Store = %v %v, StoreFrom = %v %v", step, ok1, err1, ok2, err2)
			}
		}
		if a, b := ref.Items(now), owned.Items(now); !slices.Equal(a, b) {
			t.Fatalf("step %d: items differ:\n%v\n%v", step, a, b)
		}
	}
}

// TestFairStorageAgainstOracle runs random stores by several owners, deletes, clock moves and
// freezes against a naive model of the eviction rule.
func TestFairStorageAgainstOracle(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		const bound = 12
		s := newStringStorage(bound)
		m := &fairModel{max: bound, recs: map[string]fairRec{}}
		now := 0.0
		for step := range 1500 {
			key := fmt.Sprint("k", rng.IntN(30))
			owner := []string{"", "A", "A", "A", "B", "C"}[rng.IntN(6)]
			switch op := rng.IntN(20); {
			case op == 0:
				if s.Delete(key) != m.delete(key) {
					t.Fatalf("seed %d step %d: Delete(%s) differs", seed, step, key)
				}
			case op == 1:
				now += float64(rng.IntN(8))
			case op == 2:
				prev := s.SetFrozen(!s.Frozen())
				m.frozen = !prev
			default:
				exp := now + float64(rng.IntN(60)) - 3
				ok, err := s.StoreFrom(owner, key, "", exp, now)
				wok, wfull := m.store(owner, key, exp, now)
				if ok != wok || errors.Is(err, ErrStorageFull) != wfull {
					t.Fatalf("seed %d step %d: StoreFrom(%q, %s, %v, now %v) = %v, %v; model %v, full %v\nstorage %v\nmodel %v",
						seed, step, owner, key, exp, now, ok, err, wok, wfull, s.Items(now), m.items())
				}
			}
			if step%3 == 0 {
				m.removeOutdated(now)
				got := s.Items(now)
				if want := m.items(); !slices.EqualFunc(got, want, func(a Entry[string, string], b fairRec) bool {
					return a.Key == b.key && a.Expiration == b.exp
				}) {
					t.Fatalf("seed %d step %d: items\n%v\nmodel\n%v", seed, step, got, want)
				}
				counts := m.counts()
				if s.Owners() != len(counts) {
					t.Fatalf("seed %d step %d: %d owners, model %v", seed, step, s.Owners(), counts)
				}
				for o, c := range counts {
					if got := s.OwnerUsage(o).Entries; got != c {
						t.Fatalf("seed %d step %d: owner %q holds %d, model %d", seed, step, o, got, c)
					}
				}
			}
		}
	}
}

// fairModel is a naive model of a TimedStorage bounded by entries (one per record, Compare on the
// keys) with fair eviction.
type fairModel struct {
	max    int
	frozen bool
	seq    int
	recs   map[string]fairRec
	order  []string // insertion order
}

type fairRec struct {
	key, owner string
	exp        float64
	seq        int
}

func (m *fairModel) before(a, b fairRec) bool {
	return cmp.Or(cmp.Compare(a.exp, b.exp), strings.Compare(a.key, b.key)) < 0
}

func (m *fairModel) counts() map[string]int {
	c := map[string]int{}
	for _, r := range m.recs {
		c[r.owner]++
	}
	return c
}

// victim: the earliest record of the owner holding the most records (ties: the owner whose
// earliest record comes first).
func (m *fairModel) victim() fairRec {
	earliest := map[string]fairRec{}
	for _, r := range m.recs {
		if e, ok := earliest[r.owner]; !ok || m.before(r, e) {
			earliest[r.owner] = r
		}
	}
	counts := m.counts()
	var best fairRec
	first := true
	for _, o := range slices.Sorted(maps.Keys(earliest)) {
		r := earliest[o]
		if first || counts[o] > counts[best.owner] || (counts[o] == counts[best.owner] && m.before(r, best)) {
			best, first = r, false
		}
	}
	return best
}

func (m *fairModel) remove(key string) {
	delete(m.recs, key)
	m.order = slices.DeleteFunc(m.order, func(k string) bool { return k == key })
}

func (m *fairModel) delete(key string) bool {
	_, ok := m.recs[key]
	if ok {
		m.remove(key)
	}
	return ok
}

func (m *fairModel) removeExpired(now float64) {
	for k, r := range m.recs {
		if r.exp < now {
			m.remove(k)
		}
	}
}

func (m *fairModel) removeOutdated(now float64) {
	if m.frozen {
		return
	}
	m.removeExpired(now)
	for len(m.recs) > m.max {
		m.remove(m.victim().key)
	}
}

// store returns (stored, refused as full).
func (m *fairModel) store(owner, key string, exp, now float64) (bool, bool) {
	if exp < now && !m.frozen {
		return false, false
	}
	if r, ok := m.recs[key]; ok {
		if !(r.exp < exp) {
			return false, false
		}
		r.exp, r.owner = exp, owner // same cost: no room needed
		m.recs[key] = r
		return true, false
	}
	m.seq++
	m.recs[key] = fairRec{key: key, owner: owner, exp: exp, seq: m.seq}
	if m.frozen {
		m.order = append(m.order, key)
		return true, false
	}
	m.removeExpired(now)
	saved := maps.Clone(m.recs)
	for len(m.recs) > m.max {
		v := m.victim()
		if v.key == key {
			m.recs = saved
			delete(m.recs, key)
			return false, true
		}
		delete(m.recs, v.key)
	}
	m.order = slices.DeleteFunc(m.order, func(k string) bool { _, ok := m.recs[k]; return !ok })
	m.order = append(m.order, key)
	return true, false
}

func (m *fairModel) items() []fairRec {
	out := make([]fairRec, 0, len(m.order))
	for _, k := range m.order {
		out = append(out, m.recs[k])
	}
	return out
}

// TestFairStorageBytesShare: over the byte bound the victim is the account with the largest share
// of the bytes, even when another one holds more entries.
func TestFairStorageBytesShare(t *testing.T) {
	s := NewTimedStorage(TimedStorageConfig[string, string]{
		MaxEntries: 100, MaxBytes: 1000, Compare: strings.Compare,
		Cost: func(_ string, v string) Cost { return Cost{Entries: 1, Bytes: int64(len(v))} },
	})
	small := strings.Repeat("s", 10)
	big := strings.Repeat("B", 300)
	for i := range 20 { // 200 bytes, 20 entries, expiring first
		mustStoreFrom(t, s, "many-small", fmt.Sprint("s", i), small, 10+float64(i), 0, true)
	}
	for i := range 6 { // 1800 bytes sent: the big owner evicts its own
		mustStoreFrom(t, s, "few-big", fmt.Sprint("b", i), big, 500+float64(i), 0, true)
	}
	if got := s.OwnerUsage("many-small"); got.Entries != 20 {
		t.Errorf("the small records were evicted by the big ones: %+v left", got)
	}
	if u := s.Usage(); u.Bytes > 1000 {
		t.Errorf("usage %+v over the byte bound", u)
	}
}

// TestFairStorageAccountsShrinkAndVanish: an account exists while it holds a record; expiry,
// Delete, a replacement by another owner, eviction and Clear all shrink it.
func TestFairStorageAccountsShrinkAndVanish(t *testing.T) {
	s := newStringStorage(0)
	mustStoreFrom(t, s, "A", "a1", "", 10, 0, true)
	mustStoreFrom(t, s, "A", "a2", "", 20, 0, true)
	mustStoreFrom(t, s, "B", "b1", "", 30, 0, true)
	mustStore(t, s, "l1", "", 40, 0, true)
	if s.Owners() != 3 || s.OwnerUsage("A").Entries != 2 || s.OwnerUsage("").Entries != 1 {
		t.Fatalf("owners %d, A %+v, local %+v", s.Owners(), s.OwnerUsage("A"), s.OwnerUsage(""))
	}
	s.RemoveOutdated(15) // a1 expires
	if s.OwnerUsage("A").Entries != 1 || s.Owners() != 3 {
		t.Fatalf("after a1 expired: A %+v, %d owners", s.OwnerUsage("A"), s.Owners())
	}
	mustStoreFrom(t, s, "B", "a2", "", 25, 15, true) // B replaces A's last record: A vanishes
	if s.Owners() != 2 || s.OwnerUsage("A") != (Cost{}) || s.OwnerUsage("B").Entries != 2 {
		t.Fatalf("after the replacement: %d owners, A %+v, B %+v", s.Owners(), s.OwnerUsage("A"), s.OwnerUsage("B"))
	}
	if _, ok := s.accounts["A"]; ok {
		t.Fatal("the empty account A is still registered")
	}
	s.Delete("b1")
	s.Delete("a2")
	if s.Owners() != 1 || len(s.accounts) != 0 {
		t.Fatalf("after deleting B's records: %d owners, %d registered", s.Owners(), len(s.accounts))
	}
	mustStoreFrom(t, s, "C", "c1", "", 50, 15, true)
	s.Clear()
	if s.Owners() != 0 || s.Usage() != (Cost{}) || s.OwnerUsage("") != (Cost{}) || s.OwnerUsage("C") != (Cost{}) {
		t.Fatalf("after Clear: %d owners, usage %+v", s.Owners(), s.Usage())
	}
	mustStoreFrom(t, s, "C", "c1", "", 50, 15, true)
	if s.Owners() != 1 || s.Len(15) != 1 {
		t.Fatal("the storage does not work after Clear")
	}
	// Owners never exceed the records: a thousand owners of one record each, all expiring.
	for i := range 1000 {
		mustStoreFrom(t, s, fmt.Sprint("peer-", i), fmt.Sprint("k", i), "", 100+float64(i%10), 15, true)
	}
	if s.Owners() != 1001 {
		t.Fatalf("%d owners for 1001 records", s.Owners())
	}
	s.RemoveOutdated(105)
	if s.Owners() != s.Len(105) || len(s.accounts) != s.Owners() {
		t.Fatalf("%d owners (%d registered) for %d records", s.Owners(), len(s.accounts), s.Len(105))
	}
}

// TestFairLocalStorageDictionaryOwner: a dictionary belongs to the peer that last stored one of its
// subkeys; a refused subkey does not move it; eviction applies to the whole key.
func TestFairLocalStorageDictionaryOwner(t *testing.T) {
	s := NewLocalStorage(LocalStorageConfig{MaxEntries: 6, MaxBytes: -1})
	key := lsKey(1)
	sub := func(i int) []byte { return dictMarshal(t, i) }
	if ok, err := s.StoreSubkeyFrom("A", key, sub(1), []byte("v"), 100, 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := s.StoreSubkeyFrom("B", key, sub(2), []byte("v"), 90, 0); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if s.OwnerUsage("A") != (Cost{}) || s.OwnerUsage("B").Entries != 3 || s.Owners() != 1 {
		t.Fatalf("after B's subkey: A %+v, B %+v", s.OwnerUsage("A"), s.OwnerUsage("B"))
	}
	if e, _ := s.Get(key, 0); e.Expiration != 100 {
		t.Fatalf("outer expiration %v, want 100", e.Expiration)
	}
	// A refused subkey (older than the one held) leaves the key with B.
	if ok, _ := s.StoreSubkeyFrom("C", key, sub(2), []byte("w"), 80, 0); ok {
		t.Fatal("an older subkey was accepted")
	}
	if s.OwnerUsage("B").Entries != 3 || s.OwnerUsage("C") != (Cost{}) {
		t.Fatalf("a refused subkey moved the key: B %+v, C %+v", s.OwnerUsage("B"), s.OwnerUsage("C"))
	}
	// A floods regular records: the bound (6) holds B's dictionary (3) and A's 3 latest.
	for i := range 10 {
		if ok, err := s.StoreFrom("A", lsKey(100+i), []byte("x"), 1000+float64(i), 0); !ok || err != nil {
			t.Fatalf("A's store %d: %v %v", i, ok, err)
		}
	}
	if d, ok := s.Get(key, 0); !ok || d.Dictionary.Len(0) != 2 {
		t.Fatalf("B's dictionary was evicted by A's flood: %+v %v", d, ok)
	}
	if s.OwnerUsage("A").Entries != 3 || s.Usage().Entries != 6 {
		t.Fatalf("A %+v, total %+v", s.OwnerUsage("A"), s.Usage())
	}
	// B grows its dictionary: B, now the largest account, evicts its own earliest record: the
	// dictionary itself, so the subkey is refused and nothing changes.
	if ok, err := s.StoreSubkeyFrom("B", key, sub(3), []byte("v"), 95, 0); ok || !errors.Is(err, ErrStorageFull) {
		t.Fatalf("B's growth beyond its share: %v %v", ok, err)
	}
	if d, _ := s.Get(key, 0); d.Dictionary.Len(0) != 2 || s.OwnerUsage("B").Entries != 3 {
		t.Fatalf("a refused subkey changed the dictionary: %+v", d)
	}
}

func mustStoreFrom[K comparable, V any](t *testing.T, s *TimedStorage[K, V], owner string, key K, value V, exp, now float64, want bool) {
	t.Helper()
	got, err := s.StoreFrom(owner, key, value, exp, now)
	if got != want || (want && err != nil) {
		t.Fatalf("StoreFrom(%q, %v, exp %v, now %v) = %v, %v; want %v", owner, key, exp, now, got, err, want)
	}
}

// storeAs delivers a STORE of items from peer and returns store_ok.
func storeAs(t *testing.T, n *Node, peer PeerID, items []wireItem) []bool {
	t.Helper()
	resp, err := n.HandleStore(t.Context(), peer, storeReq(items...))
	if err != nil {
		t.Fatalf("store from %s: %v", peer, err)
	}
	return resp.GetStoreOk()
}

// TestNearHorizonFloodKeepsHonestRecords: a flood from one peer of records expiring just inside
// the horizon, several times the storage bound, is stored (store_ok true, as in hivemind) but
// evicts only the flooder's own records: the honest peers' records expiring in an hour stay, and
// the storage stays within its bound (hivemind-style eviction pushes every honest record out:
// hostile attack near-horizon-flood).
func TestNearHorizonFloodKeepsHonestRecords(t *testing.T) {
	const bound = 16
	s := newTestSwarm(t, 1, func(_ int, c *Config) { c.MaxStorageEntries = bound })
	n := s.nodes[0]
	now := s.clock.Now()
	value := []byte(mp(t, 1))
	var honest []ID
	for i := range 3 {
		key := HashID(fmt.Appendf(nil, "honest-%d", i))
		honest = append(honest, key)
		if got := storeAs(t, n, PeerID(fmt.Sprint("honest-", i)), []wireItem{{key: key, tag: []byte(TagRegular), value: value, expiration: now + 3600}}); !slices.Equal(got, []bool{true}) {
			t.Fatalf("honest store %d: %v", i, got)
		}
	}
	exp := now + DefaultMaxExpirationHorizon.Seconds() - 60
	var flood []wireItem
	for i := range 4 * bound {
		flood = append(flood, wireItem{key: HashID(fmt.Appendf(nil, "flood-%d", i)), tag: []byte(TagRegular), value: value, expiration: exp + float64(i)})
	}
	for i, ok := range storeAs(t, n, "attacker", flood) {
		if !ok {
			t.Errorf("flood item %d refused: the flooder's own records make room", i)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, key := range honest {
		if !n.storage.Contains(key, now) {
			t.Errorf("honest record %d was evicted by the flood", i)
		}
	}
	if got := n.storage.Len(now); got != bound {
		t.Errorf("the storage holds %d keys, bound %d", got, bound)
	}
	if got := n.storage.OwnerUsage("attacker").Entries; got != bound-len(honest) {
		t.Errorf("the attacker holds %d entries, want %d", got, bound-len(honest))
	}
	for _, it := range flood[len(flood)-(bound-len(honest)):] {
		if !n.storage.Contains(it.key, now) {
			t.Error("the flooder lost a later record rather than its earliest")
		}
	}
}

// TestFairStoragePersistedOwners: records are persisted with the peer that stored them and a node
// loading them charges each to its owner again, so fairness survives a restart; a record persisted
// without an owner goes to the shared account.
func TestFairStoragePersistedOwners(t *testing.T) {
	clock := &fakeClock{now: 1000}
	p := &checkedPersister{t: t}
	net := newLoopNet()
	n := persistNode(t, net, clock, p)
	value := dictMarshal(t, 1)
	k1, k2, dict := HashID([]byte("k1")), HashID([]byte("k2")), HashID([]byte("dict"))
	storeAs(t, n, "peer-a", []wireItem{{key: k1, tag: []byte(TagRegular), value: value, expiration: 2000}})
	storeAs(t, n, "peer-b", []wireItem{{key: k2, tag: []byte(TagRegular), value: value, expiration: 2000}})
	storeAs(t, n, "peer-a", []wireItem{{key: dict, tag: dictMarshal(t, "x"), value: value, expiration: 2000}})
	storeAs(t, n, "peer-b", []wireItem{{key: dict, tag: dictMarshal(t, "y"), value: value, expiration: 2100}})
	for key, want := range map[ID]PeerID{k1: "peer-a", k2: "peer-b", dict: "peer-b"} {
		if r, ok := p.Record(key); !ok || r.Owner != want {
			t.Errorf("persisted %v with owner %q, want %q", key, r.Owner, want)
		}
	}
	_ = p.MemoryPersister.Persist([]PersistedRecord{{Key: HashID([]byte("anon")), Kind: ValueRegular, Value: value, Expiration: 2000}})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	m := persistNode(t, newLoopNet(), clock, p)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := clock.Now()
	if got := m.storage.Len(now); got != 4 {
		t.Fatalf("reloaded %d keys, want 4", got)
	}
	if a, b, l := m.storage.OwnerUsage("peer-a"), m.storage.OwnerUsage("peer-b"), m.storage.OwnerUsage(""); a.Entries != 1 || b.Entries != 4 || l.Entries != 1 {
		t.Errorf("reloaded accounts: peer-a %+v, peer-b %+v (k2 and the dictionary of 2 subkeys), shared %+v", a, b, l)
	}
	if d, ok := m.storage.Get(dict, now); !ok || d.Dictionary.Len(now) != 2 {
		t.Errorf("reloaded dictionary %+v %v", d, ok)
	}
}

// TestCacheIgnoresFoundValuesBeyondTheHorizon: a value a GET found that expires beyond the STORE
// horizon (a regular value, or a dictionary with such a subkey) is not cached; one within it is.
func TestCacheIgnoresFoundValuesBeyondTheHorizon(t *testing.T) {
	s := newTestSwarm(t, 1, func(_ int, c *Config) { c.MaxExpirationHorizon = time.Hour })
	n := s.nodes[0]
	now := s.clock.Now()
	value := []byte(mp(t, "v"))
	dict := func(exps ...float64) []byte { return packedDictionary(t, value, now, exps...) }
	cases := []struct {
		name   string
		it     wireItem
		cached bool
	}{
		{"regular within", wireItem{tag: []byte(TagRegular), value: value, expiration: now + 3000}, true},
		{"regular beyond", wireItem{tag: []byte(TagRegular), value: value, expiration: now + 3700}, false},
		{"regular 1e300", wireItem{tag: []byte(TagRegular), value: value, expiration: 1e300}, false},
		{"dictionary within", wireItem{tag: []byte(TagDictionary), value: dict(now+60, now+3000), expiration: now + 3000}, true},
		// The item's expiration (from the wire) says a minute, one subkey 1e300.
		{"dictionary with a subkey beyond", wireItem{tag: []byte(TagDictionary), value: dict(now+60, 1e300), expiration: now + 60}, false},
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, c := range cases {
		c.it.key = HashID(fmt.Appendf(nil, "found-%d", i))
		n.storeWholeLocked(n.cache, c.it, now)
		if got := n.cache.Contains(c.it.key, now); got != c.cached {
			t.Errorf("%s: cached = %v, want %v", c.name, got, c.cached)
		}
	}
}

// TestFairCacheChargesInboundCacheStores: inbound STOREs for the cache (in_cache) are charged to
// their sender in the cache too.
func TestFairCacheChargesInboundCacheStores(t *testing.T) {
	s := newTestSwarm(t, 1, func(_ int, c *Config) { c.CacheSize = 4 })
	n := s.nodes[0]
	now := s.clock.Now()
	value := []byte(mp(t, 1))
	honest := HashID([]byte("cached-honest"))
	storeAs(t, n, "honest", []wireItem{{key: honest, tag: []byte(TagRegular), value: value, expiration: now + 60, inCache: true}})
	var flood []wireItem
	for i := range 20 {
		flood = append(flood, wireItem{key: HashID(fmt.Appendf(nil, "cf-%d", i)), tag: []byte(TagRegular), value: value, expiration: now + 600 + float64(i), inCache: true})
	}
	storeAs(t, n, "attacker", flood)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.cache.Contains(honest, now) || n.cache.Len(now) != 4 {
		t.Errorf("cache: honest kept %v, %d keys", n.cache.Contains(honest, now), n.cache.Len(now))
	}
}

// BenchmarkLocalStorageStoreFromPeers: a full storage of 100k keys held by 1 or 1000 peers, each
// store evicting a record (fair rule) to make room.
func BenchmarkLocalStorageStoreFromPeers(b *testing.B) {
	for _, peers := range []int{1, 1000} {
		b.Run(fmt.Sprint(peers), func(b *testing.B) {
			const keys = 100_000
			s := NewLocalStorage(LocalStorageConfig{MaxEntries: keys})
			owners := make([]PeerID, peers)
			for i := range owners {
				owners[i] = PeerID(fmt.Sprint("peer-", i))
			}
			ids := make([]ID, 2*keys)
			for i := range ids {
				ids[i] = lsKey(i)
			}
			for i := range keys {
				s.StoreFrom(owners[i%peers], ids[i], []byte("value"), float64(1000+i), 0)
			}
			value := []byte("a regular value of a few dozen bytes, msgpack-encoded")
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; b.Loop(); i++ {
				if ok, err := s.StoreFrom(owners[rng.IntN(peers)], ids[keys+i%keys], value, float64(200_000+i), 0); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// The two policies of a full storage where a hivemind peer sees this node differ from hivemind
// (TimedStorage's documentation), through the wire: STOREs and FINDs of client nodes on a loopNet.
// hivemind's DHTProtocol keeps its records in an unbounded DHTLocalStorage (only its cache has a
// maxsize); the comparison is with hivemind's rule for a bounded one at the same bound, which a
// one-owner TimedStorage reproduces (storage.json, TestFairStorageOneOwnerIsHivemind).

// TestFullStorageKeepsWhatHivemindEvicts: one peer's flood into a full storage evicts that peer's
// own records first. A FIND still returns the honest peer's record, expiring soonest, that
// hivemind's earliest-expiration-first rule would have evicted, and no longer returns the
// flooder's earliest records, which hivemind would have kept.
func TestFullStorageKeepsWhatHivemindEvicts(t *testing.T) {
	const bound = 4
	s := newTestSwarm(t, 1, func(_ int, c *Config) { c.MaxStorageEntries = bound })
	server := s.nodes[0]
	honest := s.add(t, Config{ClientMode: true, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1})
	flooder := s.add(t, Config{ClientMode: true, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1})
	now := s.clock.Now()
	hivemind := NewTimedStorage(TimedStorageConfig[ID, string]{MaxEntries: bound, Compare: ID.Cmp})
	store := func(from *Node, key ID, exp float64) {
		t.Helper()
		oks, err := from.callStore(t.Context(), server.PeerID(), []wireItem{{key: key, tag: []byte(TagRegular), value: []byte{0x01}, expiration: exp}})
		if err != nil || !slices.Equal(oks, []bool{true}) {
			t.Fatalf("store of %x: %v, %v; want store_ok true (as hivemind answers)", key, oks, err)
		}
		if ok, err := hivemind.Store(key, "", exp, now); !ok || err != nil {
			t.Fatalf("hivemind's rule refused %x: %v", key, err)
		}
	}
	found := func(key ID) bool {
		t.Helper()
		answers, err := honest.callFind(t.Context(), server.PeerID(), []ID{key})
		if err != nil {
			t.Fatal(err)
		}
		return answers[0].value != nil
	}

	honestKey := HashID([]byte("honest"))
	store(honest, honestKey, now+100)
	var flood []ID
	for i := range 3 * bound {
		key := HashID(fmt.Appendf(nil, "flood-%d", i))
		flood = append(flood, key)
		store(flooder, key, now+1000+float64(i))
	}
	if hivemind.Contains(honestKey, now) || !found(honestKey) {
		t.Errorf("honest record: hivemind's rule keeps it %v, a FIND finds it %v; want evicted there, found here",
			hivemind.Contains(honestKey, now), found(honestKey))
	}
	if !hivemind.Contains(flood[len(flood)-bound], now) || found(flood[len(flood)-bound]) {
		t.Errorf("the flooder's earliest surviving record under hivemind's rule is found here")
	}
	for _, key := range flood[len(flood)-(bound-1):] {
		if !found(key) {
			t.Errorf("the flooder's latest record %x is not found", key)
		}
	}
}

// TestFullStorageRefusesWhatHivemindDrops: a record that a full storage would evict as soon as it
// is stored (its expiration is the earliest of its owner, the largest account) is refused: the
// STORE answers store_ok false. hivemind's TimedStorage.store answers True and its
// _remove_outdated drops the record at once; either way a FIND does not find it, and the records
// already held stay.
func TestFullStorageRefusesWhatHivemindDrops(t *testing.T) {
	const bound = 4
	s := newTestSwarm(t, 1, func(_ int, c *Config) { c.MaxStorageEntries = bound })
	server := s.nodes[0]
	client := s.add(t, Config{ClientMode: true, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1})
	now := s.clock.Now()
	var items []wireItem
	for i := range bound + 1 {
		// The last item expires before every other one: stored, it would be the next victim.
		exp := now + 1000 + float64(i)
		if i == bound {
			exp = now + 500
		}
		items = append(items, wireItem{key: HashID(fmt.Appendf(nil, "record-%d", i)), tag: []byte(TagRegular), value: []byte{0x01}, expiration: exp})
	}
	oks, err := client.callStore(t.Context(), server.PeerID(), items)
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, true, true, true, false}; !slices.Equal(oks, want) {
		t.Fatalf("store_ok = %v, want %v (hivemind: all true, the last dropped at once)", oks, want)
	}
	keys := make([]ID, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	answers, err := client.callFind(t.Context(), server.PeerID(), keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range answers {
		if (a.value != nil) != (i < bound) {
			t.Errorf("record %d found = %v, want %v", i, a.value != nil, i < bound)
		}
	}
}
