package hostile

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/proto/p2pdpb"
	"github.com/hivemind-go/hivemind/test/chaos/report"
)

// attack is one kind of hostile input, tried Runs times against a fresh target.
type attack struct {
	name   string
	proves string
	// heapBound bounds the heap growth the attack may cause (default 256 MiB: generous, -race
	// included; the peak is printed).
	heapBound uint64
	run       func(ctx context.Context, t *testing.T, a *arena) result
}

// result is what an attack's attempts came to.
type result struct {
	runs     int // attempts
	rejected int // attempts that got their clear rejection
	hung     int // attempts the target left hanging past the bound
	notes    []string
}

func TestHostilePeers(t *testing.T) {
	keys := newArenaKeys(t)
	for _, at := range attacks() {
		t.Run(at.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			t.Logf("%s: %s", at.name, at.proves)
			a := newArena(ctx, t, keys)
			if err := a.checkHonest(ctx, "before"); err != nil {
				t.Fatal(err)
			}
			hs := report.StartHeapSampler()
			defer hs.Stop() // also when the attack fails the test
			res := at.run(ctx, t, a)
			peak, growth := hs.Stop()
			if err := a.checkHonest(ctx, "after"); err != nil {
				t.Fatal(err)
			}
			bound := at.heapBound
			if bound == 0 {
				bound = 256 << 20
			}
			row := report.Row{
				Scenario: "hostile/" + at.name, Runs: res.runs, Calls: res.runs + a.honestOps,
				FailedAsExpected: res.rejected, Hung: res.hung, Unclear: res.runs - res.rejected - res.hung,
				PeakMemory: peak, MemoryKind: "heap",
				Notes: strings.Join(append(res.notes, fmt.Sprintf("heap-growth=%.1fMiB", float64(growth)/(1<<20))), " "),
			}
			line, err := report.Record(row)
			t.Log(line)
			if err != nil {
				t.Error(err)
			}
			if !row.OK() {
				t.Errorf("%d of %d attempts without a clear rejection, %d hung", row.Unclear, row.Runs, row.Hung)
			}
			if growth > bound {
				t.Errorf("heap grew by %d MiB under the attack, bound %d MiB", growth>>20, bound>>20)
			}
		})
	}
}

// framed sends each frame on its own stream to handle and counts the streams the target ended
// without a reply (the clear rejection of a bad frame).
func framed(ctx context.Context, t *testing.T, a *arena, handle string, frames [][]byte, closeWrite bool) result {
	var res result
	for _, f := range frames {
		res.runs++
		out, err := a.send(ctx, handle, f, closeWrite)
		switch {
		case err != nil:
			t.Errorf("opening a stream: %v", err)
		case out.timeout:
			res.hung++
		case out.ended && out.reply == nil:
			res.rejected++
		default:
			t.Logf("a bad frame got a reply: %x", out.reply)
		}
	}
	return res
}

// repeat returns n copies of b.
func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func uvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func pack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func now() float64 { return dht.SystemClock{}.Now() }

// storeReq builds a StoreRequest of n regular items from the attacker (client-mode NodeInfo).
func storeReq(keys [][]byte, tags [][]byte, values [][]byte, exps []float64) *dhtpb.StoreRequest {
	return &dhtpb.StoreRequest{
		Keys: keys, Subkeys: tags, Values: values, ExpirationTime: exps,
		InCache: make([]bool, len(keys)), Peer: &dhtpb.NodeInfo{},
	}
}

func keyID(name string) []byte { id := dht.MustKey(name).ID(); return id[:] }

