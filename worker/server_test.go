package worker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// libp2p and its dependencies keep a few process-wide goroutines once used.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/tcp.(*tcpListener).Accept"),
	)
}

func testServer(t *testing.T) *Server {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := NewServer(ServerConfig{Logger: logger})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func configure(t *testing.T, ctx context.Context, s *Server, cfg *ipcpb.NodeConfig) *ipcpb.ConfigureResponse {
	t.Helper()
	resp, err := s.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: cfg})
	require.NoError(t, err)
	return resp
}

func pack(t *testing.T, v any) []byte {
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestTwoLibp2pWorkersShareRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := testServer(t)
	ra := configure(t, ctx, a, &ipcpb.NodeConfig{StateDir: t.TempDir()})
	require.NotEmpty(t, ra.GetPeer().GetVisibleMaddrs())
	b := testServer(t)
	configure(t, ctx, b, &ipcpb.NodeConfig{InitialPeers: ra.GetPeer().GetVisibleMaddrs()})

	key := &ipcpb.Key{Data: pack(t, "shared")}
	exp := dht.SystemClock{}.Now() + 600
	st, err := a.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key, Value: pack(t, "hello"), Expiration: exp}})
	require.NoError(t, err)
	assert.True(t, st.GetResult().GetStored())

	got, err := b.Get(ctx, &ipcpb.GetRequest{Key: key})
	require.NoError(t, err)
	require.True(t, got.GetResult().GetFound())
	assert.Equal(t, pack(t, "hello"), got.GetResult().GetValue().GetValue())

	stats, err := a.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), stats.GetRoutingTableSize())
	assert.Equal(t, uint64(1), stats.GetPersistedRecords())
	// a's store: a FIND to b, then a STORE to b (itself stores at once): two rounds, two RPCs.
	assert.Equal(t, []string{"get", "store"}, dhtOpNames(stats.GetDhtOps()))
	assert.Equal(t, []uint64{1, 2, 2}, dhtOpCounts(stats.GetDhtOps()[1]))
	// b's get: answered by the replica a's store left at b, without an RPC.
	bstats, err := b.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 0, 0}, dhtOpCounts(bstats.GetDhtOps()[0]))
}

func dhtOpNames(ops []*ipcpb.DHTOpCounter) []string {
	var names []string
	for _, o := range ops {
		names = append(names, o.GetName())
	}
	return names
}

// dhtOpCounts is ops, rounds, rpcs.
func dhtOpCounts(o *ipcpb.DHTOpCounter) []uint64 {
	return []uint64{o.GetOps(), o.GetRounds(), o.GetRpcs()}
}

func TestRestartKeepsIdentityNodeIDAndRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	a := testServer(t)
	r1 := configure(t, ctx, a, &ipcpb.NodeConfig{StateDir: dir})
	key := &ipcpb.Key{Data: []byte("raw-key"), Raw: true}
	live := dht.SystemClock{}.Now() + 600
	_, err := a.StoreMany(ctx, &ipcpb.StoreManyRequest{Items: []*ipcpb.StoreItem{
		{Key: key, Value: pack(t, 1), Expiration: live},
		{Key: &ipcpb.Key{Data: pack(t, "dict")}, Subkey: pack(t, "sub"), HasSubkey: true, Value: pack(t, 2), Expiration: live},
		{Key: &ipcpb.Key{Data: pack(t, "old")}, Value: pack(t, 3), Expiration: dht.SystemClock{}.Now() + 60},
	}})
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	_, err = a.Get(ctx, &ipcpb.GetRequest{Key: key})
	assert.Equal(t, codes.Unavailable, status.Code(err), "calls after Close fail with dht.ErrShutdown")

	// The restart happens "two minutes later": the record "old" has expired and is dropped.
	b := NewServer(ServerConfig{Logger: a.logger, Clock: shiftedClock(120)})
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	r2 := configure(t, ctx, b, &ipcpb.NodeConfig{StateDir: dir})
	assert.Equal(t, r1.GetPeer().GetPeerIdB58(), r2.GetPeer().GetPeerIdB58())
	assert.Equal(t, r1.GetNodeId(), r2.GetNodeId())
	assert.Equal(t, uint64(2), r2.GetReloadedRecords())
	assert.FileExists(t, filepath.Join(dir, identityFile))
	got, err := b.Get(ctx, &ipcpb.GetRequest{Key: key})
	require.NoError(t, err)
	assert.True(t, got.GetResult().GetFound())
}

func TestCallsBeforeConfigureAndTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testServer(t)
	_, err := s.Get(ctx, &ipcpb.GetRequest{Key: &ipcpb.Key{}})
	assertReason(t, err, codes.FailedPrecondition, ipcpb.ReasonNotConfigured)
	_, err = s.Configure(ctx, &ipcpb.ConfigureRequest{Version: 99})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	configure(t, ctx, s, &ipcpb.NodeConfig{})
	_, err = s.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion})
	assertReason(t, err, codes.FailedPrecondition, ipcpb.ReasonAlreadyConfigured)
	_, err = s.Get(ctx, &ipcpb.GetRequest{})
	assertReason(t, err, codes.InvalidArgument, ipcpb.ReasonInvalidArgument)
}

func TestBootstrapFailureIsTheConfigureError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testServer(t)
	// A peer ID nobody listens for, on a loopback port nothing listens on.
	_, err := s.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: &ipcpb.NodeConfig{
		InitialPeers: []string{"/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"},
		Dht:          &ipcpb.DHTParams{WaitTimeoutSeconds: 1},
	}})
	assertReason(t, err, codes.Unavailable, ipcpb.ReasonBootstrapFailed)
	assert.Contains(t, status.Convert(err).Message(), "127.0.0.1")
}

func assertReason(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, code, st.Code(), "status %v", err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			assert.Equal(t, reason, info.GetReason())
			assert.Equal(t, ipcpb.ErrorDomain, info.GetDomain())
			return
		}
	}
	t.Fatalf("no ErrorInfo in %v", err)
}

// shiftedClock is the system clock moved by a number of seconds.
type shiftedClock float64

func (c shiftedClock) Now() float64 { return dht.SystemClock{}.Now() + float64(c) }

// TestGetStreamAnswersAsGet serves a Server as a worker does (Plugin.GRPCServer) and calls
// GetStream: the answers are Get's, in order, on one stream; an error ends the stream with Get's
// status; closing the stream ends the handler.
func TestGetStreamAnswersAsGet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testServer(t)
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	require.NoError(t, (&Plugin{Worker: s}).GRPCServer(nil, gs))
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = gs.Serve(lis)
	}()
	defer func() { gs.Stop(); <-served }()
	cc, err := grpc.NewClient("passthrough:///worker",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	w := ipcpb.NewWorkerClient(cc)

	stream, err := w.GetStream(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&ipcpb.GetRequest{Key: &ipcpb.Key{Data: []byte("k"), Raw: true}}))
	_, err = stream.Recv()
	assertReason(t, err, codes.FailedPrecondition, ipcpb.ReasonNotConfigured)

	configure(t, ctx, s, &ipcpb.NodeConfig{})
	key := &ipcpb.Key{Data: pack(t, "streamed")}
	_, err = s.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key, Value: pack(t, "v"), Expiration: dht.SystemClock{}.Now() + 600}})
	require.NoError(t, err)

	stream, err = w.GetStream(ctx)
	require.NoError(t, err)
	for i, k := range []*ipcpb.Key{key, {Data: pack(t, "missing")}, key} {
		require.NoError(t, stream.Send(&ipcpb.GetRequest{Key: k}))
		resp, err := stream.Recv()
		require.NoError(t, err, "request %d", i)
		want, err := s.Get(ctx, &ipcpb.GetRequest{Key: k})
		require.NoError(t, err)
		assert.True(t, proto.Equal(want, resp), "request %d: stream %v, unary %v", i, resp, want)
	}
	require.NoError(t, stream.Send(&ipcpb.GetRequest{})) // no key
	_, err = stream.Recv()
	assertReason(t, err, codes.InvalidArgument, ipcpb.ReasonInvalidArgument)

	stream, err = w.GetStream(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.CloseSend())
	_, err = stream.Recv()
	assert.ErrorIs(t, err, io.EOF, "the handler returns when the caller closes the stream")
}

