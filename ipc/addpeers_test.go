package ipc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
)

// TestAddPeersJoinsALoneWorker: two real worker processes (real libp2p nodes on loopback) that
// started alone do not see each other's records; once one is handed the other's multiaddrs, a
// record stored through either is found through the other. A malformed multiaddr is refused with
// ErrInvalidArgument and changes nothing.
func TestAddPeersJoinsALoneWorker(t *testing.T) {
	ctx := testCtx(t)
	l := selfLauncher(t, envTestNode+"=libp2p")
	loopback := []string{"/ip4/127.0.0.1/tcp/0"}
	start := func(name string) *Worker {
		w, err := StartWorker(ctx, WorkerConfig{Name: name, Launcher: l, Logger: testLogger(t), Node: NodeConfig{HostMaddrs: loopback}})
		require.NoError(t, err)
		t.Cleanup(func() { w.Stop(ctx) })
		return w
	}
	a, b := start("a"), start("b")
	exp := dht.SystemClock{}.Now() + 600

	fromA := dht.RawKey([]byte("from a"))
	res, err := a.Store(ctx, dht.StoreItem{Key: fromA, Value: rawMsgpack(t, "hello"), Expiration: exp})
	require.NoError(t, err)
	require.True(t, res.Stored)
	got, err := b.Get(ctx, fromA, dht.GetOptions{})
	require.NoError(t, err)
	require.Nil(t, got, "b started alone: a's record is out of its reach")

	_, err = b.AddPeers(ctx, append(a.Maddrs(), "/ip4/127.0.0.1/tcp/1"))
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = b.AddPeers(ctx, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)

	added, err := b.AddPeers(ctx, a.Maddrs())
	require.NoError(t, err)
	assert.Equal(t, 1, added.Answered)
	require.Len(t, added.Peers, len(a.Maddrs()))
	for i, p := range added.Peers {
		assert.Equal(t, a.Maddrs()[i], p.Maddr)
		assert.True(t, p.Connected, "%s: %s", p.Maddr, p.Error)
	}

	got, err = b.Get(ctx, fromA, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got, "b joined a's swarm")
	assert.Equal(t, rawMsgpack(t, "hello"), got.Value)

	fromB := dht.RawKey([]byte("from b"))
	res, err = b.Store(ctx, dht.StoreItem{Key: fromB, Value: rawMsgpack(t, "hi"), Expiration: exp})
	require.NoError(t, err)
	require.True(t, res.Stored)
	got, err = a.Get(ctx, fromB, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got, "a sees b's record")
	st, err := a.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, st.RoutingTableSize, "a knows b")
}
