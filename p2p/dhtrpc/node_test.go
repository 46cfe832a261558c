package dhtrpc

import (
	"bytes"
	"testing"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// swarm starts n DHT nodes on loopback hosts, every host connected to every earlier one, node i > 0
// bootstrapped (validated pings) from node 0 and, when there is one, node i-1.
func swarm(t *testing.T, n int, cfg dht.Config) ([]*Node, []*p2p.Host) {
	t.Helper()
	hosts := make([]*p2p.Host, n)
	nodes := make([]*Node, n)
	for i := range n {
		hosts[i] = newHost(t)
		for j := range i {
			connect(t, hosts[i], hosts[j])
		}
		c := cfg
		c.Logger = quiet
		if i > 0 {
			c.InitialPeers = []dht.PeerID{PeerIDFromP2P(hosts[0].ID())}
			if i > 1 {
				c.InitialPeers = append(c.InitialPeers, PeerIDFromP2P(hosts[i-1].ID()))
			}
		}
		node, err := NewNode(t.Context(), hosts[i], c)
		require.NoError(t, err, "node %d", i)
		t.Cleanup(func() { _ = node.Close() })
		nodes[i] = node
	}
	return nodes, hosts
}

func now() float64 { return dht.SystemClock{}.Now() }

func decode(t *testing.T, raw msgpack.Raw) any {
	t.Helper()
	v, err := msgpack.Unmarshal(raw)
	require.NoError(t, err)
	return v
}

func mustMsgpack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestProtocol follows hivemind's test_dht_protocol (spec §12.3) with a client-mode caller speaking
// raw RPCs through the Transport to two served nodes, peer2 bootstrapped from peer1.
func TestProtocol(t *testing.T) {
	nodes, _ := swarm(t, 2, dht.Config{BucketSize: 20, NumReplicas: 3, DepthModulo: 5})
	peer1, peer2 := nodes[0], nodes[1]
	client := newHost(t)
	connect(t, client, mustHost(t, peer1))
	connect(t, client, mustHost(t, peer2))
	tr := NewTransport(client)
	ctx := t.Context()
	clientInfo := &dhtpb.NodeInfo{} // client mode: empty NodeInfo

	// ping → peer1's DHTID
	ping, err := tr.Ping(ctx, peer1.PeerID(), &dhtpb.PingRequest{Peer: clientInfo})
	require.NoError(t, err)
	assert.Equal(t, peer1.NodeID().Bytes(), ping.GetPeer().GetNodeId())

	// STORE one key → all True
	key := dht.MustKey("key").ID()
	value := mustMsgpack(t, []any{"Value", int64(10)})
	exp := now() + 120
	store, err := tr.Store(ctx, peer1.PeerID(), &dhtpb.StoreRequest{
		Keys: [][]byte{key.Bytes()}, Subkeys: [][]byte{[]byte(dht.TagRegular)}, Values: [][]byte{value},
		ExpirationTime: []float64{exp}, InCache: []bool{false}, Peer: clientInfo,
	})
	require.NoError(t, err)
	assert.Equal(t, []bool{true}, store.GetStoreOk())

	// FIND at peer1 → same value and expiration, first neighbour = peer2
	find, err := tr.Find(ctx, peer1.PeerID(), &dhtpb.FindRequest{Keys: [][]byte{key.Bytes()}, Peer: clientInfo})
	require.NoError(t, err)
	require.Len(t, find.GetResults(), 1)
	r := find.GetResults()[0]
	assert.Equal(t, dhtpb.ResultType_FOUND_REGULAR, r.GetType())
	assert.Equal(t, value, r.GetValue())
	assert.Equal(t, exp, r.GetExpirationTime())
	require.NotEmpty(t, r.GetNearestNodeIds())
	assert.Equal(t, peer2.NodeID().Bytes(), r.GetNearestNodeIds()[0])
	assert.Equal(t, []byte(peer2.PeerID()), r.GetNearestPeerIds()[0])
	assert.Equal(t, peer1.NodeID().Bytes(), find.GetPeer().GetNodeId())

	// FIND a random key at peer2 → no value, first neighbour = peer1
	other := dht.RandomID()
	find, err = tr.Find(ctx, peer2.PeerID(), &dhtpb.FindRequest{Keys: [][]byte{other.Bytes()}, Peer: clientInfo})
	require.NoError(t, err)
	r = find.GetResults()[0]
	assert.Equal(t, dhtpb.ResultType_NOT_FOUND, r.GetType())
	require.NotEmpty(t, r.GetNearestNodeIds())
	assert.Equal(t, peer1.NodeID().Bytes(), r.GetNearestNodeIds()[0])

	// dictionary STOREs: subkeys "foo" at exp and "bar" at exp+5, then FIND → a dictionary
	dictKey := dht.MustKey("dict").ID()
	store, err = tr.Store(ctx, peer1.PeerID(), &dhtpb.StoreRequest{
		Keys:    [][]byte{dictKey.Bytes(), dictKey.Bytes()},
		Subkeys: [][]byte{mustMsgpack(t, "foo"), mustMsgpack(t, "bar")},
		Values:  [][]byte{mustMsgpack(t, int64(1)), mustMsgpack(t, int64(2))}, ExpirationTime: []float64{exp, exp + 5},
		InCache: []bool{false, false}, Peer: clientInfo,
	})
	require.NoError(t, err)
	assert.Equal(t, []bool{true, true}, store.GetStoreOk())
	find, err = tr.Find(ctx, peer1.PeerID(), &dhtpb.FindRequest{Keys: [][]byte{dictKey.Bytes()}, Peer: clientInfo})
	require.NoError(t, err)
	r = find.GetResults()[0]
	assert.Equal(t, dhtpb.ResultType_FOUND_DICTIONARY, r.GetType())
	assert.Equal(t, exp+5, r.GetExpirationTime())
	got, err := peer2.Get(ctx, dht.MustKey("dict"), dht.GetOptions{Latest: true})
	require.NoError(t, err)
	require.NotNil(t, got)
	require.True(t, got.IsDictionary)
	assert.Len(t, got.Dictionary, 2)
}

// mustHost returns the host a node was served on.
func mustHost(t *testing.T, n *Node) *p2p.Host {
	t.Helper()
	require.NotNil(t, n.host)
	return n.host
}

// TestGetStore follows hivemind's test_get_store (spec §12.1) on 5 nodes over loopback libp2p.
func TestGetStore(t *testing.T) {
	nodes, _ := swarm(t, 5, dht.Config{})
	node1, node2 := nodes[3], nodes[1]
	ctx := t.Context()
	key1, key2 := dht.MustKey("key1"), dht.MustKey("key2")

	res, err := node1.Store(ctx, dht.StoreItem{Key: key1, Value: "value1", Expiration: now() + 30})
	require.NoError(t, err)
	require.True(t, res.Stored)
	for _, n := range []*Node{node1, node2} {
		got, err := n.Get(ctx, key1, dht.GetOptions{})
		require.NoError(t, err)
		require.NotNil(t, got)
		assert.Equal(t, "value1", decode(t, got.Value))
	}
	missing, err := node2.Get(ctx, key2, dht.GetOptions{})
	require.NoError(t, err)
	assert.Nil(t, missing)

	results, err := node2.StoreMany(ctx, []dht.StoreItem{
		{Key: key1, Value: int64(123), Expiration: now() + 31},
		{Key: key2, Value: int64(456), Expiration: now() + 32},
	})
	require.NoError(t, err)
	assert.True(t, results[0].Stored)
	assert.True(t, results[1].Stored)
	got, err := node1.Get(ctx, key1, dht.GetOptions{Latest: true})
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.EqualValues(t, 123, decode(t, got.Value))
	got, err = node1.Get(ctx, key2, dht.GetOptions{Latest: true})
	require.NoError(t, err)
	assert.EqualValues(t, 456, decode(t, got.Value))

	// subkeys from two nodes, merged by a latest get
	res, err = node1.Store(ctx, dht.StoreItem{Key: key2, Subkey: "subkey1", Value: int64(789), Expiration: now() + 32})
	require.NoError(t, err)
	require.True(t, res.Stored)
	res, err = node2.Store(ctx, dht.StoreItem{Key: key2, Subkey: "subkey2", Value: "pew", Expiration: now() + 32})
	require.NoError(t, err)
	require.True(t, res.Stored)
	got, err = node1.Get(ctx, key2, dht.GetOptions{Latest: true})
	require.NoError(t, err)
	require.NotNil(t, got)
	require.True(t, got.IsDictionary)
	dict := map[any]any{}
	for _, e := range got.Dictionary {
		dict[decode(t, e.Subkey)] = decode(t, e.Value)
	}
	assert.Equal(t, map[any]any{"subkey1": decode(t, mustMsgpack(t, int64(789))), "subkey2": "pew"}, dict)
}

// rejectValidator rejects every record whose value is msgpack "forbidden".
type rejectValidator struct{ bad []byte }

func (v rejectValidator) Validate(r dht.Record) (bool, string) {
	if bytes.Equal(r.Value, v.bad) {
		return false, "forbidden value"
	}
	return true, ""
}
func (rejectValidator) SignValue(r dht.Record) []byte            { return r.Value }
func (rejectValidator) StripValue(r dht.Record) []byte           { return r.Value }
func (rejectValidator) Priority() int                            { return 0 }
func (rejectValidator) MergeWith(other dht.RecordValidator) bool { return false }

// TestValidatorRejection: a record every node's validator rejects is stored nowhere, through real hosts.
func TestValidatorRejection(t *testing.T) {
	v := rejectValidator{bad: mustMsgpack(t, "forbidden")}
	nodes, _ := swarm(t, 3, dht.Config{Validator: v})
	ctx := t.Context()
	key := dht.MustKey("guarded")
	res, err := nodes[2].Store(ctx, dht.StoreItem{Key: key, Value: "forbidden", Expiration: now() + 60})
	require.NoError(t, err)
	assert.False(t, res.Stored)
	got, err := nodes[0].Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	assert.Nil(t, got)

	res, err = nodes[2].Store(ctx, dht.StoreItem{Key: key, Value: "fine", Expiration: now() + 60})
	require.NoError(t, err)
	assert.True(t, res.Stored)
	got, err = nodes[0].Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Equal(t, "fine", decode(t, got.Value))
}

// TestClientModeNode: a client-mode node registers no handlers yet stores and gets through the swarm.
func TestClientModeNode(t *testing.T) {
	nodes, hosts := swarm(t, 2, dht.Config{})
	ch := newHost(t)
	connect(t, ch, hosts[0])
	connect(t, ch, hosts[1])
	client, err := NewNode(t.Context(), ch, dht.Config{
		ClientMode: true, Logger: quiet, InitialPeers: []dht.PeerID{nodes[0].PeerID()},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, client.Close()) }()
	ctx := t.Context()

	_, err = NewTransport(hosts[0]).Ping(ctx, client.PeerID(), &dhtpb.PingRequest{})
	require.ErrorIs(t, err, dht.ErrNoResponse)
	require.ErrorIs(t, err, p2p.ErrProtocolNotSupported)

	key := dht.MustKey("from client")
	res, err := client.Store(ctx, dht.StoreItem{Key: key, Value: int64(1), Expiration: now() + 60})
	require.NoError(t, err)
	require.True(t, res.Stored)
	got, err := nodes[1].Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got)
	got, err = client.Get(ctx, key, dht.GetOptions{})
	require.NoError(t, err)
	require.NotNil(t, got)
}

// TestNewNodeBootstrapFailure: bootstrapping from a peer that lacks DHTProtocol fails and leaves
// nothing registered.
func TestNewNodeBootstrapFailure(t *testing.T) {
	bare, h := newHost(t), newHost(t)
	connect(t, h, bare)
	_, err := NewNode(t.Context(), h, dht.Config{Logger: quiet, InitialPeers: []dht.PeerID{PeerIDFromP2P(bare.ID())}})
	require.ErrorIs(t, err, dht.ErrBootstrapFailed)
	require.NoError(t, Serve(h, &recorder{}), "the handlers were unregistered")
}
