package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.DiscardHandler)

// Node configs of the 2-node benchmarks: a server that holds the records and a client-mode getter
// that caches nothing, so every GET makes one FIND to the server (and every STORE a FIND plus a
// STORE), as a fresh reader of a hivemind swarm would.
var (
	serverConfig = dht.Config{Logger: quiet, RefreshInterval: -1}
	getterConfig = dht.Config{
		Logger: quiet, RefreshInterval: -1, ClientMode: true,
		DisableCacheLocally: true, CacheNearest: -1, DisableCacheOnStore: true, DisableGetReuse: true,
	}
)

// baselineName is the trivial unary handler the DHT calls are compared with.
var baselineName = p2p.HandleName(p2p.NamespaceOf("bench"), "Baseline", "rpc_ping")

// libp2pPair is a server node and a client-mode node on two loopback hosts, plus a baseline handler
// on the server's host.
type libp2pPair struct {
	serverHost, clientHost *p2p.Host
	server, client         *dhtrpc.Node
}

func newLibp2pPair(b *testing.B) libp2pPair {
	b.Helper()
	ctx := context.Background()
	host := func() *p2p.Host {
		h, err := p2p.New(ctx, p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet})
		require.NoError(b, err)
		b.Cleanup(func() { _ = h.Close() })
		return h
	}
	p := libp2pPair{serverHost: host(), clientHost: host()}
	_, err := p.clientHost.Connect(ctx, p.serverHost.VisibleMaddrs()[0].String())
	require.NoError(b, err)
	resp := &dhtpb.PingResponse{Peer: &dhtpb.NodeInfo{NodeId: make([]byte, dht.IDLen)}, DhtTime: 1.7e9}
	require.NoError(b, p2p.AddUnaryHandler(p.serverHost, baselineName,
		func(context.Context, p2p.PeerID, *dhtpb.PingRequest) (*dhtpb.PingResponse, error) { return resp, nil }))

	p.server, err = dhtrpc.NewNode(ctx, p.serverHost, serverConfig)
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.server.Close() })
	cc := getterConfig
	cc.InitialPeers = []dht.PeerID{p.server.PeerID()}
	p.client, err = dhtrpc.NewNode(ctx, p.clientHost, cc)
	require.NoError(b, err)
	b.Cleanup(func() { _ = p.client.Close() })
	return p
}

// baseline makes one raw unary round trip: an rpc_ping-sized request to a handler that answers a
// fixed response, through the same p2p machinery the DHT uses.
func (p libp2pPair) baseline(b *testing.B) {
	req := &dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{NodeId: make([]byte, dht.IDLen)}}
	if _, err := p2p.CallUnary[*dhtpb.PingResponse](context.Background(), p.clientHost, p.serverHost.ID(), baselineName, req); err != nil {
		b.Fatal(err)
	}
}

func now() float64 { return dht.SystemClock{}.Now() }

// sideBySide times op and baseline interleaved (so both see the same machine load) and reports
// both per-op times and their ratio.
func sideBySide(b *testing.B, name string, op, baseline func()) {
	for range 20 { // warm up connections, identify, the peerstore's protocol cache
		op()
		baseline()
	}
	b.ResetTimer()
	var opTime, baseTime time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		op()
		mid := time.Now()
		baseline()
		opTime += mid.Sub(start)
		baseTime += time.Since(mid)
	}
	b.StopTimer()
	b.ReportMetric(float64(opTime.Nanoseconds())/float64(b.N), name+"-ns/op")
	b.ReportMetric(float64(baseTime.Nanoseconds())/float64(b.N), "unary-ns/op")
	b.ReportMetric(float64(opTime)/float64(baseTime), name+"/unary-ratio")
}

// BenchmarkLibp2pGet: a 2-node GET over loopback libp2p (one FIND) next to a raw unary round trip
// on the same hosts. Target: ratio ≤ 3 (never asserted).
func BenchmarkLibp2pGet(b *testing.B) {
	p := newLibp2pPair(b)
	ctx := context.Background()
	key := dht.MustKey("bench-get")
	res, err := p.server.Store(ctx, dht.StoreItem{Key: key, Value: "value", Expiration: now() + 3600})
	require.NoError(b, err)
	require.True(b, res.Stored)
	sideBySide(b, "get", func() {
		got, err := p.client.Get(ctx, key, dht.GetOptions{})
		if err != nil || got == nil {
			b.Fatalf("get: %v, %v", got, err)
		}
	}, func() { p.baseline(b) })
}

// BenchmarkLibp2pStore: a 2-node STORE over loopback libp2p (a FIND for the nearest nodes, then a
// STORE) next to a raw unary round trip.
func BenchmarkLibp2pStore(b *testing.B) {
	p := newLibp2pPair(b)
	ctx := context.Background()
	key := dht.MustKey("bench-store")
	exp := now() + 3600
	i := 0
	sideBySide(b, "store", func() {
		i++
		res, err := p.client.Store(ctx, dht.StoreItem{Key: key, Value: int64(i), Expiration: exp + float64(i)*1e-3})
		if err != nil || !res.Stored {
			b.Fatalf("store: %+v, %v", res, err)
		}
	}, func() { p.baseline(b) })
}

