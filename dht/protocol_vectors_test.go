package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/hivemind-go/hivemind/test/vectors"
)

// The `scenarios` of vectors/dht_proto.json: a client DHTProtocol and a server DHTProtocol of
// hivemind wired back to back. Here both sides are real Nodes on a loopNet; every exchange checks
// the request and response bytes, the client call's result, the server's routing-table updates and
// its validating ping-backs, at the recorded DHT time.
//
// The exchanges of a scenario are a recorded sequence (stores, then finds that see them), but a
// relabelled copy of the vectors shuffles them like any list of named cases, so the test searches
// (vectors.Order) for an order in which every exchange replays byte for byte on a fresh server and
// client, then replays that order once more with one subtest per exchange.

type protoScenario struct {
	Server struct {
		NodeID       vectors.HexBytes `json:"node_id_hex"`
		PeerB58      string           `json:"peer_id_b58"`
		BucketSize   int              `json:"bucket_size"`
		CacheMaxsize *int             `json:"cache_maxsize"`
		RoutingTable []struct {
			NodeID vectors.HexBytes `json:"node_id_hex"`
			Peer   vectors.HexBytes `json:"peer_id_hex"`
		} `json:"routing_table"`
		Preloaded []struct {
			Where      string           `json:"where"`
			Key        vectors.HexBytes `json:"key_hex"`
			Subkey     vectors.Value    `json:"subkey"`
			Value      vectors.HexBytes `json:"value_hex"`
			Expiration vectors.Float    `json:"expiration"`
		} `json:"preloaded"`
	} `json:"server"`
	Client struct {
		NodeID     vectors.HexBytes `json:"node_id_hex"` // null in client mode
		ClientMode bool             `json:"client_mode"`
		PeerB58    string           `json:"peer_id_b58"`
	} `json:"client"`
	Exchanges     []protoExchange `json:"exchanges"`
	Quirk         string          `json:"quirk"`
	PortShould    string          `json:"port_should"`
	ExpectedFixed *struct {
		Exchanges []protoExchange `json:"exchanges"`
	} `json:"expected_fixed"`
}

