package dhtrpc

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var quiet = slog.New(slog.DiscardHandler)

// newHost starts a loopback host (127.0.0.1 only) closed at the end of the test.
func newHost(t *testing.T) *p2p.Host {
	t.Helper()
	h, err := p2p.New(t.Context(), p2p.Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// connect dials b from a, so a knows b's address.
func connect(t *testing.T, a, b *p2p.Host) {
	t.Helper()
	_, err := a.Connect(t.Context(), b.VisibleMaddrs()[0].String())
	require.NoError(t, err)
}

// recorder is a dht.Handler that answers fixed responses and records the callers.
type recorder struct {
	mu    sync.Mutex
	froms []dht.PeerID
	fail  error
}

func (r *recorder) seen(from dht.PeerID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.froms = append(r.froms, from)
	return r.fail
}

func (r *recorder) HandlePing(_ context.Context, from dht.PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if err := r.seen(from); err != nil {
		return nil, err
	}
	return &dhtpb.PingResponse{Peer: &dhtpb.NodeInfo{NodeId: []byte("node")}, DhtTime: 12.5, Available: req.GetValidate()}, nil
}

func (r *recorder) HandleStore(_ context.Context, from dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if err := r.seen(from); err != nil {
		return nil, err
	}
	ok := make([]bool, len(req.GetKeys()))
	for i := range ok {
		ok[i] = i%2 == 0
	}
	return &dhtpb.StoreResponse{StoreOk: ok}, nil
}

func (r *recorder) HandleFind(_ context.Context, from dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if err := r.seen(from); err != nil {
		return nil, err
	}
	res := make([]*dhtpb.FindResult, len(req.GetKeys()))
	for i := range res {
		res[i] = &dhtpb.FindResult{Type: dhtpb.ResultType_FOUND_REGULAR, Value: req.Keys[i], ExpirationTime: 7}
	}
	return &dhtpb.FindResponse{Results: res}, nil
}

func TestHandleNames(t *testing.T) {
	tests := []struct {
		method, want string
	}{
		{method: MethodPing, want: "DHTProtocol.rpc_ping"},
		{method: MethodStore, want: "DHTProtocol.rpc_store"},
		{method: MethodFind, want: "DHTProtocol.rpc_find"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			assert.Equal(t, tt.want, HandleName(tt.method))
		})
	}
}

func TestPeerIDConversion(t *testing.T) {
	h := newHost(t)
	raw := PeerIDFromP2P(h.ID())
	assert.Equal(t, string(h.ID()), string(raw), "raw multihash bytes")
	back, err := PeerIDToP2P(raw)
	require.NoError(t, err)
	assert.Equal(t, h.ID(), back)
	_, err = PeerIDToP2P("fakeid")
	require.ErrorIs(t, err, ErrInvalidPeerID)
}

func TestServeAndCall(t *testing.T) {
	server, client := newHost(t), newHost(t)
	connect(t, client, server)
	rec := &recorder{}
	require.NoError(t, Serve(server, rec))
	tr := NewTransport(client)
	ctx := t.Context()
	to := PeerIDFromP2P(server.ID())

	ping, err := tr.Ping(ctx, to, &dhtpb.PingRequest{Validate: true})
	require.NoError(t, err)
	assert.Equal(t, []byte("node"), ping.GetPeer().GetNodeId())
	assert.Equal(t, 12.5, ping.GetDhtTime())
	assert.True(t, ping.GetAvailable())

	store, err := tr.Store(ctx, to, &dhtpb.StoreRequest{Keys: [][]byte{{1}, {2}, {3}}})
	require.NoError(t, err)
	assert.Equal(t, []bool{true, false, true}, store.GetStoreOk())

	find, err := tr.Find(ctx, to, &dhtpb.FindRequest{Keys: [][]byte{{9}, {8}}})
	require.NoError(t, err)
	require.Len(t, find.GetResults(), 2)
	assert.Equal(t, []byte{8}, find.GetResults()[1].GetValue())

	rec.mu.Lock()
	want := PeerIDFromP2P(client.ID())
	assert.Equal(t, []dht.PeerID{want, want, want}, rec.froms, "the caller is the connection's peer")
	rec.mu.Unlock()

	// Registering twice fails and leaves the first registration intact; Unserve frees the names.
	require.ErrorIs(t, Serve(server, &recorder{}), p2p.ErrHandlerExists)
	_, err = tr.Ping(ctx, to, &dhtpb.PingRequest{})
	require.NoError(t, err)
	Unserve(server)
	_, err = tr.Ping(ctx, to, &dhtpb.PingRequest{})
	// The client learnt through identify that the protocol was supported and negotiates lazily, so
	// the refusal arrives as a stream reset (libp2p's "protocol negotiation failed" code): the p2p
	// package reports it as ErrProtocolNotSupported or ErrNoReply depending on its classification.
	require.ErrorIs(t, err, dht.ErrNoResponse)
	require.NoError(t, Serve(server, rec))
	_, err = tr.Ping(ctx, to, &dhtpb.PingRequest{})
	require.NoError(t, err)
}

func TestCallFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, server *p2p.Host) dht.PeerID
		want  error
	}{
		{
			name: "peer lacks DHTProtocol",
			setup: func(t *testing.T, server *p2p.Host) dht.PeerID {
				return PeerIDFromP2P(server.ID())
			},
			want: p2p.ErrProtocolNotSupported,
		},
		{
			name: "remote handler error",
			setup: func(t *testing.T, server *p2p.Host) dht.PeerID {
				require.NoError(t, Serve(server, &recorder{fail: errors.New("boom")}))
				return PeerIDFromP2P(server.ID())
			},
			want: p2p.ErrRemoteHandler,
		},
		{
			name: "not a peer id",
			setup: func(t *testing.T, _ *p2p.Host) dht.PeerID {
				return "fakeid"
			},
			want: ErrInvalidPeerID,
		},
		{
			name: "closed peer",
			setup: func(t *testing.T, server *p2p.Host) dht.PeerID {
				require.NoError(t, Serve(server, &recorder{}))
				require.NoError(t, server.Close())
				return PeerIDFromP2P(server.ID())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, client := newHost(t), newHost(t)
			connect(t, client, server)
			to := tt.setup(t, server)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := NewTransport(client).Find(ctx, to, &dhtpb.FindRequest{Keys: [][]byte{{1}}})
			require.ErrorIs(t, err, dht.ErrNoResponse)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			if errors.Is(err, p2p.ErrRemoteHandler) {
				var re *p2p.RemoteError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, "boom", re.Text)
				assert.Equal(t, "DHTProtocol.rpc_find", re.Handle)
			}
			if errors.Is(err, p2p.ErrProtocolNotSupported) {
				assert.Contains(t, err.Error(), "DHTProtocol.rpc_find")
			}
		})
	}
}
