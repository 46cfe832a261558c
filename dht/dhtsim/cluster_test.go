package dhtsim

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClusterConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ClusterConfig
		ok   bool
	}{
		{name: "zero", ok: true},
		{name: "negative size", cfg: ClusterConfig{Size: -1}},
		{name: "negative bootstrap", cfg: ClusterConfig{BootstrapPeers: -1}},
		{name: "negative concurrency", cfg: ClusterConfig{JoinConcurrency: -1}},
		{name: "bad node config", cfg: ClusterConfig{Node: dht.Config{BucketSize: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidConfig)
			}
		})
	}
}

// TestClusterStoreGet: a small swarm on a network with latency, in virtual time: every node
// bootstraps with validated pings, a value stored from one node is found from every other.
func TestClusterStoreGet(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run(fmt.Sprintf("join concurrency %d", conc), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net, err := NewNetwork(Config{Seed: 42, Latency: Latency{Base: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}})
				require.NoError(t, err)
				ctx := t.Context()
				c, err := NewCluster(ctx, net, ClusterConfig{Size: 30, JoinConcurrency: conc})
				require.NoError(t, err)
				defer func() { require.NoError(t, c.Close()) }()
				require.Equal(t, 30, c.Len())
				assert.Equal(t, net.NodeID(7), c.Node(7).NodeID())
				assert.Equal(t, net.PeerID(7), c.Node(7).PeerID())

				key := dht.MustKey("mykey")
				exp := dht.SystemClock{}.Now() + 100
				res, err := c.Node(3).Store(ctx, dht.StoreItem{Key: key, Value: "hello", Expiration: exp})
				require.NoError(t, err)
				require.True(t, res.Stored)
				for i := range c.Len() {
					got, err := c.Node(i).Get(ctx, key, dht.GetOptions{})
					require.NoError(t, err)
					require.NotNil(t, got, "node %d", i)
					v, err := msgpack.Unmarshal(got.Value)
					require.NoError(t, err)
					assert.Equal(t, "hello", v)
					assert.Equal(t, exp, got.Expiration)
				}
				assert.Positive(t, net.Stats().Ping.Calls)
				assert.Zero(t, net.Stats().Total().Failed, "no call fails on a lossless network")
			})
		})
	}
}

// TestClusterAddAndKill: nodes added later join; killed nodes do not answer and the swarm still works.
func TestClusterAddAndKill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, err := NewNetwork(Config{Seed: 1, Latency: Latency{Base: time.Millisecond}})
		require.NoError(t, err)
		ctx := t.Context()
		c, err := NewCluster(ctx, net, ClusterConfig{Size: 10})
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close()) }()
		i, err := c.Add(ctx)
		require.NoError(t, err)
		require.Equal(t, 10, i)
		c.Kill(0)
		c.Kill(1)
		key := dht.MustKey("k")
		res, err := c.Node(10).Store(ctx, dht.StoreItem{Key: key, Value: 1, Expiration: dht.SystemClock{}.Now() + 60})
		require.NoError(t, err)
		require.True(t, res.Stored)
		got, err := c.Node(5).Get(ctx, key, dht.GetOptions{})
		require.NoError(t, err)
		require.NotNil(t, got)
		c.Revive(0)
		assert.True(t, c.Endpoint(0).Alive())
	})
}

// TestClusterStar: in a Star cluster node 0 is every other node's only initial peer, also for a
// node added later; node 0 has none.
func TestClusterStar(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, err := NewNetwork(Config{Seed: 2, Latency: Latency{Base: time.Millisecond}})
		require.NoError(t, err)
		ctx := t.Context()
		c, err := NewCluster(ctx, net, ClusterConfig{Size: 6, Star: true, BootstrapPeers: 3})
		require.NoError(t, err)
		defer func() { require.NoError(t, c.Close()) }()
		_, err = c.Add(ctx)
		require.NoError(t, err)
		assert.Empty(t, c.Node(0).InitialPeers())
		for i := 1; i < c.Len(); i++ {
			assert.Equal(t, []dht.PeerID{net.PeerID(0)}, c.Node(i).InitialPeers(), "node %d", i)
		}
	})
}

func TestClusterBootstrapFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, err := NewNetwork(Config{Seed: 1})
		require.NoError(t, err)
		// Every node bootstraps from a peer that never joined.
		_, err = NewCluster(t.Context(), net, ClusterConfig{Size: 2, Node: dht.Config{InitialPeers: []dht.PeerID{"nobody"}}})
		require.ErrorIs(t, err, dht.ErrBootstrapFailed)
		assert.Equal(t, 0, net.Len(), "a failed node leaves the network")
	})
}

func TestClusterCancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, err := NewNetwork(Config{Seed: 1})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err = NewCluster(ctx, net, ClusterConfig{Size: 3})
		require.Error(t, err)
	})
}