func attacks() []attack {
	return []attack{
		{
			name:   "oversized-length-prefix",
			proves: "a unary frame announcing 1 TiB is refused before anything is allocated: the stream is reset",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				return framed(ctx, t, a, dhtrpc.HandleName(dhtrpc.MethodStore), repeat(uvarint(1<<40), 20), false)
			},
		},
		{
			name:   "length-varint-overflow",
			proves: "a length prefix longer than 64 bits is refused",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				return framed(ctx, t, a, dhtrpc.HandleName(dhtrpc.MethodFind), repeat(bytes.Repeat([]byte{0xff}, 11), 20), false)
			},
		},
		{
			name:   "truncated-frame",
			proves: "a frame cut short (the sender closes mid-body) ends the stream without a reply",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				f := append(uvarint(1000), make([]byte, 100)...)
				return framed(ctx, t, a, dhtrpc.HandleName(dhtrpc.MethodPing), repeat(f, 20), true)
			},
		},
		{
			name:   "garbage-envelope",
			proves: "a frame whose body is not a p2pd envelope is reset",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				f := append(uvarint(16), bytes.Repeat([]byte{0xff}, 16)...)
				return framed(ctx, t, a, dhtrpc.HandleName(dhtrpc.MethodStore), repeat(f, 20), false)
			},
		},
		{
			name:   "malformed-envelopes",
			proves: "envelopes with the wrong arm, a short call ID or a missing required field get no reply",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				name := dhtrpc.HandleName(dhtrpc.MethodPing)
				ping := pack(t, nil)
				frames := [][]byte{
					unaryFrame(t, a.thost.ID(), name, ping, func(e *p2pdpb.PersistentConnectionRequest) {
						e.Message = &p2pdpb.PersistentConnectionRequest_UnaryResponse{UnaryResponse: &p2pdpb.CallUnaryResponse{
							Result: &p2pdpb.CallUnaryResponse_Response{Response: []byte{}},
						}}
					}),
					unaryFrame(t, a.thost.ID(), name, ping, func(e *p2pdpb.PersistentConnectionRequest) { e.CallId = []byte{1, 2, 3} }),
					unaryFrame(t, a.thost.ID(), name, ping, func(e *p2pdpb.PersistentConnectionRequest) { e.GetCallUnary().Data = nil }),
					unaryFrame(t, a.thost.ID(), name, ping, func(e *p2pdpb.PersistentConnectionRequest) { e.GetCallUnary().Proto = nil }),
				}
				return framed(ctx, t, a, name, frames, false)
			},
		},
		{
			name:   "stalled-frame",
			proves: "a peer that stops in the middle of a frame is cut off after the idle timeout (slowloris)",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				// The arena's target uses p2p's default idle timeout (5 min): too long for a test. A
				// second host with a 1 s timeout shows the mechanism.
				return stalled(ctx, t, a)
			},
		},
		{
			name:   "wrong-stream-marker",
			proves: "a stream frame with a marker other than 0x00/0x01 resets that stream only",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				var res result
				for range 20 {
					res.runs++
					got, err := a.streamBytes(ctx, echoStream, append([]byte{0x07}, make([]byte, 8)...))
					switch {
					case errors.Is(err, errDeadline):
						res.hung++
					case len(got) == 0:
						res.rejected++
					default:
						t.Logf("a bad marker got bytes back: %x", got)
					}
				}
				return res
			},
		},
		{
			name:   "invalid-protobuf",
			proves: "a well-framed call whose payload is not the request message gets an error reply",
			run: func(ctx context.Context, t *testing.T, a *arena) result {
				var res result
				for _, m := range dhtrpc.Methods {
					for _, junk := range [][]byte{{0xff, 0xff, 0xff}, {0x12, 0x7f}, {0x0a, 0x05, 0x01}} {
						res.runs++
						text, err := a.callRaw(ctx, m, junk, &dhtpb.PingResponse{})
						if err == nil && text != "" {
							res.rejected++
						} else {
							t.Logf("%s with payload %x: error text %q, err %v", m, junk, text, err)
						}
					}
				}
				return res
			},
		},
		{
			name:   "invalid-msgpack",
			proves: "items whose subkey or dictionary is not msgpack are refused one by one; opaque values are stored as sent (as in hivemind)",
			run:    invalidMsgpack,
		},
		{
			name:   "store-flood-many-keys",
			proves: "a store over MaxRequestItems is an error; a flood of small records never takes the storage over its entry bound",
			run:    floodManyKeys,
		},
		{
			name:      "store-flood-huge-values",
			proves:    "a value over the 4 MiB frame cap resets its stream; 3 MiB values never take the storage over its byte bound; memory stays bounded",
			heapBound: 512 << 20,
			run:       floodHugeValues,
		},
		{
			name:   "expirations",
			proves: "NaN, infinite, past and far-future (beyond dht.Config.MaxExpirationHorizon) expirations are refused; a day ahead is stored",
			run:    expirations,
		},
		{
			name:   "far-future-flood",
			proves: "a flood of records expiring in 1e300 s is refused item by item and does not push an honest record out",
			run:    farFutureFlood,
		},
		{
			name:   "near-horizon-flood",
			proves: "a flood from one peer of records expiring just inside the horizon evicts that peer's own records, not an honest record expiring sooner",
			run:    nearHorizonFlood,
		},
		{
			name:   "forged-signatures",
			proves: "a record under an owner's marker with a forged, missing or foreign signature is refused; the owner's record stays",
			run:    forgedSignatures,
		},
		{
			name:   "ping-flood",
			proves: "a flood of pings and of idle streams: streams over the per-peer limit are refused, honest peers keep being served",
			run:    pingFlood,
		},
		{
			name:   "fake-node-ids",
			proves: "pings claiming many node IDs from one peer: the peer holds at most one routing-table slot, under its latest ID",
			run:    fakeNodeIDs,
		},
		{
			name:   "poisoned-find",
			proves: "a malicious peer answering FIND with unreachable fake nodes: none enters the routing table, lookups still end",
			run:    poisonedFind,
		},
	}
}

