package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

var errRefused = errors.New("refused by the test")

// refusingHandler serves the node's handler unless refuse is set.
type refusingHandler struct {
	dht.Handler
	refuse atomic.Bool
}

func (h *refusingHandler) HandlePing(ctx context.Context, from dht.PeerID, r *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if h.refuse.Load() {
		return nil, errRefused
	}
	return h.Handler.HandlePing(ctx, from, r)
}

func (h *refusingHandler) HandleStore(ctx context.Context, from dht.PeerID, r *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if h.refuse.Load() {
		return nil, errRefused
	}
	return h.Handler.HandleStore(ctx, from, r)
}

func (h *refusingHandler) HandleFind(ctx context.Context, from dht.PeerID, r *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if h.refuse.Load() {
		return nil, errRefused
	}
	return h.Handler.HandleFind(ctx, from, r)
}

// countingTransport counts the pings sent through it.
type countingTransport struct {
	dht.Transport
	pings atomic.Int64
}

func (t *countingTransport) Ping(ctx context.Context, p dht.PeerID, r *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	t.pings.Add(1)
	return t.Transport.Ping(ctx, p, r)
}

func closeNode(t *testing.T, n Node) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
}

// TestLibp2pOptionsWrapTheDHTRPCs: NewLibp2pNodeWith hands its DHT options to the node: a handler
// that refuses every RPC makes a peer's bootstrap fail, and the peer's pings go through its wrapped
// transport; once the handler serves again, the same peer bootstraps.
func TestLibp2pOptionsWrapTheDHTRPCs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	served := &refusingHandler{}
	a, err := NewLibp2pNodeWith(ctx, NodeSpec{Config: &ipcpb.NodeConfig{}, Logger: quiet()}, Libp2pOptions{
		DHT: dhtrpc.NodeOptions{WrapHandler: func(h dht.Handler) dht.Handler { served.Handler = h; return served }},
	})
	require.NoError(t, err)
	closeNode(t, a)
	maddrs, err := a.VisibleMaddrs(ctx, false)
	require.NoError(t, err)

	newPeer := func() (Node, *countingTransport, error) {
		sent := &countingTransport{}
		spec := NodeSpec{Config: &ipcpb.NodeConfig{InitialPeers: maddrs}, Logger: quiet()}
		n, err := NewLibp2pNodeWith(ctx, spec, Libp2pOptions{
			DHT: dhtrpc.NodeOptions{WrapTransport: func(tr dht.Transport) dht.Transport { sent.Transport = tr; return sent }},
		})
		return n, sent, err
	}

	served.refuse.Store(true)
	_, sent, err := newPeer()
	require.ErrorIs(t, err, dht.ErrBootstrapFailed)
	assert.Positive(t, sent.pings.Load(), "the bootstrap pings went through the wrapped transport")

	served.refuse.Store(false)
	b, sent, err := newPeer()
	require.NoError(t, err)
	closeNode(t, b)
	assert.Positive(t, sent.pings.Load())
	assert.Equal(t, 1, b.Stats().RoutingTableSize)
}
