package dht

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// checkedPersister wraps a MemoryPersister: it yields to the scheduler inside Persist (so a write
// that is not ordered with its mutation gets overtaken), fails the test when two Persist calls
// overlap, and can be made to fail.
type checkedPersister struct {
	MemoryPersister
	t        testing.TB
	inFlight atomic.Int32
	fail     atomic.Bool
	loadErr  error
	extra    []PersistedRecord // yielded by Load after the stored records
}

func (p *checkedPersister) Persist(records []PersistedRecord) error {
	if p.inFlight.Add(1) != 1 {
		p.t.Error("Persist calls overlap")
	}
	defer p.inFlight.Add(-1)
	for range rand.IntN(3) {
		runtime.Gosched()
	}
	if p.fail.Load() {
		return errors.New("disk on fire")
	}
	return p.MemoryPersister.Persist(records)
}

func (p *checkedPersister) Load(fn func(PersistedRecord)) error {
	if p.loadErr != nil {
		return p.loadErr
	}
	if err := p.MemoryPersister.Load(fn); err != nil {
		return err
	}
	for _, r := range p.extra {
		fn(r)
	}
	return nil
}

// storeReq builds an inbound STORE.
func storeReq(items ...wireItem) *dhtpb.StoreRequest {
	req := &dhtpb.StoreRequest{Peer: &dhtpb.NodeInfo{}}
	for _, it := range items {
		req.Keys = append(req.Keys, it.key.Bytes())
		req.Subkeys = append(req.Subkeys, it.tag)
		req.Values = append(req.Values, it.value)
		req.ExpirationTime = append(req.ExpirationTime, it.expiration)
		req.InCache = append(req.InCache, it.inCache)
	}
	return req
}