// invalidMsgpack stores, per case, an item with a garbage subkey, a garbage dictionary and a
// garbage value; then the honest peer reads its own dictionary the attacker tried to poison.
func invalidMsgpack(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	garbage := []byte{0xc1, 0xc1}
	dictKey := dht.MustKey("honest-dict")
	r, err := a.honest.Store(ctx, dht.StoreItem{Key: dictKey, Subkey: "mine", Value: 1, Expiration: now() + 600})
	if err != nil || !r.Stored {
		t.Fatalf("honest dictionary store: %+v %v", r, err)
	}
	id := dictKey.ID()
	cases := []struct {
		name       string
		tag, value []byte
		refused    bool
	}{
		{name: "garbage subkey", tag: garbage, value: pack(t, 2), refused: true},
		{name: "truncated subkey", tag: []byte{0xa5, 'a'}, value: pack(t, 2), refused: true},
		{name: "garbage dictionary", tag: []byte(dht.TagDictionary), value: garbage, refused: true},
		{name: "dictionary of garbage", tag: []byte(dht.TagDictionary), value: append([]byte{0xd7, 0x50}, make([]byte, 8)...), refused: true},
	}
	for _, c := range cases {
		res.runs++
		var resp dhtpb.StoreResponse
		text, err := a.call(ctx, dhtrpc.MethodStore, storeReq([][]byte{id[:]}, [][]byte{c.tag}, [][]byte{c.value}, []float64{now() + 900}), &resp)
		switch {
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
		case text != "" || (len(resp.GetStoreOk()) == 1 && !resp.GetStoreOk()[0]):
			res.rejected++
		default:
			res.notes = append(res.notes, fmt.Sprintf("%q-accepted", c.name))
		}
	}
	got, err := a.honest.Get(ctx, dictKey, dht.GetOptions{})
	if err != nil || got == nil || !got.IsDictionary {
		t.Errorf("garbage subkeys poisoned the honest dictionary: the honest peer reads it as %+v (err %v)", got, err)
	}
	// An opaque value that is not msgpack: hivemind stores it as it is; so do we. Not counted.
	var resp dhtpb.StoreResponse
	if _, err := a.call(ctx, dhtrpc.MethodStore, storeReq([][]byte{keyID("opaque")}, [][]byte{[]byte(dht.TagRegular)}, [][]byte{garbage}, []float64{now() + 600}), &resp); err == nil {
		res.notes = append(res.notes, fmt.Sprintf("opaque-garbage-value-stored=%v", resp.GetStoreOk()))
	}
	return res
}