type protoExchange struct {
	Name       string        `json:"name"` // a label: it names the subtest, nothing else
	Now        vectors.Float `json:"now"`
	ClientCall string        `json:"client_call"`
	ClientArgs struct {
		Validate       bool               `json:"validate"`
		Keys           []vectors.HexBytes `json:"keys_hex"`
		Values         []vectors.Value    `json:"values"`
		ExpirationTime []vectors.Float    `json:"expiration_time"`
		Subkeys        []vectors.Value    `json:"subkeys"`
		InCache        []bool             `json:"in_cache"`
	} `json:"client_args"`
	RequestHex     vectors.HexBytes `json:"request_hex"`
	ResponseHex    vectors.HexBytes `json:"response_hex"`
	CallPingResult *struct {
		NodeID vectors.HexBytes `json:"node_id_hex"`
	} `json:"call_ping_result"`
	CallStoreResult []bool `json:"call_store_result"`
	CallFindResult  []struct {
		Key        vectors.HexBytes `json:"key_hex"`
		Found      bool             `json:"found"`
		Value      *vectors.Value   `json:"value"`
		Expiration *vectors.Float   `json:"expiration"`
		Nearest    []struct {
			NodeID  vectors.HexBytes `json:"node_id_hex"`
			PeerB58 string           `json:"peer_id_b58"`
		} `json:"nearest"`
	} `json:"call_find_result"`
	ServerRoutingTableUpdates []struct {
		NodeID    vectors.HexBytes `json:"node_id_hex"` // null: looked up by peer
		PeerB58   string           `json:"peer_id_b58"`
		Responded bool             `json:"responded"`
	} `json:"server_routing_table_updates"`
	ServerPingBacks []struct {
		RequestHex  vectors.HexBytes `json:"request_hex"`
		ResponseHex vectors.HexBytes `json:"response_hex"`
	} `json:"server_ping_backs"`
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// protoOrderBudget bounds the replays vectors.Order may spend on one scenario.
const protoOrderBudget = 5000

func TestProtocolScenarios(t *testing.T) {
	vectors.Run(t, "dht_proto.json", "scenarios", func(t *testing.T, sc protoScenario) {
		exchanges := sc.Exchanges
		fixed, err := vectors.Fixed(sc.PortShould, sc.ExpectedFixed)
		if err != nil {
			t.Fatalf("quirk %q: %v", sc.Quirk, err)
		}
		if fixed != nil {
			// A recorded hivemind bug the port fixes (README's quirk table; today Q2: rpc_store
			// stops at the first rejected subkey of a whole dictionary, where we store every
			// subkey and answer their AND): assert the outcome hivemind gives with the fix.
			exchanges = fixed.Exchanges
		}
		if len(exchanges) == 0 {
			t.Fatal("a scenario without exchanges")
		}
		setup, err := newProtoSetup(sc, exchanges)
		if err != nil {
			t.Fatal(err)
		}
		steps := make([]protoStep, len(exchanges))
		for i, ex := range exchanges {
			if steps[i], err = newProtoStep(ex); err != nil {
				t.Fatalf("exchange %s: %v", ex.Name, err)
			}
		}

		order, err := vectors.Order(len(steps), protoOrderBudget, func(order []int) bool {
			r := setup.start(t)
			defer r.close()
			for _, i := range order {
				if r.exchange(t.Context(), steps[i]) != nil {
					return false
				}
			}
			return true
		})
		if err != nil {
			// Say why: each exchange left over, replayed right after the longest prefix that replays.
			for i := range steps {
				if slices.Contains(order, i) {
					continue
				}
				r := setup.start(t)
				for _, j := range order {
					_ = r.exchange(t.Context(), steps[j])
				}
				t.Errorf("exchange %s after %s: %v", steps[i].name, stepNames(steps, order), r.exchange(t.Context(), steps[i]))
				r.close()
			}
			t.Fatal(err)
		}

		r := setup.start(t)
		t.Cleanup(r.close)
		for _, i := range order {
			t.Run(steps[i].name, func(t *testing.T) {
				if err := r.exchange(t.Context(), steps[i]); err != nil {
					t.Error(err)
				}
			})
		}
	})
}

func stepNames(steps []protoStep, order []int) []string {
	names := make([]string, len(order))
	for i, j := range order {
		names[i] = steps[j].name
	}
	return names
}

// protoSetup is a scenario's server and client, decoded once; start builds a fresh pair.
type protoSetup struct {
	serverCfg, clientCfg   Config
	serverPeer, clientPeer PeerID
	table                  []Contact
	preloaded              []protoPreload
	start0                 float64 // the clock when the preloads were stored
}

type protoPreload struct {
	inCache    bool
	key        ID
	subkey     []byte // nil: a regular value
	value      []byte
	expiration float64
}

func newProtoSetup(sc protoScenario, exchanges []protoExchange) (*protoSetup, error) {
	var s protoSetup
	var err error
	if s.serverPeer, err = peerOfBase58(sc.Server.PeerB58); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.clientPeer, err = peerOfBase58(sc.Client.PeerB58); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	serverID, err := vectorID(sc.Server.NodeID)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.serverCfg = Config{NodeID: serverID, BucketSize: sc.Server.BucketSize, RefreshInterval: -1, Logger: quietLogger()}
	if sc.Server.CacheMaxsize != nil {
		s.serverCfg.CacheSize = *sc.Server.CacheMaxsize
	}
	s.clientCfg = Config{ClientMode: sc.Client.ClientMode, RefreshInterval: -1, Logger: quietLogger()}
	if sc.Client.NodeID != nil {
		if s.clientCfg.NodeID, err = vectorID(sc.Client.NodeID); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	for i, e := range sc.Server.RoutingTable {
		id, err := vectorID(e.NodeID)
		if err != nil {
			return nil, fmt.Errorf("routing table entry %d: %w", i, err)
		}
		s.table = append(s.table, Contact{ID: id, Peer: PeerID(e.Peer)})
	}
	for i, p := range sc.Server.Preloaded {
		pre := protoPreload{value: p.Value, expiration: p.Expiration.Value()}
		switch p.Where {
		case "storage":
		case "cache":
			pre.inCache = true
		default:
			return nil, fmt.Errorf("preloaded %d: where %q, want storage or cache", i, p.Where)
		}
		if pre.key, err = vectorID(p.Key); err != nil {
			return nil, fmt.Errorf("preloaded %d: %w", i, err)
		}
		if p.Subkey.Kind != vectors.KindNil {
			if pre.subkey, err = p.Subkey.Msgpack(); err != nil {
				return nil, fmt.Errorf("preloaded %d subkey: %w", i, err)
			}
		}
		s.preloaded = append(s.preloaded, pre)
	}
	// The preloads were stored before the first exchange: at the earliest recorded time.
	s.start0 = math.Inf(1)
	for _, ex := range exchanges {
		s.start0 = min(s.start0, ex.Now.Value())
	}
	return &s, nil
}

// protoReplay is a fresh server and client on a loopNet.
type protoReplay struct {
	clock          *fakeClock
	net            *loopNet
	server, client *Node
	serverPeer     PeerID
	clientPeer     PeerID
}

// start builds a fresh server (routing table and storage preloaded) and client. A failure here is
// the test's (the setup is the scenario's fields, already read), so it fails the test.
func (s *protoSetup) start(t *testing.T) *protoReplay {
	t.Helper()
	r := &protoReplay{clock: &fakeClock{now: s.start0}, net: newLoopNet(), serverPeer: s.serverPeer, clientPeer: s.clientPeer}
	serverCfg, clientCfg := s.serverCfg, s.clientCfg
	serverCfg.Clock, clientCfg.Clock = r.clock, r.clock
	var err error
	if r.server, err = New(serverCfg, s.serverPeer, r.net.endpoint(s.serverPeer)); err != nil {
		t.Fatalf("server: %v", err)
	}
	r.net.serve(s.serverPeer, r.server)
	if r.client, err = New(clientCfg, s.clientPeer, r.net.endpoint(s.clientPeer)); err != nil {
		_ = r.server.Close()
		t.Fatalf("client: %v", err)
	}
	if !clientCfg.ClientMode {
		r.net.serve(s.clientPeer, r.client)
	}

	r.server.mu.Lock()
	defer r.server.mu.Unlock()
	for _, c := range s.table {
		r.server.table.Add(c.ID, c.Peer, s.start0) // a ping request is ignored, as when the vectors were made
	}
	for _, p := range s.preloaded {
		st := r.server.storage
		if p.inCache {
			st = r.server.cache
		}
		var ok bool
		if p.subkey == nil {
			ok, err = st.Store(p.key, p.value, p.expiration, s.start0)
		} else {
			ok, err = st.StoreSubkey(p.key, p.subkey, p.value, p.expiration, s.start0)
		}
		if !ok || err != nil {
			r.close()
			t.Fatalf("preloading %x: %v %v", p.key, ok, err)
		}
	}
	return r
}

func (r *protoReplay) close() {
	_ = r.client.Close()
	_ = r.server.Close()
}

// protoStep is one exchange, decoded once.
type protoStep struct {
	name string
	now  float64
	// call makes the client call and describes how its result differs from the recorded one.
	call              func(ctx context.Context, client *Node, server PeerID) error
	request, response []byte
	pingBacks         []loopCall // request and response only
	updates           []protoUpdate
}

type protoUpdate struct {
	id        *ID // nil: the node was looked up by its peer
	peer      PeerID
	responded bool
}

func newProtoStep(ex protoExchange) (protoStep, error) {
	st := protoStep{name: ex.Name, now: ex.Now.Value(), request: ex.RequestHex, response: ex.ResponseHex}
	for _, p := range ex.ServerPingBacks {
		st.pingBacks = append(st.pingBacks, loopCall{request: p.RequestHex, response: p.ResponseHex})
	}
	for i, u := range ex.ServerRoutingTableUpdates {
		up := protoUpdate{responded: u.Responded}
		var err error
		if up.peer, err = peerOfBase58(u.PeerB58); err != nil {
			return st, fmt.Errorf("routing-table update %d: %w", i, err)
		}
		if u.NodeID != nil {
			id, err := vectorID(u.NodeID)
			if err != nil {
				return st, fmt.Errorf("routing-table update %d: %w", i, err)
			}
			up.id = &id
		}
		st.updates = append(st.updates, up)
	}
	var err error
	switch ex.ClientCall {
	case "call_ping":
		st.call, err = pingStep(ex)
	case "call_store":
		st.call, err = storeStep(ex)
	case "call_find":
		st.call, err = findStep(ex)
	default:
		err = fmt.Errorf("client_call %q: want call_ping, call_store or call_find", ex.ClientCall)
	}
	return st, err
}

func pingStep(ex protoExchange) (func(context.Context, *Node, PeerID) error, error) {
	validate := ex.ClientArgs.Validate
	var want *ID
	if r := ex.CallPingResult; r != nil {
		id, err := vectorID(r.NodeID)
		if err != nil {
			return nil, fmt.Errorf("call_ping_result: %w", err)
		}
		want = &id
	}
	return func(ctx context.Context, client *Node, server PeerID) error {
		id, err := client.callPing(ctx, server, validate, true)
		switch {
		case want == nil && err == nil:
			return fmt.Errorf("call_ping returned %x, want no answer", id)
		case want != nil && (err != nil || id != *want):
			return fmt.Errorf("call_ping = %x, %v; want %x", id, err, *want)
		}
		return nil
	}, nil
}

func storeStep(ex protoExchange) (func(context.Context, *Node, PeerID) error, error) {
	args := ex.ClientArgs
	n := len(args.Keys)
	if len(args.Values) != n || len(args.ExpirationTime) != n || len(args.Subkeys) != n || len(args.InCache) != n {
		return nil, fmt.Errorf("client_args: %d keys, %d values, %d expirations, %d subkeys, %d in_cache",
			n, len(args.Values), len(args.ExpirationTime), len(args.Subkeys), len(args.InCache))
	}
	// The wire form of each item, as hivemind's call_store builds it: a regular value's bytes, or
	// a dictionary packed at the call's time (entries expired by then left out), under the tag of
	// its subkey.
	type pending struct {
		item wireItem
		dict *DictionaryValue
	}
	items := make([]pending, n)
	for i := range n {
		key, err := vectorID(args.Keys[i])
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		it := pending{item: wireItem{key: key, expiration: args.ExpirationTime[i].Value(), inCache: args.InCache[i]}}
		switch v := args.Values[i]; v.Kind {
		case vectors.KindDictionary:
			if it.dict, err = vectorDictionary(v); err != nil {
				return nil, fmt.Errorf("item %d value: %w", i, err)
			}
			it.item.tag = []byte(TagDictionary)
		case vectors.KindBytes:
			it.item.tag, it.item.value = []byte(TagRegular), v.Bytes
		default:
			return nil, fmt.Errorf("item %d: a store value of kind %s, want bytes or dictionary_dht_value", i, v.Kind)
		}
		if sk := args.Subkeys[i]; sk.Kind != vectors.KindNil {
			if it.item.tag, err = sk.Msgpack(); err != nil {
				return nil, fmt.Errorf("item %d subkey: %w", i, err)
			}
		}
		items[i] = it
	}
	want := ex.CallStoreResult
	return func(ctx context.Context, client *Node, server PeerID) error {
		wire := make([]wireItem, len(items))
		for i, it := range items {
			wire[i] = it.item
			if it.dict != nil {
				wire[i].value = it.dict.Clone().Pack(client.now())
			}
		}
		oks, err := client.callStore(ctx, server, wire)
		switch {
		case want == nil && err == nil:
			return fmt.Errorf("call_store returned %v, want no answer", oks)
		case want != nil && (err != nil || !slices.Equal(oks, want)):
			return fmt.Errorf("call_store = %v, %v; want %v", oks, err, want)
		}
		return nil
	}, nil
}

// protoFound is one key's recorded call_find result.
type protoFound struct {
	key        []byte
	found      bool
	regular    []byte // a found regular value
	dict       []byte // a found dictionary, packed whole
	expiration float64
	nearest    []Contact
}

func findStep(ex protoExchange) (func(context.Context, *Node, PeerID) error, error) {
	keys := make([]ID, len(ex.ClientArgs.Keys))
	for i, k := range ex.ClientArgs.Keys {
		var err error
		if keys[i], err = vectorID(k); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
	}
	var want []protoFound
	if ex.CallFindResult != nil {
		want = make([]protoFound, len(ex.CallFindResult))
	}
	for i, r := range ex.CallFindResult {
		w := protoFound{key: r.Key, found: r.Found}
		if r.Found {
			if r.Value == nil || r.Expiration == nil {
				return nil, fmt.Errorf("result %d: found without a value or an expiration", i)
			}
			w.expiration = r.Expiration.Value()
			switch r.Value.Kind {
			case vectors.KindBytes:
				w.regular = r.Value.Bytes
			case vectors.KindDictionary:
				var err error
				if w.dict, err = r.Value.Msgpack(); err != nil {
					return nil, fmt.Errorf("result %d value: %w", i, err)
				}
			default:
				return nil, fmt.Errorf("result %d: a value of kind %s, want bytes or dictionary_dht_value", i, r.Value.Kind)
			}
		}
		for j, nb := range r.Nearest {
			id, err := vectorID(nb.NodeID)
			if err != nil {
				return nil, fmt.Errorf("result %d neighbour %d: %w", i, j, err)
			}
			peer, err := peerOfBase58(nb.PeerB58)
			if err != nil {
				return nil, fmt.Errorf("result %d neighbour %d: %w", i, j, err)
			}
			w.nearest = append(w.nearest, Contact{ID: id, Peer: peer})
		}
		want[i] = w
	}
	return func(ctx context.Context, client *Node, server PeerID) error {
		answers, err := client.callFind(ctx, server, keys)
		switch {
		case want == nil && err == nil:
			return fmt.Errorf("call_find answered %d keys, want no answer", len(answers))
		case want == nil:
			return nil
		case err != nil || len(answers) != len(want):
			return fmt.Errorf("call_find = %d answers, %v; want %d", len(answers), err, len(want))
		}
		var errs []error
		for i, w := range want {
			if err := w.check(answers[i]); err != nil {
				errs = append(errs, fmt.Errorf("key %x: %w", w.key, err))
			}
		}
		return errors.Join(errs...)
	}, nil
}

// check describes how a call_find answer differs from the recorded one.
func (w protoFound) check(got findAnswer) error {
	var errs []error
	v := got.value
	switch {
	case (v != nil) != w.found:
		errs = append(errs, fmt.Errorf("found = %v, want %v", v != nil, w.found))
	case v == nil:
	case math.Float64bits(v.expiration) != math.Float64bits(w.expiration):
		errs = append(errs, fmt.Errorf("expiration %v, want %v", v.expiration, w.expiration))
	}
	if v != nil && w.found {
		switch {
		case w.dict == nil && (v.dict != nil || !bytes.Equal(v.regular, w.regular)):
			errs = append(errs, fmt.Errorf("value %x (a dictionary: %v), want the regular value %x", v.regular, v.dict != nil, w.regular))
		case w.dict != nil && v.dict == nil:
			errs = append(errs, fmt.Errorf("a regular value %x, want a dictionary", v.regular))
		case w.dict != nil:
			if got := packedWhole(v.dict); !bytes.Equal(got, w.dict) {
				errs = append(errs, fmt.Errorf("dictionary\n got %x\nwant %x", got, w.dict))
			}
		}
	}
	if !slices.Equal(got.nearest, w.nearest) {
		errs = append(errs, fmt.Errorf("neighbours %v, want %v", got.nearest, w.nearest))
	}
	return errors.Join(errs...)
}

// exchange replays one exchange at its recorded time and describes every way it differs from the
// recording (nil when it replays byte for byte).
func (r *protoReplay) exchange(ctx context.Context, st protoStep) error {
	r.clock.Set(st.now)
	r.net.takeCalls()
	r.server.mu.Lock()
	tableBefore := r.server.table.Stats()
	r.server.mu.Unlock()

	var errs []error
	if err := st.call(ctx, r.client, r.serverPeer); err != nil {
		errs = append(errs, err)
	}

	calls := r.net.takeCalls()
	var main *loopCall
	var pingBacks []loopCall
	for i, c := range calls {
		switch {
		case c.from == r.clientPeer && c.to == r.serverPeer && main == nil:
			main = &calls[i]
		case c.from == r.serverPeer && c.to == r.clientPeer && c.kind == rpcPing:
			pingBacks = append(pingBacks, c)
		}
	}
	if main == nil {
		return errors.Join(append(errs, fmt.Errorf("no call from the client to the server (%d calls)", len(calls)))...)
	}
	if !bytes.Equal(main.request, st.request) {
		errs = append(errs, fmt.Errorf("request bytes\n got %x\nwant %x", main.request, st.request))
	}
	if !bytes.Equal(main.response, st.response) {
		errs = append(errs, fmt.Errorf("response bytes\n got %x\nwant %x", main.response, st.response))
	}
	if len(pingBacks) != len(st.pingBacks) {
		errs = append(errs, fmt.Errorf("%d ping-backs, want %d", len(pingBacks), len(st.pingBacks)))
	} else {
		for i, want := range st.pingBacks {
			if got := pingBacks[i]; !bytes.Equal(got.request, want.request) || !bytes.Equal(got.response, want.response) {
				errs = append(errs, fmt.Errorf("ping-back %d\n got %x -> %x\nwant %x -> %x", i, got.request, got.response, want.request, want.response))
			}
		}
	}

	// Routing-table updates: a sender that responded is in the table under its peer, one that did
	// not is not; without updates (a client-mode sender) the table is unchanged.
	r.server.mu.Lock()
	defer r.server.mu.Unlock()
	for _, u := range st.updates {
		var held bool
		if u.id != nil {
			peer, in := r.server.table.PeerByID(*u.id)
			held = in && peer == u.peer
		} else {
			_, held = r.server.table.IDByPeer(u.peer)
		}
		if held != u.responded {
			errs = append(errs, fmt.Errorf("after an update (responded %v) the routing table holds %s: %v", u.responded, fmtPeer(u.peer), held))
		}
	}
	if len(st.updates) == 0 {
		if after := r.server.table.Stats(); after != tableBefore {
			errs = append(errs, fmt.Errorf("routing table changed without an update: %+v -> %+v", tableBefore, after))
		}
	}
	return errors.Join(errs...)
}

// vectorID reads a node ID or key of the vectors (20 bytes).
func vectorID(b []byte) (ID, error) {
	if len(b) != IDLen {
		return ID{}, fmt.Errorf("an ID of %d bytes (%x), want %d", len(b), b, IDLen)
	}
	return IDFromBytes(b)
}

// peerOfBase58 reads a peer ID the vectors give only in base58.
func peerOfBase58(s string) (PeerID, error) {
	b, err := base58.Decode(s)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("peer ID %q is not base58 (%v)", s, err)
	}
	return PeerID(b), nil
}
