package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/test/chaos/report"
	"github.com/hivemind-go/hivemind/test/jitterlink"
	"github.com/hivemind-go/hivemind/test/rpclog"
	ma "github.com/multiformats/go-multiaddr"
)

// freshReplicas is the replication of the fresh-clients scenario: the swarm (4 workers and the
// gateway) has exactly as many nodes. The newcomer stores at the freshReplicas nodes nearest to the
// key among the swarm and itself (its own copy counts, as in hivemind's store_many), so one node
// left over takes the place of a missed one: a store is short when any of those nearest did not
// accept it (freshResult.missed), not only when fewer than freshReplicas did.
const freshReplicas = 5

// freshRPCTimeout bounds each RPC of a fresh client: a liveness margin for a loaded machine under
// -race. The failure the scenario is about comes at once, not at a deadline.
const freshRPCTimeout = 10 * time.Second

// TestFreshClients is issue 13's one-shot store against a supervised swarm: fresh client-mode nodes
// (a new host each time, as `supervisor store --initial-peers <one node>` makes) join through one
// gateway node over a jittery link, store at once with 5 replicas and get with Latest. rpc_find
// answers name the workers by peer ID alone, so each newcomer's first lookups resolve them through
// peer routing while its host may still be admitting the gateway to the kad DHT. A store short of
// its replicas, a get that finds nothing and a record the workers cannot return afterwards count as
// lost. Rounds: 24, or 200 with HIVEMIND_LONG=1.
func TestFreshClients(t *testing.T) {
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rounds := 24
	if long() {
		rounds = 200
	}
	sw := startSwarm(ctx, t, swarmConfig{Workers: 4, DHT: ipc.DHTParams{NumReplicas: freshReplicas}})
	gw := startGateway(ctx, t, sw, s)
	tl, led := newTally(), &ledger{}
	var (
		mu            sync.Mutex
		short, missed int
		examples      []string // the first short stores and missed gets
		wg            sync.WaitGroup
		sem           = make(chan struct{}, 2) // two newcomers at a time
		runID         = newRunID()
		storeDeadline = 4 * freshRPCTimeout // bootstrap, a lookup, then the stores
		getDeadline   = 4 * freshRPCTimeout
	)
	for i := range rounds {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := dht.MustKey(fmt.Sprintf("fresh-%s-%d", runID, i))
			r := gw.freshRound(ctx, key, i, storeDeadline, getDeadline)
			tl.note("fresh Store", r.storeErr, r.storeTook, storeDeadline)
			if r.storeErr != nil {
				return
			}
			tl.note("fresh Get", r.getErr, r.getTook, getDeadline)
			if r.accepted > 0 {
				led.add(record{key: key, value: mustPack(i), how: fmt.Sprintf("fresh client %d (%d replicas)", i, r.accepted)})
			}
			mu.Lock()
			defer mu.Unlock()
			if r.missed > 0 {
				short++
				examples = append(examples, fmt.Sprintf("round %d: %d of the %d nearest nodes missed (%d replicas); failed finds: %v",
					i, r.missed, freshReplicas, r.accepted, r.failures))
			}
			if r.getErr == nil && !r.found {
				missed++
				examples = append(examples, fmt.Sprintf("round %d: the get found nothing", i))
			}
		})
	}
	wg.Wait()
	v := verifyRecords(ctx, sw, led.all(), rand.New(rand.NewPCG(s, 21)), 3, tl)

	c := tl.snapshot()
	row := report.Row{
		Scenario:         "chaos/fresh-clients",
		Runs:             rounds,
		Calls:            c.calls,
		FailedAsExpected: c.typed,
		Hung:             c.hung,
		Unclear:          c.untyped,
		Lost:             short + missed + v.Lost,
		Restarts:         sw.restarts(),
		PeakMemory:       sw.mem.peakRSS(),
		MemoryKind:       "rss",
		Notes: fmt.Sprintf("seed=%d swarm=%d replicas=%d short-stores=%d missed-gets=%d unreadable=%d %s",
			s, sw.pool.Len()+1, freshReplicas, short, missed, v.Lost, tl.sentinelSummary()),
	}
	recordRow(t, row)
	for _, ex := range append(examples[:min(len(examples), 5)], c.examples...) {
		t.Log(ex)
	}
	if !row.OK() {
		t.Errorf("hung=%d unclear=%d lost=%d (short stores %d, missed gets %d, unreadable %q), all must be 0",
			row.Hung, row.Unclear, row.Lost, short, missed, v.LostKeys)
	}
}

