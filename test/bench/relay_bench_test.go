package bench

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
)

// getPair is a server node holding a record and a client-mode getter (serverConfig, getterConfig).
type getPair struct {
	server, client *dhtrpc.Node
	key            dht.Key
}

func (p getPair) get(b *testing.B) {
	got, err := p.client.Get(context.Background(), p.key, dht.GetOptions{})
	if err != nil || got == nil {
		b.Fatalf("get: %v, %v", got, err)
	}
}

// newGetPair starts the two nodes on serverHost and clientHost (already connected) and stores the
// record on the server.
func newGetPair(b *testing.B, serverHost, clientHost *p2p.Host) getPair {
	b.Helper()
	ctx := context.Background()
	server, err := dhtrpc.NewNode(ctx, serverHost, serverConfig)
	require.NoError(b, err)
	b.Cleanup(func() { _ = server.Close() })
	cc := getterConfig
	cc.InitialPeers = []dht.PeerID{server.PeerID()}
	client, err := dhtrpc.NewNode(ctx, clientHost, cc)
	require.NoError(b, err)
	b.Cleanup(func() { _ = client.Close() })
	key := dht.MustKey("bench-relay-get")
	res, err := server.Store(ctx, dht.StoreItem{Key: key, Value: "value", Expiration: now() + 3600})
	require.NoError(b, err)
	require.True(b, res.Stored)
	return getPair{server: server, client: client, key: key}
}

func benchHost(b *testing.B, cfg p2p.Config) *p2p.Host {
	b.Helper()
	cfg.Logger = quiet
	h, err := p2p.New(context.Background(), cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = h.Close() })
	return h
}

// BenchmarkRelayedGet: a 2-node GET (one FIND) whose only connection goes through a circuit relay
// (p2pd's limits), next to the same GET over a direct connection, interleaved on loopback: what a
// relay adds to a DHT call (one more hop and the relay's copy each way). Both servers listen on
// nothing but the relay's circuit; the relayed getter listens on nothing, so neither side can dial
// the other directly. No target: the ratio is printed.
func BenchmarkRelayedGet(b *testing.B) {
	ctx := context.Background()
	loop := []string{"/ip4/127.0.0.1/tcp/0"}
	relay := benchHost(b, p2p.Config{ListenAddrs: loop, Reachability: p2p.ReachabilityPublic})
	relayAddr := relay.VisibleMaddrs()[0].String()

	// Behind the relay: a server that reserves a slot on it (forced private, so auto-relay starts
	// at once), and a getter that reaches it through the relay's circuit address only.
	hidden := benchHost(b, p2p.Config{NoListen: true, AutoRelay: true, TrustedRelays: []string{relayAddr},
		InitialPeers: []string{relayAddr}, Reachability: p2p.ReachabilityPrivate})
	deadline := time.Now().Add(time.Minute)
	for len(hidden.NATStatus().Reservations) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("no relay reservation within a minute")
		}
		time.Sleep(10 * time.Millisecond) // polling the reservation, not a timing assertion
	}
	viaRelay := benchHost(b, p2p.Config{NoListen: true})
	_, err := viaRelay.Connect(ctx, relayAddr+"/p2p-circuit/p2p/"+hidden.ID().String())
	require.NoError(b, err)
	relayed := newGetPair(b, hidden, viaRelay)

	// Direct: the same two nodes on a direct loopback connection.
	open := benchHost(b, p2p.Config{ListenAddrs: loop})
	direct := benchHost(b, p2p.Config{ListenAddrs: loop})
	_, err = direct.Connect(ctx, open.VisibleMaddrs()[0].String())
	require.NoError(b, err)
	straight := newGetPair(b, open, direct)

	for range 20 { // warm up: identify, the peerstore's protocol cache
		relayed.get(b)
		straight.get(b)
	}
	for _, st := range viaRelay.PeerStatuses(nil) {
		if st.ID == hidden.ID() && !st.Relayed {
			b.Fatalf("the relayed getter has a direct connection to its server: %v", st.Addrs)
		}
	}
	b.ResetTimer()
	var relayedTime, directTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		relayed.get(b)
		mid := time.Now()
		straight.get(b)
		relayedTime += mid.Sub(start)
		directTime += time.Since(mid)
	}
	b.StopTimer()
	b.ReportMetric(float64(relayedTime.Nanoseconds())/float64(b.N), "relayed-get-ns/op")
	b.ReportMetric(float64(directTime.Nanoseconds())/float64(b.N), "direct-get-ns/op")
	b.ReportMetric(float64(relayedTime)/float64(directTime), "relayed/direct-ratio")
	b.ReportMetric(float64(relay.NATStatus().CircuitsOpen), "circuits")
}