// floodManyKeys sends one store over MaxRequestItems, then stores of 4,000 small records until
// twice the storage entry bound was sent.
func floodManyKeys(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	e := now() + 600
	inTenMinutes := func(int) float64 { return e }
	res.runs++
	var resp dhtpb.StoreResponse
	if text, err := a.call(ctx, dhtrpc.MethodStore, floodReq("huge-request", dht.DefaultMaxRequestItems+1, inTenMinutes), &resp); err == nil && text != "" {
		res.rejected++
	} else {
		t.Errorf("a store of %d items: text %q err %v", dht.DefaultMaxRequestItems+1, text, err)
	}
	const batch = 4000
	sent, stored := 0, 0
	for b := 0; sent < 2*targetMaxStorageEntries; b++ {
		stored += a.floodBatch(ctx, t, fmt.Sprintf("flood-%d", b), batch, inTenMinutes)
		sent += batch
	}
	// The flood as a whole is one attempt, turned back when the storage kept within its bound (by
	// refusing or by evicting the earliest expirations).
	st := a.target.Stats()
	res.runs++
	if st.StoredKeys <= targetMaxStorageEntries {
		res.rejected++
	}
	res.notes = append(res.notes, fmt.Sprintf("sent=%d stored=%d bound=%d stored-keys=%d", sent, stored, targetMaxStorageEntries, st.StoredKeys))
	return res
}

// floodHugeValues sends one value over the frame cap, then 3 MiB values (4 streams at a time) until
// three times the storage byte bound was sent.
func floodHugeValues(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	big := bytes.Repeat([]byte{0xab}, 5<<20)
	res.runs++
	var resp dhtpb.StoreResponse
	req := storeReq([][]byte{keyID("too-big")}, [][]byte{[]byte(dht.TagRegular)}, [][]byte{big}, []float64{now() + 600})
	if _, err := a.call(ctx, dhtrpc.MethodStore, req, &resp); err != nil {
		res.rejected++ // no reply: the stream was reset
	}
	value := bytes.Repeat([]byte{0xcd}, 3<<20)
	var (
		mu     sync.Mutex
		stored int
		wg     sync.WaitGroup
		sem    = make(chan struct{}, 4)
		n      = 3 * targetMaxStorageBytes / len(value)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var resp dhtpb.StoreResponse
			req := storeReq([][]byte{keyID(fmt.Sprint("big-", i))}, [][]byte{[]byte(dht.TagRegular)}, [][]byte{value}, []float64{now() + 600})
			text, err := a.call(ctx, dhtrpc.MethodStore, req, &resp)
			if err != nil || text != "" {
				t.Errorf("huge value %d: %q %v", i, text, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if slices.Contains(resp.GetStoreOk(), true) {
				stored++
			}
		})
	}
	wg.Wait()
	// Count the huge values the target still holds: the storage also keeps the honest peer's
	// small record (its eviction is fair between peers, so the flood evicts its own values).
	kept := 0
	for i := range n {
		if a.holds(ctx, t, dht.MustKey(fmt.Sprint("big-", i))) {
			kept++
		}
	}
	res.runs++
	if kept*len(value) <= targetMaxStorageBytes {
		res.rejected++
	}
	res.notes = append(res.notes, fmt.Sprintf("sent=%dx3MiB accepted=%d kept=%d stored-keys=%d bound=%dMiB", n, stored, kept, a.target.Stats().StoredKeys, targetMaxStorageBytes>>20))
	return res
}

// expirations stores items with hostile expirations.
func expirations(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	horizon := dht.DefaultMaxExpirationHorizon.Seconds()
	cases := []struct {
		name    string
		exp     float64
		refused bool
	}{
		{name: "NaN", exp: math.NaN(), refused: true},
		{name: "+Inf", exp: math.Inf(1), refused: true},
		{name: "-Inf", exp: math.Inf(-1), refused: true},
		{name: "past", exp: now() - 10, refused: true},
		{name: "far-future", exp: 1e300, refused: true},
		{name: "beyond-horizon", exp: now() + horizon + 3600, refused: true},
		{name: "a-day", exp: now() + 86400, refused: false},
	}
	for _, c := range cases {
		var resp dhtpb.StoreResponse
		text, err := a.call(ctx, dhtrpc.MethodStore, storeReq([][]byte{keyID("exp-" + c.name)}, [][]byte{[]byte(dht.TagRegular)}, [][]byte{pack(t, 1)}, []float64{c.exp}), &resp)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		refused := text != "" || !slices.Contains(resp.GetStoreOk(), true)
		if !c.refused {
			// An honest expiration, not an attack: it must be stored, and is not counted.
			if refused {
				t.Errorf("%s: an expiration within the horizon was refused (%q %v)", c.name, text, resp.GetStoreOk())
			}
			res.notes = append(res.notes, fmt.Sprintf("%s-stored=%v", c.name, !refused))
			continue
		}
		res.runs++
		if refused {
			res.rejected++
		}
	}
	return res
}