// persistNode starts a lone node on net with persister p.
func persistNode(t testing.TB, net *loopNet, clock Clock, p Persister) *Node {
	t.Helper()
	n, err := New(Config{Clock: clock, Logger: quietLogger(), RefreshInterval: -1, Persister: p}, "lone", net.endpoint("lone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// TestPersistReplicaAndReload: a replica another node stores (rpc_store) is persisted with the
// key's whole state; a node built later on the same Persister serves it without a single call.
func TestPersistReplicaAndReload(t *testing.T) {
	p := &checkedPersister{t: t}
	s := newTestSwarm(t, 3, func(i int, cfg *Config) {
		if i == 2 {
			cfg.Persister = p
		}
	})
	ctx := t.Context()
	now := s.clock.Now()
	if r, err := s.nodes[0].Store(ctx, StoreItem{Key: MustKey("plain"), Value: "v1", Expiration: now + 100}); err != nil || !r.Stored {
		t.Fatal(r, err)
	}
	for i, sub := range []string{"a", "b"} {
		if r, err := s.nodes[1].Store(ctx, StoreItem{Key: MustKey("dict"), Subkey: sub, Value: i, Expiration: now + 50 + float64(i)}); err != nil || !r.Stored {
			t.Fatal(r, err)
		}
	}
	plain, ok := p.Record(MustKey("plain").ID())
	if !ok || plain.Kind != ValueRegular || !bytes.Equal(plain.Value, dictMarshal(t, "v1")) || plain.Expiration != now+100 {
		t.Fatalf("persisted plain record: %+v, %v", plain, ok)
	}
	dict, ok := p.Record(MustKey("dict").ID())
	if !ok || dict.Kind != ValueDictionary || dict.Expiration != now+51 {
		t.Fatalf("persisted dictionary: %+v, %v", dict, ok)
	}
	d, err := UnpackDictionary(dict.Value)
	if err != nil || len(d.Items(now)) != 2 {
		t.Fatalf("persisted dictionary holds %v (%v), want both subkeys", d, err)
	}

	// "Restart": a new node on a network where nobody else lives, a minute later.
	s.clock.Set(now + 60)
	net := newLoopNet()
	n := persistNode(t, net, s.clock, p)
	if got := n.Stats().StoredKeys; got != 1 {
		t.Errorf("StoredKeys = %d after the reload, want 1 (the dictionary expired)", got)
	}
	resp, err := n.HandleFind(ctx, "asker", &dhtpb.FindRequest{
		Keys: [][]byte{MustKey("plain").ID().Bytes(), MustKey("dict").ID().Bytes()}, Peer: &dhtpb.NodeInfo{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results[0]; r.Type != dhtpb.ResultType_FOUND_REGULAR || !bytes.Equal(r.Value, dictMarshal(t, "v1")) || r.ExpirationTime != now+100 {
		t.Errorf("plain after the reload: %v", r)
	}
	if r := resp.Results[1]; r.Type != dhtpb.ResultType_NOT_FOUND {
		t.Errorf("an expired record is not loaded, got %v", r)
	}
	if calls := net.takeCalls(); len(calls) != 0 {
		t.Errorf("loading made %d calls", len(calls))
	}
}

// TestPersistWrites: which inbound items reach the Persister, in how many writes.
func TestPersistWrites(t *testing.T) {
	clock := &fakeClock{now: 1000}
	p := &checkedPersister{t: t}
	n := persistNode(t, newLoopNet(), clock, p)
	ctx := t.Context()
	key, cached := HashID([]byte("k")), HashID([]byte("c"))
	regular := func(k ID, v any, exp float64) wireItem {
		return wireItem{key: k, tag: []byte(TagRegular), value: dictMarshal(t, v), expiration: exp}
	}
	handle := func(items ...wireItem) []bool {
		t.Helper()
		resp, err := n.HandleStore(ctx, "peer", storeReq(items...))
		if err != nil {
			t.Fatal(err)
		}
		return resp.StoreOk
	}

	cacheItem := regular(cached, "cache", 2000)
	cacheItem.inCache = true
	if ok := handle(regular(key, "one", 1200), regular(key, "two", 1300), cacheItem); !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("answers %v", ok)
	}
	if p.Writes() != 1 || p.Len() != 1 {
		t.Fatalf("one request, one write of one key: %d writes, %d records", p.Writes(), p.Len())
	}
	if r, _ := p.Record(key); !bytes.Equal(r.Value, dictMarshal(t, "two")) || r.Expiration != 1300 {
		t.Errorf("the key's last state is persisted, got %+v", r)
	}
	if _, ok := p.Record(cached); ok {
		t.Error("the cache is persisted")
	}

	// Refused items (older, expired, invalid) change nothing and write nothing.
	if ok := handle(regular(key, "older", 1250), regular(key, "past", 900),
		wireItem{key: key, tag: []byte(TagDictionary), value: []byte{0xc1}, expiration: 1400}); ok[0] || ok[1] || ok[2] {
		t.Fatalf("answers %v, want all refused", ok)
	}
	if r, _ := p.Record(key); p.Writes() != 1 || !bytes.Equal(r.Value, dictMarshal(t, "two")) {
		t.Errorf("a refused store wrote: %d writes, record %+v", p.Writes(), r)
	}

	// The node's own replica (StoreMany) is persisted too.
	if r, err := n.Store(ctx, StoreItem{Key: MustKey("own"), Value: 7, Expiration: 1500}); err != nil || !r.Stored {
		t.Fatal(r, err)
	}
	if r, ok := p.Record(MustKey("own").ID()); !ok || !bytes.Equal(r.Value, dictMarshal(t, 7)) {
		t.Errorf("own replica: %+v, %v", r, ok)
	}

	// A failing Persister: storage items are answered false (the cache needs no disk).
	p.fail.Store(true)
	cacheItem.expiration = 2100
	if ok := handle(regular(key, "three", 1600), cacheItem); ok[0] || !ok[1] {
		t.Errorf("answers %v with a failing Persister, want [false true]", ok)
	}
	if r, err := n.Store(ctx, StoreItem{Key: MustKey("own"), Value: 8, Expiration: 1700}); err != nil || r.Stored {
		t.Errorf("own replica with a failing Persister: %+v, %v", r, err)
	}
}

// TestPersistSubkeysOfOneRequest: the subkeys of one dictionary sent in one STORE, interleaved with
// another key's items and a refused one, reach the Persister as one write holding each key's final
// state (the dictionary is packed once for the request, not once per subkey).
func TestPersistSubkeysOfOneRequest(t *testing.T) {
	clock := &fakeClock{now: 1000}
	p := &checkedPersister{t: t}
	n := persistNode(t, newLoopNet(), clock, p)
	dict, plain := HashID([]byte("dict")), HashID([]byte("plain"))
	var items []wireItem
	for i := range 50 {
		items = append(items,
			wireItem{key: dict, tag: dictMarshal(t, i), value: dictMarshal(t, i), expiration: 2000 + float64(i)},
			wireItem{key: plain, tag: []byte(TagRegular), value: dictMarshal(t, i), expiration: 1500 + float64(i)})
	}
	items = append(items, wireItem{key: dict, tag: dictMarshal(t, 0), value: dictMarshal(t, "older"), expiration: 1900})
	got := storeAs(t, n, "peer", items)
	if want := append(slices.Repeat([]bool{true}, 100), false); !slices.Equal(got, want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
	if p.Writes() != 1 || p.Len() != 2 {
		t.Fatalf("one request, one write of two keys: %d writes, %d records", p.Writes(), p.Len())
	}
	if r, _ := p.Record(plain); !bytes.Equal(r.Value, dictMarshal(t, 49)) || r.Expiration != 1549 {
		t.Errorf("the regular key's last state is persisted, got %+v", r)
	}
	r, _ := p.Record(dict)
	d, err := UnpackDictionary(r.Value)
	if err != nil || len(d.Items(clock.Now())) != 50 || r.Expiration != 2049 || r.Owner != "peer" {
		t.Errorf("persisted dictionary %+v (%v), want its 50 subkeys", r, err)
	}
}

// TestPersistConcurrentStores: stores racing on one key (regular values with shuffled expirations,
// and subkeys of one dictionary) end with the newest state persisted; Persist calls never overlap.
func TestPersistConcurrentStores(t *testing.T) {
	clock := &fakeClock{now: 1000}
	p := &checkedPersister{t: t}
	n := persistNode(t, newLoopNet(), clock, p)
	ctx := t.Context()
	regular, dict := HashID([]byte("regular")), HashID([]byte("dict"))
	const writers = 64
	exps := rand.Perm(writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			exp := 2000 + float64(exps[i])
			items := []wireItem{
				{key: regular, tag: []byte(TagRegular), value: dictMarshal(t, exps[i]), expiration: exp},
				{key: dict, tag: dictMarshal(t, i), value: dictMarshal(t, i), expiration: exp},
			}
			if _, err := n.HandleStore(ctx, PeerID(fmt.Sprint("peer-", i)), storeReq(items...)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	now := clock.Now()
	n.mu.Lock()
	want := []PersistedRecord{}
	for _, k := range []ID{regular, dict} {
		r, ok := n.storage.persisted(k, now)
		if !ok {
			t.Fatalf("key %v not stored", k)
		}
		want = append(want, r)
	}
	n.mu.Unlock()
	if want[0].Expiration != 2000+writers-1 || !bytes.Equal(want[0].Value, dictMarshal(t, writers-1)) {
		t.Fatalf("storage holds %+v, want the newest value", want[0])
	}
	for _, w := range want {
		got, _ := p.Record(w.Key)
		if got.Kind != w.Kind || got.Expiration != w.Expiration || !bytes.Equal(got.Value, w.Value) {
			t.Errorf("persisted %+v, the storage holds %+v", got, w)
		}
	}
	d, err := UnpackDictionary(want[1].Value)
	if err != nil || len(d.Items(now)) != writers {
		t.Errorf("the persisted dictionary holds %d subkeys (%v), want %d", len(d.Items(now)), err, writers)
	}
}

// TestPersistLoad: loading skips expired and unusable records and applies the storage bounds; a
// Load error fails New.
func TestPersistLoad(t *testing.T) {
	clock := &fakeClock{now: 1000}
	p := &checkedPersister{t: t, extra: []PersistedRecord{
		{Key: HashID([]byte("bad dict")), Kind: ValueDictionary, Value: []byte{0xc1}, Expiration: 2000},
		{Key: HashID([]byte("bad kind")), Kind: 9, Value: dictMarshal(t, 1), Expiration: 2000},
	}}
	for i := range 10 {
		_ = p.MemoryPersister.Persist([]PersistedRecord{{
			Key: HashID(fmt.Appendf(nil, "k%d", i)), Kind: ValueRegular, Value: dictMarshal(t, i), Expiration: 995 + float64(i),
		}})
	}
	n, err := New(Config{Clock: clock, Logger: quietLogger(), RefreshInterval: -1, Persister: p, MaxStorageEntries: 3},
		"lone", newLoopNet().endpoint("lone"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if got := n.Stats().StoredKeys; got != 3 {
		t.Errorf("StoredKeys = %d, want 3 (5 expired, 2 evicted by the bound, 2 unusable)", got)
	}
	n.mu.Lock()
	_, latest := n.storage.Get(HashID([]byte("k9")), clock.Now())
	n.mu.Unlock()
	if !latest {
		t.Error("the latest record was evicted")
	}

	p.loadErr = errors.New("unreadable")
	if _, err := New(Config{Logger: quietLogger(), Persister: p}, "lone", newLoopNet().endpoint("lone")); !errors.Is(err, p.loadErr) {
		t.Errorf("New with a failing Load: %v", err)
	}
}

// BenchmarkHandleStoreDictionaryPersisted: one inbound STORE of 5,000 subkeys of one dictionary on
// a node with a Persister (the dictionary is packed and persisted once per request; it was once
// per subkey, quadratic under the node's lock).
func BenchmarkHandleStoreDictionaryPersisted(b *testing.B) {
	const subkeys = 5000
	clock := &fakeClock{now: 1000}
	n := persistNode(b, newLoopNet(), clock, &MemoryPersister{})
	items := make([]wireItem, subkeys)
	for b.Loop() {
		b.StopTimer()
		now := clock.Now() + 1 // each round's subkeys are newer than the last round's
		clock.Set(now)
		for i := range items {
			items[i] = wireItem{key: HashID([]byte("dict")), tag: dictMarshal(b, i), value: dictMarshal(b, i), expiration: now + 600}
		}
		req := storeReq(items...)
		b.StartTimer()
		if _, err := n.HandleStore(b.Context(), "peer", req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/subkeys, "µs/subkey")
}
