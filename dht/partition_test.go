package dht_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// TestPartitionHeals: after a partition between two halves of a swarm heals, the halves find each
// other again within two refresh periods (issue 5). During the partition each side's failed RPCs
// delete the other side's nodes from its routing table (spec §3.6); the refresh re-contacts the
// initial peers missing from the table before its lookups, and so relinks the halves. Sixteen
// nodes bootstrap from node 0: the side without it can only come back through it. With the default
// BucketSize every table is sparse (the refresh looks up every bucket); with BucketSize 4 tables
// split, and the lookup of stale buckets plus the node's own ID must do.
func TestPartitionHeals(t *testing.T) {
	for _, tc := range []struct {
		name        string
		bucketSize  int
		unreachable dhtsim.Unreachable
	}{
		{name: "refused", unreachable: dhtsim.Refuse},
		{name: "silent", unreachable: dhtsim.Silent},
		{name: "small-buckets", bucketSize: 4, unreachable: dhtsim.Refuse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testPartitionHeals(t, tc.bucketSize, tc.unreachable) })
		})
	}
}

func testPartitionHeals(t *testing.T, bucketSize int, unreachable dhtsim.Unreachable) {
	const (
		size    = 16
		refresh = 30 * time.Second
		keys    = 6
	)
	net, err := dhtsim.NewNetwork(dhtsim.Config{
		Seed: 11, Latency: dhtsim.Latency{Base: 5 * time.Millisecond, Jitter: 5 * time.Millisecond},
		Unreachable: unreachable, SilentTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	nodes := starCluster(t, net, size, dht.Config{BucketSize: bucketSize, RefreshInterval: refresh, WaitTimeout: time.Second})
	// Side a holds node 0 (everyone's initial peer), side b the others.
	var a, b []int
	side := make(map[dht.ID]int, size)
	for i := range size {
		if i%2 == 0 {
			a = append(a, i)
		} else {
			b = append(b, i)
		}
		side[net.NodeID(i)] = i % 2
	}
	ids := func(idx []int) []dht.PeerID {
		var out []dht.PeerID
		for _, i := range idx {
			out = append(out, net.PeerID(i))
		}
		return out
	}
	// cross counts the nodes of the other side in node i's routing table (active nodes).
	cross := func(i int) int {
		c := 0
		for _, contact := range nodes[i].RoutingContacts() {
			if side[contact.ID] != i%2 {
				c++
			}
		}
		return c
	}
	net.Partition(ids(a), ids(b))

	// Records stored on each side while it is cut off live on that side only.
	type check struct {
		key    dht.Key
		value  int
		reader int // a node of the other side
	}
	var checks []check
	store := func(writers, readers []int, prefix string) {
		for k := range keys {
			key := dht.MustKey(fmt.Sprintf("%s-%d", prefix, k))
			res, err := nodes[writers[k%len(writers)]].Store(ctx, dht.StoreItem{Key: key, Value: k, Expiration: dht.SystemClock{}.Now() + 3600})
			if err != nil || !res.Stored {
				t.Fatalf("store %s-%d on its own side: %+v %v", prefix, k, res, err)
			}
			checks = append(checks, check{key: key, value: k, reader: readers[k%len(readers)]})
		}
	}
	store(a, b, "side-a")
	store(b, a, "side-b")

	// Traffic during the partition, two refresh periods long: every node looks up random IDs and
	// evicts the other side's nodes it meets, as a busy swarm would.
	for round := range 4 {
		for i, n := range nodes {
			q := []dht.ID{dhtsim.NodeIDFor(99, round*size+i), dhtsim.NodeIDFor(98, round*size+i)}
			if _, err := n.FindNearestNodes(ctx, q, 0, false); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(refresh / 2)
	}
	before := 0
	for i := range nodes {
		if c := cross(i); c != 0 {
			t.Fatalf("node %d still knows %d nodes of the other side after the partition's traffic", i, c)
		}
		before += nodes[i].Stats().RoutingTable.Active
	}

	net.Heal()
	time.Sleep(2 * refresh) // virtual time, no traffic of ours: only the refresh can relink

	after := 0
	for i := range nodes {
		if cross(i) == 0 {
			t.Errorf("node %d knows no node of the other side two refresh periods after the heal", i)
		}
		after += nodes[i].Stats().RoutingTable.Active
	}
	t.Logf("routing-table entries: %d during the partition, %d two refresh periods after the heal", before, after)
	for _, c := range checks {
		got, err := nodes[c.reader].Get(ctx, c.key, dht.GetOptions{})
		if err != nil || got == nil {
			t.Errorf("node %d: get %v stored on the other side: %v %v", c.reader, c.key, got, err)
			continue
		}
		if want, _ := msgpack.Marshal(c.value); string(got.Value) != string(want) {
			t.Errorf("node %d: get %v = %x, want %x", c.reader, c.key, got.Value, want)
		}
	}
}

// TestLonelyNodeRejoins: a node cut off the network evicts every node it fails to reach; once the
// network is back it rejoins through its initial peer within seconds (the rejoin of refresh.go,
// backing off from one second), not at the next refresh tick, here ten minutes away. The records
// it stored alone meanwhile are then found from the rest of the swarm.
func TestLonelyNodeRejoins(t *testing.T) {
	for name, unreachable := range map[string]dhtsim.Unreachable{"refused": dhtsim.Refuse, "silent": dhtsim.Silent} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testLonelyNodeRejoins(t, unreachable) })
		})
	}
}