// BenchmarkLibp2pFindRPC: one DHTProtocol.rpc_find through dhtrpc.Transport (no node logic on the
// caller's side) next to the raw unary round trip: the cost of the DHT handler and messages.
func BenchmarkLibp2pFindRPC(b *testing.B) {
	p := newLibp2pPair(b)
	ctx := context.Background()
	key := dht.MustKey("bench-find")
	_, err := p.server.Store(ctx, dht.StoreItem{Key: key, Value: "value", Expiration: now() + 3600})
	require.NoError(b, err)
	tr := dhtrpc.NewTransport(p.clientHost)
	req := &dhtpb.FindRequest{Keys: [][]byte{key.ID().Bytes()}, Peer: &dhtpb.NodeInfo{}}
	sideBySide(b, "find", func() {
		if _, err := tr.Find(ctx, p.server.PeerID(), req); err != nil {
			b.Fatal(err)
		}
	}, func() { p.baseline(b) })
}

// simPair is the same pair on the in-memory network (no latency): the node's own cost, without
// libp2p.
func simPair(b *testing.B) (server, client *dht.Node) {
	b.Helper()
	ctx := context.Background()
	net, err := dhtsim.NewNetwork(dhtsim.Config{Seed: 1})
	require.NoError(b, err)
	start := func(i int, cfg dht.Config) *dht.Node {
		ep, err := net.Join(net.PeerID(i))
		require.NoError(b, err)
		cfg.NodeID = net.NodeID(i)
		n, err := dht.New(cfg, ep.ID(), ep)
		require.NoError(b, err)
		b.Cleanup(func() { _ = n.Close() })
		if !cfg.ClientMode {
			ep.Serve(n)
		}
		require.NoError(b, n.Bootstrap(ctx))
		return n
	}
	server = start(0, serverConfig)
	cc := getterConfig
	cc.InitialPeers = []dht.PeerID{net.PeerID(0)}
	client = start(1, cc)
	return server, client
}

// BenchmarkSimGet: the 2-node GET through dhtsim (protobuf copies, no network).
func BenchmarkSimGet(b *testing.B) {
	server, client := simPair(b)
	ctx := context.Background()
	key := dht.MustKey("bench-get")
	_, err := server.Store(ctx, dht.StoreItem{Key: key, Value: "value", Expiration: now() + 3600})
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := client.Get(ctx, key, dht.GetOptions{})
		if err != nil || got == nil {
			b.Fatalf("get: %v, %v", got, err)
		}
	}
}

// BenchmarkSimStore: the 2-node STORE through dhtsim.
func BenchmarkSimStore(b *testing.B) {
	_, client := simPair(b)
	ctx := context.Background()
	key := dht.MustKey("bench-store")
	exp := now() + 3600
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := client.Store(ctx, dht.StoreItem{Key: key, Value: int64(i), Expiration: exp + float64(i+1)*1e-3})
		if err != nil || !res.Stored {
			b.Fatalf("store: %+v, %v", res, err)
		}
	}
}

// localNode is a node alone: every store and get stays in process.
func localNode(b *testing.B) *dht.Node {
	b.Helper()
	n, err := dht.New(dht.Config{Logger: quiet, RefreshInterval: -1}, "local", noTransport{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = n.Close() })
	return n
}

// noTransport fails every call: a lone node never makes one.
type noTransport struct{}

func (noTransport) Ping(context.Context, dht.PeerID, *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	return nil, dht.ErrNoResponse
}

func (noTransport) Store(context.Context, dht.PeerID, *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	return nil, dht.ErrNoResponse
}

func (noTransport) Find(context.Context, dht.PeerID, *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	return nil, dht.ErrNoResponse
}

// BenchmarkLocalStore: an in-process store on a lone node (sign, validate, local storage).
func BenchmarkLocalStore(b *testing.B) {
	n := localNode(b)
	ctx := context.Background()
	key := dht.MustKey("bench-local")
	exp := now() + 3600
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := n.Store(ctx, dht.StoreItem{Key: key, Value: int64(i), Expiration: exp + float64(i+1)*1e-3})
		if err != nil || !res.Stored {
			b.Fatalf("store: %+v, %v", res, err)
		}
	}
}

// BenchmarkLocalGet: an in-process get of a value in the local storage.
func BenchmarkLocalGet(b *testing.B) {
	n := localNode(b)
	ctx := context.Background()
	key := dht.MustKey("bench-local")
	_, err := n.Store(ctx, dht.StoreItem{Key: key, Value: "value", Expiration: now() + 3600})
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := n.Get(ctx, key, dht.GetOptions{})
		if err != nil || got == nil {
			b.Fatalf("get: %v, %v", got, err)
		}
	}
}