// farFutureFlood: the honest peer stores a record on the target, then the attacker tries to fill
// the target's storage with records that expire in 1e300 s (the earliest expirations are evicted
// first, so records that never expire would push every honest record out). Each batch is an
// attempt, turned back when none of its items is stored; the honest record must stay.
func farFutureFlood(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	key := a.storeHonest(ctx, t, "honest-before-flood")
	const batch = 4000
	accepted := 0
	for b := 0; b*batch < targetMaxStorageEntries+batch; b++ {
		res.runs++
		stored := a.floodBatch(ctx, t, fmt.Sprintf("forever-%d", b), batch, func(int) float64 { return 1e300 })
		accepted += stored
		if stored == 0 {
			res.rejected++
		}
	}
	kept := a.target.Stats().StoredKeys
	if kept > targetMaxStorageEntries {
		t.Errorf("the storage holds %d keys, over its bound %d", kept, targetMaxStorageEntries)
	}
	honestKept := a.holds(ctx, t, key)
	if !honestKept {
		t.Errorf("after %d records expiring in 1e300 s were accepted, the target no longer has an honest record expiring in an hour", accepted)
	}
	res.notes = append(res.notes, fmt.Sprintf("accepted=%d kept=%d bound=%d honest-record-kept=%v", accepted, kept, targetMaxStorageEntries, honestKept))
	return res
}

// nearHorizonFlood: the honest peer stores a record expiring in an hour on the target, then the
// attacker floods the target with records expiring a minute before the horizon (refused by no
// rule), more than its storage holds. The target's eviction is fair between the peers that stored
// its records, so the flood evicts the attacker's own earliest records (hivemind evicts the
// earliest expirations whoever stored them: the honest record would go first). Each batch is an
// attempt to push the honest record out, turned back when the target still holds it, within its
// bound, afterwards.
func nearHorizonFlood(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	key := a.storeHonest(ctx, t, "honest-before-near-horizon-flood")
	const batch = 4000
	exp := now() + dht.DefaultMaxExpirationHorizon.Seconds() - 60
	accepted := 0
	for b := 0; b*batch < targetMaxStorageEntries+2*batch; b++ {
		res.runs++
		accepted += a.floodBatch(ctx, t, fmt.Sprintf("near-horizon-%d", b), batch, func(i int) float64 { return exp + float64(b*batch+i)/1000 })
		kept, held := a.target.Stats().StoredKeys, a.holds(ctx, t, key)
		if kept > targetMaxStorageEntries {
			t.Errorf("after batch %d the storage holds %d keys, over its bound %d", b, kept, targetMaxStorageEntries)
		}
		if held && kept <= targetMaxStorageEntries {
			res.rejected++
		}
	}
	kept := a.target.Stats().StoredKeys
	honestKept := a.holds(ctx, t, key)
	if !honestKept {
		t.Errorf("after %d records expiring just inside the horizon were accepted, the target no longer has an honest record expiring in an hour", accepted)
	}
	if accepted < targetMaxStorageEntries {
		t.Errorf("only %d flood records were accepted: the flood did not fill the storage (bound %d)", accepted, targetMaxStorageEntries)
	}
	res.notes = append(res.notes, fmt.Sprintf("accepted=%d kept=%d bound=%d honest-record-kept=%v", accepted, kept, targetMaxStorageEntries, honestKept))
	return res
}