func testLonelyNodeRejoins(t *testing.T, unreachable dhtsim.Unreachable) {
	const (
		size    = 4
		refresh = 10 * time.Minute
		// outage is how long the node stays cut off after its table emptied; bound covers the
		// rejoin's backoff (waits of 1, 2, 4, 8 s from the moment the table emptied) past the heal,
		// and the pings and lookup that follow.
		outage = 5 * time.Second
		bound  = 30 * time.Second
	)
	net, err := dhtsim.NewNetwork(dhtsim.Config{
		Seed: 5, Latency: dhtsim.Latency{Base: 5 * time.Millisecond},
		Unreachable: unreachable, SilentTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	nodes := starCluster(t, net, size, dht.Config{RefreshInterval: refresh, WaitTimeout: time.Second})
	lonely := size - 1
	var rest []dht.PeerID
	for i := range lonely {
		rest = append(rest, net.PeerID(i))
	}
	net.Partition(rest, []dht.PeerID{net.PeerID(lonely)})

	// Cut off, the node's store reaches no other node: it evicts them all and keeps the record alone.
	key := dht.MustKey("stored-while-alone")
	res, err := nodes[lonely].Store(ctx, dht.StoreItem{Key: key, Value: "alone", Expiration: dht.SystemClock{}.Now() + 3600})
	if err != nil || !res.Stored || res.Accepted() != 1 {
		t.Fatalf("store while cut off: %+v %v, want stored by the node alone", res, err)
	}
	if got := nodes[lonely].Stats().RoutingTable.Active; got != 0 {
		t.Fatalf("the cut-off node still holds %d nodes after every call failed", got)
	}
	time.Sleep(outage)

	net.Heal()
	healed := time.Now()
	for nodes[lonely].Stats().RoutingTable.Active < lonely && time.Since(healed) < bound {
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(healed)
	if got := nodes[lonely].Stats().RoutingTable.Active; got < lonely {
		t.Fatalf("%v after the heal the node holds %d of the %d other nodes (refresh period %v)", took, got, lonely, refresh)
	}
	t.Logf("rejoined %v after the heal (virtual time; refresh period %v)", took, refresh)
	for i := range lonely {
		got, err := nodes[i].Get(ctx, key, dht.GetOptions{})
		if err != nil || got == nil {
			t.Errorf("node %d: get of the record stored while cut off: %v %v", i, got, err)
		}
	}
}

// starCluster starts size nodes on net with node, each node i > 0 bootstrapped from node 0
// (dhtsim's Star cluster); they close with the test.
func starCluster(t *testing.T, net *dhtsim.Network, size int, node dht.Config) []*dht.Node {
	t.Helper()
	cl, err := dhtsim.NewCluster(t.Context(), net, dhtsim.ClusterConfig{Size: size, Node: node, Star: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl.Nodes()
}