// gateway is an in-process DHT node of the swarm that newcomers bootstrap from, reached through a
// jittery link.
type gateway struct {
	node   *dhtrpc.Node
	peer   dht.PeerID
	linkMA string   // the gateway behind the link, as newcomers dial it
	swarm  []dht.ID // the node IDs of the swarm: the workers and the gateway
}

// startGateway joins a DHT node (kad server, TCP and QUIC) to the swarm's workers and puts a
// jitterlink.Link (seeded) in front of its QUIC address.
func startGateway(ctx context.Context, t *testing.T, sw *swarm, seed uint64) *gateway {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	var maddrs []string
	var peers []dht.PeerID
	for _, st := range sw.pool.Status().Slots {
		maddrs = append(maddrs, st.Maddrs...)
		id, err := p2p.ParsePeerID(st.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, dhtrpc.PeerIDFromP2P(id))
	}
	host, err := p2p.New(ctx, p2p.Config{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, InitialPeers: maddrs, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = host.Close() })
	node, err := dhtrpc.NewNode(ctx, host, dht.Config{NumReplicas: freshReplicas, InitialPeers: peers, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	swarmIDs := []dht.ID{node.NodeID()}
	for _, c := range node.RoutingTablePeers() {
		swarmIDs = append(swarmIDs, c.ID)
	}
	if len(swarmIDs) != len(peers)+1 {
		t.Fatalf("the gateway's routing table holds %d nodes, want the %d workers", len(swarmIDs)-1, len(peers))
	}
	var quic *net.UDPAddr
	for _, a := range host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err != nil {
			continue
		}
		port, _ := a.ValueForProtocol(ma.P_UDP)
		if quic, err = net.ResolveUDPAddr("udp", "127.0.0.1:"+port); err != nil {
			t.Fatal(err)
		}
	}
	if quic == nil {
		t.Fatalf("gateway has no QUIC address: %v", host.Addrs())
	}
	link, err := jitterlink.New(quic, 100*time.Millisecond, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(link.Close)
	return &gateway{
		node:   node,
		peer:   dhtrpc.PeerIDFromP2P(host.ID()),
		linkMA: fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1/p2p/%s", link.Port(), host.ID()),
		swarm:  swarmIDs,
	}
}

// freshResult is what one newcomer saw.
type freshResult struct {
	accepted           int
	missed             int // of the freshReplicas nodes nearest to the key (the newcomer included), those that did not accept
	found              bool
	storeErr, getErr   error
	storeTook, getTook time.Duration
	failures           []error // the newcomer's failed rpc_find calls
}

// freshRound starts a newcomer bootstrapped from the gateway alone, stores value under key with freshReplicas
// replicas at once, reads it back with Latest, and closes the newcomer.
func (g *gateway) freshRound(ctx context.Context, key dht.Key, value int, storeDeadline, getDeadline time.Duration) freshResult {
	discard := slog.New(slog.DiscardHandler)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, storeDeadline)
	defer cancel()
	fail := func(err error) freshResult { return freshResult{storeErr: err, storeTook: time.Since(start)} }
	host, err := p2p.New(sctx, p2p.Config{
		ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, DHTMode: p2p.DHTModeClient,
		InitialPeers: []string{g.linkMA}, Logger: discard,
	})
	if err != nil {
		return fail(fmt.Errorf("%w: newcomer host: %w", dht.ErrBootstrapFailed, err))
	}
	defer func() { _ = host.Close() }()
	failures := &rpclog.Finds{}
	node, err := dhtrpc.NewNodeWith(sctx, host, dht.Config{
		ClientMode: true, NumReplicas: freshReplicas, InitialPeers: []dht.PeerID{g.peer},
		WaitTimeout: freshRPCTimeout, Logger: discard,
	}, dhtrpc.NodeOptions{WrapTransport: func(tr dht.Transport) dht.Transport { return failures.Wrap(tr) }})
	if err != nil {
		return fail(err)
	}
	defer func() { _ = node.Close() }()
	res, err := node.Store(sctx, dht.StoreItem{Key: key, Value: value, Expiration: exp()})
	r := freshResult{storeErr: err, storeTook: time.Since(start)}
	if err != nil {
		return r
	}
	r.accepted = res.Accepted()
	r.missed = g.missedReplicas(key, node.NodeID(), res)
	gctx, gcancel := context.WithTimeout(ctx, getDeadline)
	defer gcancel()
	start = time.Now()
	got, err := node.Get(gctx, key, dht.GetOptions{Latest: true})
	r.getErr, r.getTook = err, time.Since(start)
	r.found = err == nil && got != nil && string(got.Value) == string(mustPack(value))
	r.failures = failures.Errors()
	return r
}

// missedReplicas counts the freshReplicas nodes nearest to key among the swarm and the newcomer
// self that did not accept res's item.
func (g *gateway) missedReplicas(key dht.Key, self dht.ID, res dht.StoreResult) int {
	id := key.ID()
	nearest := append(slices.Clone(g.swarm), self)
	slices.SortFunc(nearest, func(a, b dht.ID) int { return a.Xor(id).Cmp(b.Xor(id)) })
	missed := 0
	for _, n := range nearest[:min(freshReplicas, len(nearest))] {
		if !slices.ContainsFunc(res.Replicas, func(r dht.ReplicaResult) bool { return r.Node == n && r.Accepted }) {
			missed++
		}
	}
	return missed
}

// TestMissedReplicas: a store that reached freshReplicas nodes but not the nearest ones (a node
// left over took a missed one's place) is short; one that reached the nearest ones is not.
func TestMissedReplicas(t *testing.T) {
	key := dht.MustKey("missed-replicas")
	var all []dht.ID
	for i := range freshReplicas + 1 {
		all = append(all, dht.HashID([]byte{byte(i)}))
	}
	slices.SortFunc(all, func(a, b dht.ID) int { return a.Xor(key.ID()).Cmp(b.Xor(key.ID())) })
	accepted := func(ids ...dht.ID) dht.StoreResult {
		var res dht.StoreResult
		for _, id := range ids {
			res.Replicas = append(res.Replicas, dht.ReplicaResult{Node: id, Accepted: true})
		}
		return res
	}
	self := all[2]
	g := &gateway{swarm: slices.DeleteFunc(slices.Clone(all), func(id dht.ID) bool { return id == self })}
	tests := []struct {
		name string
		res  dht.StoreResult
		want int
	}{
		{name: "the nearest, the newcomer's copy among them", res: accepted(all[:freshReplicas]...), want: 0},
		{name: "the farthest took the place of one", res: accepted(append(slices.Clone(all[1:freshReplicas]), all[freshReplicas])...), want: 1},
		{name: "one refused", res: func() dht.StoreResult {
			r := accepted(all[:freshReplicas]...)
			r.Replicas[3].Accepted = false
			return r
		}(), want: 1},
		{name: "nothing stored", want: freshReplicas},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := g.missedReplicas(key, self, tc.res); got != tc.want {
				t.Errorf("missed %d, want %d", got, tc.want)
			}
		})
	}
}