// storeHonest stores, through the honest peer, a record under name expiring in an hour, and
// checks that the target holds it.
func (a *arena) storeHonest(ctx context.Context, t *testing.T, name string) dht.Key {
	key := dht.MustKey(name)
	r, err := a.honest.Store(ctx, dht.StoreItem{Key: key, Value: "keep me", Expiration: now() + 3600})
	if err != nil || !r.Stored || !a.holds(ctx, t, key) {
		t.Fatalf("honest store did not reach the target: %+v %v", r, err)
	}
	return key
}

// floodReq is a STORE of n one-byte regular records, keys prefix-0 … prefix-(n-1), item i expiring
// at expiration(i).
func floodReq(prefix string, n int, expiration func(i int) float64) *dhtpb.StoreRequest {
	keys, tags, vals, exps := make([][]byte, n), make([][]byte, n), make([][]byte, n), make([]float64, n)
	for i := range n {
		keys[i], tags[i], vals[i], exps[i] = keyID(fmt.Sprintf("%s-%d", prefix, i)), []byte(dht.TagRegular), []byte{0x01}, expiration(i)
	}
	return storeReq(keys, tags, vals, exps)
}

// floodBatch sends the target floodReq(prefix, n, expiration) and returns how many items were stored.
func (a *arena) floodBatch(ctx context.Context, t *testing.T, prefix string, n int, expiration func(i int) float64) int {
	var resp dhtpb.StoreResponse
	if text, err := a.call(ctx, dhtrpc.MethodStore, floodReq(prefix, n, expiration), &resp); err != nil || text != "" {
		t.Fatalf("flood batch %s: %q %v", prefix, text, err)
	}
	if len(resp.GetStoreOk()) != n {
		t.Fatalf("flood batch %s: %d answers for %d items", prefix, len(resp.GetStoreOk()), n)
	}
	stored := 0
	for _, ok := range resp.GetStoreOk() {
		if ok {
			stored++
		}
	}
	return stored
}

// holds asks the target, with a FIND from the attacker, whether it keeps key in its own storage.
func (a *arena) holds(ctx context.Context, t *testing.T, key dht.Key) bool {
	id := key.ID()
	var resp dhtpb.FindResponse
	text, err := a.call(ctx, dhtrpc.MethodFind, &dhtpb.FindRequest{Keys: [][]byte{id[:]}, Peer: &dhtpb.NodeInfo{}}, &resp)
	if err != nil || text != "" || len(resp.GetResults()) != 1 {
		t.Fatalf("find: %q %v", text, err)
	}
	return resp.GetResults()[0].GetType() != dhtpb.ResultType_NOT_FOUND
}

// forgedSignatures: the honest peer stores a record under its owner marker (signed); the attacker
// overwrites it with a later expiration and a forged, a missing and a foreign signature.
func forgedSignatures(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	key := dht.MustKey("owned-record")
	subkey := a.hsigner.OwnerMarker()
	r, err := a.honest.Store(ctx, dht.StoreItem{Key: key, Subkey: subkey, Value: "honest value", Expiration: now() + 600})
	if err != nil || !r.Stored {
		t.Fatalf("owner's store: %+v %v", r, err)
	}
	id := key.ID()
	tag := pack(t, subkey)
	evil := pack(t, "evil value")
	sig := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256))
	for _, value := range [][]byte{
		append(slices.Clone(evil), []byte("[signature:"+sig+"]")...),
		evil,
		append(slices.Clone(evil), []byte("[signature:AAAA]")...),
	} {
		res.runs++
		var resp dhtpb.StoreResponse
		text, err := a.call(ctx, dhtrpc.MethodStore, storeReq([][]byte{id[:]}, [][]byte{tag}, [][]byte{value}, []float64{now() + 900}), &resp)
		if err == nil && (text != "" || !slices.Contains(resp.GetStoreOk(), true)) {
			res.rejected++
		}
	}
	got, err := a.honest.Get(ctx, key, dht.GetOptions{})
	if err != nil || got == nil || len(got.Dictionary) != 1 || !bytes.Equal(got.Dictionary[0].Value, pack(t, "honest value")) {
		t.Errorf("the owner's record after the forgeries: %+v %v", got, err)
	}
	return res
}

