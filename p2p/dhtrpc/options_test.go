package dhtrpc

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingTransport counts the RPCs sent through it.
type countingTransport struct {
	dht.Transport
	sent atomic.Int64
}

func (t *countingTransport) Ping(ctx context.Context, p dht.PeerID, r *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	t.sent.Add(1)
	return t.Transport.Ping(ctx, p, r)
}

func (t *countingTransport) Store(ctx context.Context, p dht.PeerID, r *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	t.sent.Add(1)
	return t.Transport.Store(ctx, p, r)
}

func (t *countingTransport) Find(ctx context.Context, p dht.PeerID, r *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	t.sent.Add(1)
	return t.Transport.Find(ctx, p, r)
}

// countingHandler counts the RPCs served through it, by caller.
type countingHandler struct {
	dht.Handler
	from  dht.PeerID
	calls atomic.Int64
}

func (h *countingHandler) count(from dht.PeerID) {
	if from == h.from {
		h.calls.Add(1)
	}
}

func (h *countingHandler) HandlePing(ctx context.Context, from dht.PeerID, r *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	h.count(from)
	return h.Handler.HandlePing(ctx, from, r)
}

func (h *countingHandler) HandleStore(ctx context.Context, from dht.PeerID, r *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	h.count(from)
	return h.Handler.HandleStore(ctx, from, r)
}

func (h *countingHandler) HandleFind(ctx context.Context, from dht.PeerID, r *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	h.count(from)
	return h.Handler.HandleFind(ctx, from, r)
}

// TestNewNodeWithWrappers: the wrapped transport carries every RPC the node sends (bootstrap and
// store), the wrapped handler serves every RPC the node receives, and each wrapper is given the
// node's own transport / the node itself.
func TestNewNodeWithWrappers(t *testing.T) {
	ctx := t.Context()
	h0, h1 := newHost(t), newHost(t)
	connect(t, h1, h0)
	served := &countingHandler{from: PeerIDFromP2P(h1.ID())}
	n0, err := NewNodeWith(ctx, h0, dht.Config{Logger: quiet}, NodeOptions{
		WrapHandler: func(h dht.Handler) dht.Handler {
			require.IsType(t, &dht.Node{}, h)
			served.Handler = h
			return served
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n0.Close() })
	sent := &countingTransport{}
	n1, err := NewNodeWith(ctx, h1, dht.Config{Logger: quiet, InitialPeers: []dht.PeerID{n0.PeerID()}}, NodeOptions{
		WrapTransport: func(tr dht.Transport) dht.Transport {
			require.IsType(t, &Transport{}, tr)
			sent.Transport = tr
			return sent
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n1.Close() })
	afterBootstrap := sent.sent.Load()
	assert.Positive(t, afterBootstrap, "bootstrap went through the wrapped transport")

	res, err := n1.Store(ctx, dht.StoreItem{Key: dht.MustKey("wrapped"), Value: int64(1), Expiration: now() + 60})
	require.NoError(t, err)
	require.True(t, res.Stored)
	assert.Greater(t, sent.sent.Load(), afterBootstrap, "the store went through the wrapped transport")
	// n0 calls n1 too (it pings back), but every RPC n1 sent reaches n0's handler through the wrapper.
	assert.Eventually(t, func() bool { return sent.sent.Load() == served.calls.Load() }, 5*time.Second, 10*time.Millisecond,
		"every RPC n1 sent is served by n0's wrapper (sent %d, served %d)", sent.sent.Load(), served.calls.Load())
}

// TestNewNodeWithClientModeSkipsHandler: a client-mode node serves nothing, so WrapHandler is never
// called; WrapTransport still is.
func TestNewNodeWithClientModeSkipsHandler(t *testing.T) {
	nodes, hosts := swarm(t, 1, dht.Config{})
	h := newHost(t)
	connect(t, h, hosts[0])
	var wrapped bool
	n, err := NewNodeWith(t.Context(), h, dht.Config{ClientMode: true, Logger: quiet, InitialPeers: []dht.PeerID{nodes[0].PeerID()}}, NodeOptions{
		WrapTransport: func(tr dht.Transport) dht.Transport { wrapped = true; return tr },
		WrapHandler:   func(dht.Handler) dht.Handler { t.Error("WrapHandler called for a client-mode node"); return nil },
	})
	require.NoError(t, err)
	require.NoError(t, n.Close())
	assert.True(t, wrapped)
}

// TestNewNodeWithNilWrapper: a wrapper returning nil fails NewNodeWith and leaves nothing registered.
func TestNewNodeWithNilWrapper(t *testing.T) {
	tests := []struct {
		name string
		opts NodeOptions
	}{
		{name: "transport", opts: NodeOptions{WrapTransport: func(dht.Transport) dht.Transport { return nil }}},
		{name: "handler", opts: NodeOptions{WrapHandler: func(dht.Handler) dht.Handler { return nil }}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			_, err := NewNodeWith(t.Context(), h, dht.Config{Logger: quiet}, tc.opts)
			require.ErrorContains(t, err, "returned nil")
			require.NoError(t, Serve(h, &recorder{}), "nothing was registered")
		})
	}
}