// TestAddPeersJoinsTwoLoneWorkers: two workers that started alone form one swarm once one of them is
// handed the other's multiaddrs; a malformed multiaddr fails the call with INVALID_ARGUMENT before
// anything is done, and an unreachable peer is reported per multiaddr, not as an error.
func TestAddPeersJoinsTwoLoneWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	local := []string{"/ip4/127.0.0.1/tcp/0"}
	a := testServer(t)
	_, err := a.AddPeers(ctx, &ipcpb.AddPeersRequest{Maddrs: []string{"/ip4/127.0.0.1/tcp/1/p2p/x"}})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "before Configure: %v", err)
	ra := configure(t, ctx, a, &ipcpb.NodeConfig{HostMaddrs: local})
	b := testServer(t)
	configure(t, ctx, b, &ipcpb.NodeConfig{HostMaddrs: local})

	key := &ipcpb.Key{Data: pack(t, "joined")}
	exp := dht.SystemClock{}.Now() + 600
	_, err = a.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key, Value: pack(t, "hello"), Expiration: exp}})
	require.NoError(t, err)
	got, err := b.Get(ctx, &ipcpb.GetRequest{Key: key})
	require.NoError(t, err)
	require.False(t, got.GetResult().GetFound(), "b is alone: it cannot see a's record yet")

	for _, bad := range []string{"not a multiaddr", "/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/1/p2p/notapeerid"} {
		_, err := b.AddPeers(ctx, &ipcpb.AddPeersRequest{Maddrs: append(slices.Clone(ra.GetPeer().GetVisibleMaddrs()), bad)})
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%q: %v", bad, err)
		assert.Contains(t, status.Convert(err).Message(), "maddrs[")
	}
	_, err = b.AddPeers(ctx, &ipcpb.AddPeersRequest{})
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "no maddrs: %v", err)
	require.Zero(t, b.node.Stats().RoutingTableSize, "a rejected call added nothing")

	// A peer nobody runs, on a port nobody listens on.
	const gone = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	maddrs := append(slices.Clone(ra.GetPeer().GetVisibleMaddrs()), gone)
	resp, err := b.AddPeers(ctx, &ipcpb.AddPeersRequest{Maddrs: maddrs})
	require.NoError(t, err)
	assert.EqualValues(t, 1, resp.GetAnswered())
	require.Len(t, resp.GetPeers(), len(maddrs))
	for i, o := range resp.GetPeers() {
		assert.Equal(t, maddrs[i], o.GetMaddr())
		if i < len(maddrs)-1 {
			assert.True(t, o.GetConnected(), "%s: %s", o.GetMaddr(), o.GetError())
		} else {
			assert.False(t, o.GetConnected(), "the unreachable peer")
			assert.NotEmpty(t, o.GetError())
		}
	}

	got, err = b.Get(ctx, &ipcpb.GetRequest{Key: key})
	require.NoError(t, err)
	require.True(t, got.GetResult().GetFound(), "b joined a's swarm")
	key2 := &ipcpb.Key{Data: pack(t, "from-b")}
	st, err := b.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key2, Value: pack(t, "hi"), Expiration: exp}})
	require.NoError(t, err)
	require.True(t, st.GetResult().GetStored())
	got, err = a.Get(ctx, &ipcpb.GetRequest{Key: key2})
	require.NoError(t, err)
	assert.True(t, got.GetResult().GetFound(), "a sees b's record")
}