// pingFlood opens more idle streams than the per-peer limit allows (held open, no request), then
// sends valid pings from 32 goroutines for a second, checking the honest peer throughout.
func pingFlood(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	const idle = 1500 // over p2p.DefaultMaxStreamsPerPeer (1024)
	var held []interface{ Reset() error }
	refused := 0
	for range idle {
		s, err := a.stream(ctx, dhtrpc.HandleName(dhtrpc.MethodPing))
		if err == nil {
			_, err = s.Write([]byte{0x05}) // a frame that never completes: the handler waits
		}
		if err != nil {
			refused++
			continue
		}
		held = append(held, s)
	}
	for _, s := range held {
		_ = s.Reset()
	}
	res.runs++
	if refused > 0 { // held = idle - refused: at most 1024 held means some were refused
		res.rejected++
	}
	res.notes = append(res.notes, fmt.Sprintf("idle-streams=%d refused-at-open=%d", idle, refused))
	if err := a.checkHonest(ctx, "idle-flood"); err != nil {
		t.Error(err)
	}

	var pings, failed atomic.Int64
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	req, err := proto.Marshal(&dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{}})
	if err != nil {
		t.Fatal(err)
	}
	for range 32 {
		wg.Go(func() {
			for fctx.Err() == nil {
				pings.Add(1)
				if _, err := a.callRaw(fctx, dhtrpc.MethodPing, req, &dhtpb.PingResponse{}); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	if err := a.checkHonest(ctx, "ping-flood"); err != nil {
		t.Error(err)
	}
	wg.Wait()
	res.notes = append(res.notes, fmt.Sprintf("flood-pings=%d/s failed=%d", pings.Load(), failed.Load()))
	return res
}

// fakeNodeIDs pings the target 500 times, each claiming another random node ID, then reads the
// target's routing table: through its stats, and through a FIND that lists every node it holds
// (the table is far below BucketSize). The attacker's peer may hold one entry, under the latest
// ID, or none: the target hands records to a node new to its table, the attacker serves no DHT
// handler, and a peer that fails a STORE is evicted.
func fakeNodeIDs(ctx context.Context, t *testing.T, a *arena) result {
	var res result
	before := a.target.Stats().RoutingTable
	var last dht.ID
	for range 500 {
		last = dht.RandomID()
		var resp dhtpb.PingResponse
		if _, err := a.call(ctx, dhtrpc.MethodPing, &dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{NodeId: last.Bytes()}}, &resp); err != nil {
			t.Fatalf("ping: %v", err)
		}
	}
	after := a.target.Stats().RoutingTable
	var find dhtpb.FindResponse
	text, err := a.call(ctx, dhtrpc.MethodFind, &dhtpb.FindRequest{Keys: [][]byte{last.Bytes()}, Peer: &dhtpb.NodeInfo{}}, &find)
	if err != nil || text != "" || len(find.GetResults()) != 1 {
		t.Fatalf("find: %q %v", text, err)
	}
	attacker := string(dhtrpc.PeerIDFromP2P(a.attacker.ID()))
	var held []dht.ID
	r := find.GetResults()[0]
	for i, p := range r.GetNearestPeerIds() {
		if string(p) == attacker && i < len(r.GetNearestNodeIds()) {
			id, err := dht.IDFromBytes(r.GetNearestNodeIds()[i])
			if err != nil {
				t.Fatalf("find listed a malformed node ID: %v", err)
			}
			held = append(held, id)
		}
	}
	res.runs++
	switch {
	case len(held) > 1 || after.NodeIDs-before.NodeIDs > 1:
		t.Errorf("after 500 pings from one peer under random node IDs the target lists %d node IDs for it; its table maps %d node IDs to %d peers (was %d to %d)",
			len(held), after.NodeIDs, after.PeerIDs, before.NodeIDs, before.PeerIDs)
	case len(held) == 1 && held[0] != last:
		t.Errorf("the attacker's peer is held under %v, not under its latest ID %v", held[0], last)
	default:
		res.rejected++
	}
	res.notes = append(res.notes, fmt.Sprintf("attacker-node-ids=%d table-node-ids=%d peers=%d", len(held), after.NodeIDs, after.PeerIDs))
	return res
}
