package dht_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
)

// TestSimStoreGet runs real Nodes on a dhtsim network with latency, lost messages and churn, in
// virtual time: stores and GETs from random nodes must succeed, and a store must survive the death
// of a few replicas.
func TestSimStoreGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, err := dhtsim.NewNetwork(dhtsim.Config{
			Seed:     7,
			Latency:  dhtsim.Latency{Base: 20 * time.Millisecond, Jitter: 30 * time.Millisecond},
			DropRate: 0.01,
		})
		if err != nil {
			t.Fatal(err)
		}
		const size = 150
		cluster, err := dhtsim.NewCluster(t.Context(), net, dhtsim.ClusterConfig{
			Size:            size,
			JoinConcurrency: 10,
			Node:            dht.Config{RefreshInterval: -1, AllowBootstrapFailure: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cluster.Close()
		ctx := t.Context()
		now := dht.SystemClock{}.Now()
		const keys = 40
		for i := range keys {
			n := cluster.Node((i * 37) % size)
			r, err := n.Store(ctx, dht.StoreItem{Key: dht.MustKey(fmt.Sprint("key", i)), Value: i, Expiration: now + 3600})
			if err != nil || !r.Stored {
				t.Fatalf("store %d: %+v %v", i, r, err)
			}
		}
		for i := 0; i < size; i += 10 {
			cluster.Kill(i)
		}
		found := 0
		for i := range keys {
			n := cluster.Node((i*53)%size | 1)
			r, err := n.Get(ctx, dht.MustKey(fmt.Sprint("key", i)), dht.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r != nil {
				found++
			}
		}
		t.Logf("found %d/%d keys after killing %d of %d nodes", found, keys, size/10, size)
		if found < keys*95/100 {
			t.Errorf("found only %d/%d keys", found, keys)
		}
	})
}
