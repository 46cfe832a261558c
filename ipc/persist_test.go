package ipc

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
)

// TestKill9KeepsReplicas: records other peers replicate onto a worker's node (rpc_store), not only
// those stored through the worker, survive a kill -9: a worker restarted on the same state
// directory, alone, holds them (DESIGN §4.9). Real processes with real libp2p nodes on loopback.
func TestKill9KeepsReplicas(t *testing.T) {
	ctx := testCtx(t)
	l := selfLauncher(t, envTestNode+"=libp2p")
	loopback := []string{"/ip4/127.0.0.1/tcp/0"}
	cfgA := WorkerConfig{Name: "a", Launcher: l, Logger: testLogger(t), Node: NodeConfig{StateDir: t.TempDir(), HostMaddrs: loopback}}
	a, err := StartWorker(ctx, cfgA)
	require.NoError(t, err)
	b, err := StartWorker(ctx, WorkerConfig{
		Name: "b", Launcher: l, Logger: testLogger(t),
		Node: NodeConfig{HostMaddrs: loopback, InitialPeers: a.Maddrs()},
	})
	require.NoError(t, err)
	defer b.Stop(ctx)

	key := dht.RawKey([]byte("replica"))
	res, err := b.Store(ctx, dht.StoreItem{Key: key, Value: rawMsgpack(t, "from b"), Expiration: dht.SystemClock{}.Now() + 600})
	require.NoError(t, err)
	require.True(t, res.Stored)
	accepted := false
	for _, r := range res.Replicas {
		accepted = accepted || (r.Node == a.NodeID() && r.Accepted)
	}
	require.True(t, accepted, "a accepted b's replica: %+v", res.Replicas)
	st, err := a.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, st.PersistedRecords)

	require.NoError(t, syscall.Kill(a.PID(), syscall.SIGKILL))
	<-a.Done()
	assert.EqualError(t, a.ExitReason(), "signal: killed")
	a.Stop(ctx)
	b.Stop(ctx)

	a2, err := StartWorker(ctx, cfgA)
	require.NoError(t, err)
	defer func() { assert.Equal(t, StoppedGracefully, a2.Stop(ctx)) }()
	assert.Equal(t, a.ID(), a2.ID())
	assert.Equal(t, 1, a2.ReloadedRecords())
	got, err := a2.Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got, "the replica survived kill -9")
	assert.Equal(t, rawMsgpack(t, "from b"), got.Value)
}
