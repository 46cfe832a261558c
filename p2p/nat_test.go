package p2p

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The NAT-traversal options on loopback: what each option runs, relayed calls, the relay's limits.
// Behind real NATs (auto-relay, AutoNAT, hole punching): test/netns.

const testPeer = "/ip4/127.0.0.1/tcp/31337/p2p/QmS5QmciTXXnCUCyxud5eWFenUMAmvAWSDa1c7dvdXRMZ7"

func TestNATConfigValidate(t *testing.T) {
	checkValidate(t, []validateCase{
		{name: "auto-relay from the initial peers", cfg: Config{AutoRelay: true, InitialPeers: []string{testPeer}}},
		{name: "auto-relay with trusted relays", cfg: Config{AutoRelay: true, TrustedRelays: []string{testPeer}}},
		{name: "everything off", cfg: Config{DisableRelay: true, DisableAutoNAT: true, NoListen: true}},
		{name: "port mapping and forced reachability", cfg: Config{NATPortMap: true, Reachability: ReachabilityPrivate}},
		{name: "auto-relay without relay or initial peer", cfg: Config{AutoRelay: true}, fields: []string{"AutoRelay"}},
		{name: "auto-relay without the relay transport",
			cfg: Config{AutoRelay: true, DisableRelay: true, InitialPeers: []string{testPeer}}, fields: []string{"AutoRelay"}},
		{name: "trusted relays without auto-relay", cfg: Config{TrustedRelays: []string{testPeer}}, fields: []string{"TrustedRelays"}},
		{name: "trusted relay without /p2p", cfg: Config{AutoRelay: true, TrustedRelays: []string{"/ip4/127.0.0.1/tcp/1"}},
			fields: []string{"TrustedRelays[0]"}},
		{name: "no-listen with listen addrs", cfg: Config{NoListen: true, ListenAddrs: []string{DefaultListenAddr}}, fields: []string{"NoListen"}},
		{name: "unknown is not a reachability to force", cfg: Config{Reachability: ReachabilityUnknown}, fields: []string{"Reachability"}},
		{name: "negative relay limits", cfg: Config{Relay: RelayLimits{MaxCircuits: -1, MaxReservations: -1, BufferSize: -1, DataLimit: -1, TimeLimit: -1}},
			fields: []string{"Relay.MaxCircuits", "Relay.MaxReservations", "Relay.BufferSize", "Relay.DataLimit", "Relay.TimeLimit"}},
	})
}

func TestRelayLimitsDefaultsAreP2PDs(t *testing.T) {
	r := Config{}.withDefaults().Relay.resources()
	assert.Equal(t, 16, r.MaxCircuits)
	assert.Equal(t, 128, r.MaxReservations)
	assert.Equal(t, 128, r.MaxReservationsPerIP)
	assert.Equal(t, 16<<20, r.BufferSize)
	assert.Equal(t, int64(4<<30), r.Limit.Data)
	assert.Equal(t, 30*time.Minute, r.Limit.Duration)
}

// serves reports whether h handles protocol id.
func serves(h *Host, id protocol.ID) bool {
	for _, p := range h.lh.Mux().Protocols() {
		if p == id {
			return true
		}
	}
	return false
}

func TestNATOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		// what the host runs
		relayService, autoNATService bool
		reach                        Reachability
		forced                       bool
	}{
		{name: "hivemind defaults", cfg: Config{}, relayService: true, autoNATService: true, reach: ReachabilityUnknown},
		{name: "use_relay=False", cfg: Config{DisableRelay: true}, autoNATService: true, reach: ReachabilityUnknown},
		{name: "relay transport without the service", cfg: Config{DisableRelayService: true}, autoNATService: true, reach: ReachabilityUnknown},
		{name: "auto_nat=False", cfg: Config{DisableAutoNAT: true}, relayService: true, reach: ReachabilityUnknown},
		{name: "forced public", cfg: Config{Reachability: ReachabilityPublic}, relayService: true, autoNATService: true,
			reach: ReachabilityPublic, forced: true},
		{name: "forced private: no AutoNAT service", cfg: Config{Reachability: ReachabilityPrivate}, relayService: true,
			reach: ReachabilityPrivate, forced: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTCPHost(t, tc.cfg)
			assert.Equal(t, tc.relayService, serves(h, circuitproto.ProtoIDv2Hop), "relay service")
			assert.Equal(t, tc.autoNATService, serves(h, autonat.AutoNATProto), "AutoNAT service")
			st := h.NATStatus()
			assert.Equal(t, tc.reach, st.Reachability)
			assert.Equal(t, tc.forced, st.ReachabilityForced)
			assert.Equal(t, !tc.cfg.DisableRelay, st.Relay)
			assert.Equal(t, tc.relayService, st.RelayService)
			assert.Equal(t, !tc.cfg.DisableAutoNAT, st.AutoNAT)
			assert.False(t, st.NATPortMap, "port mapping is off by default")
			assert.Equal(t, DHTModeServer, st.KadMode)
		})
	}
}

func TestDHTModeAutoFollowsForcedReachability(t *testing.T) {
	for _, tc := range []struct {
		reach Reachability
		want  DHTMode
	}{
		{reach: ReachabilityPublic, want: DHTModeServer},
		{reach: ReachabilityPrivate, want: DHTModeClient},
	} {
		t.Run(string(tc.reach), func(t *testing.T) {
			h := newTCPHost(t, Config{DHTMode: DHTModeAuto, Reachability: tc.reach})
			require.Eventually(t, func() bool { return h.NATStatus().KadMode == tc.want }, testTimeout, 20*time.Millisecond,
				"kad mode %s, want %s", h.NATStatus().KadMode, tc.want)
		})
	}
}

func TestNoListenDialsOut(t *testing.T) {
	server := newTCPHost(t, Config{})
	client := newTCPHost(t, Config{NoListen: true, InitialPeers: []string{server.VisibleMaddrs()[0].String()}})
	assert.Empty(t, client.Addrs(), "a no-listen host announces nothing")
	assert.Empty(t, client.VisibleMaddrs(), "not even its bare /p2p/<id>")
	assert.True(t, client.NATStatus().NoListen)
	require.NoError(t, AddUnaryHandler(server, "T.rpc_echo", func(_ context.Context, _ PeerID, req num) (num, error) { return req, nil }))
	resp, err := CallUnary[num](testContext(t), client, server.ID(), "T.rpc_echo", wrapperspb.Int64(7))
	require.NoError(t, err)
	assert.Equal(t, int64(7), resp.GetValue())
	// Nobody can dial the client: it listens nowhere. (A third host, since the client may dial the
	// server again at any moment — its initial peer — and a dial back would reuse that connection.)
	third := newTCPHost(t, Config{})
	third.lh.Peerstore().AddAddrs(client.ID(), server.lh.Peerstore().Addrs(client.ID()), time.Minute)
	ctx, cancel := context.WithTimeout(testContext(t), 3*time.Second)
	defer cancel()
	_, err = third.Connect(ctx, "/ip4/127.0.0.1/tcp/1/p2p/"+client.ID().String())
	assert.Error(t, err, "a host that listens nowhere cannot be dialled")
}

// relayTrio starts a relay, a target that holds a reservation on it, and a caller that reaches the
// target only through the relay (the target's peerstore entry is its circuit address).
func relayTrio(t *testing.T, relayCfg, callerCfg Config) (relay, target, caller *Host, circuitAddr string) {
	t.Helper()
	relay = newTCPHost(t, relayCfg)
	target = newTCPHost(t, Config{NoListen: true}) // reachable through the relay only
	_, err := circuitclient.Reserve(testContext(t), target.lh, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()})
	require.NoError(t, err)
	require.NoError(t, AddUnaryHandler(target, "T.rpc_echo", func(_ context.Context, _ PeerID, req num) (num, error) { return req, nil }))
	callerCfg.NoListen = true // nor can the target dial the caller
	caller = newTCPHost(t, callerCfg)
	_, err = caller.Connect(testContext(t), relay.VisibleMaddrs()[0].String())
	require.NoError(t, err)
	circuitAddr = relay.Addrs()[0].String() + "/p2p/" + relay.ID().String() + "/p2p-circuit/p2p/" + target.ID().String()
	return relay, target, caller, circuitAddr
}

func TestRelayedCall(t *testing.T) {
	relay, target, caller, addr := relayTrio(t, Config{}, Config{})
	require.Eventually(t, func() bool { return relay.NATStatus().ReservationsHeld == 1 }, testTimeout, 20*time.Millisecond)
	_, err := caller.Connect(testContext(t), addr)
	require.NoError(t, err)
	resp, err := CallUnary[num](testContext(t), caller, target.ID(), "T.rpc_echo", wrapperspb.Int64(42))
	require.NoError(t, err, "a unary call runs over a limited (relayed) connection")
	assert.Equal(t, int64(42), resp.GetValue())

	st := caller.PeerStatuses(nil)
	i := indexOfPeer(st, target.ID())
	require.GreaterOrEqual(t, i, 0)
	assert.True(t, st[i].Relayed, "the only connection to the target goes through the relay: %v", st[i].Addrs)
	assert.Equal(t, 1, caller.NATStatus().RelayedConns)
	rs := relay.NATStatus()
	assert.Equal(t, 1, rs.CircuitsOpen)
	assert.Equal(t, uint64(1), rs.CircuitsTotal)
	// The relay counts the bytes of a copy after writing them, so it may count after the caller read.
	require.Eventually(t, func() bool { return relay.NATStatus().RelayedBytes > 0 }, testTimeout, 10*time.Millisecond,
		"the relay counts the bytes it relayed")

	require.NoError(t, caller.lh.Network().ClosePeer(target.ID()))
	require.Eventually(t, func() bool { return relay.NATStatus().CircuitsOpen == 0 }, testTimeout, 20*time.Millisecond,
		"the circuit is released once its connection closes")
}

func TestRelayOffCannotDialCircuits(t *testing.T) {
	_, _, caller, addr := relayTrio(t, Config{}, Config{DisableRelay: true})
	_, err := caller.Connect(testContext(t), addr)
	require.Error(t, err, "no relay transport: a /p2p-circuit address cannot be dialled")
}

func TestRelayRefusesWithoutService(t *testing.T) {
	relay := newTCPHost(t, Config{DisableRelayService: true})
	target := newTCPHost(t, Config{})
	_, err := circuitclient.Reserve(testContext(t), target.lh, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()})
	require.Error(t, err, "a host without the relay service gives no reservation")
}

// hopConnect opens a raw circuit v2 hop stream from caller to relay asking for a circuit to dest,
// and returns the relay's status and the open stream (which holds the circuit while it is open).
func hopConnect(t *testing.T, caller, relay *Host, dest PeerID) (pbv2.Status, network.Stream) {
	t.Helper()
	s, err := caller.lh.NewStream(testContext(t), relay.ID(), circuitproto.ProtoIDv2Hop)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Reset() })
	require.NoError(t, pbio.NewDelimitedWriter(s).WriteMsg(&pbv2.HopMessage{
		Type: pbv2.HopMessage_CONNECT.Enum(),
		Peer: util.PeerInfoToPeerV2(peer.AddrInfo{ID: dest}),
	}))
	var resp pbv2.HopMessage
	require.NoError(t, s.SetReadDeadline(time.Now().Add(testTimeout)))
	require.NoError(t, pbio.NewDelimitedReader(s, 4096).ReadMsg(&resp))
	return resp.GetStatus(), s
}

func TestRelayMaxCircuits(t *testing.T) {
	const maxCircuits = 3
	relay, target, caller, _ := relayTrio(t, Config{Relay: RelayLimits{MaxCircuits: maxCircuits, BufferSize: 4096}}, Config{})
	var open []network.Stream
	for i := range maxCircuits + 2 {
		status, s := hopConnect(t, caller, relay, target.ID())
		if i < maxCircuits {
			require.Equal(t, pbv2.Status_OK, status, "circuit %d", i+1)
			open = append(open, s)
		} else {
			require.Equal(t, pbv2.Status_RESOURCE_LIMIT_EXCEEDED, status, "circuit %d is over the limit", i+1)
		}
	}
	// The relay counts a refusal once it has answered it (its tracer runs after the reply is
	// written), so the caller may read the refusal first.
	require.Eventually(t, func() bool {
		st := relay.NATStatus()
		return st.CircuitsOpen == maxCircuits && st.CircuitsRefused == 2
	}, testTimeout, 10*time.Millisecond, "%d circuits open and 2 refused: %+v", maxCircuits, relay.NATStatus())
	for _, s := range open {
		require.NoError(t, s.Reset())
	}
	require.Eventually(t, func() bool { return relay.NATStatus().CircuitsOpen == 0 }, testTimeout, 20*time.Millisecond,
		"every circuit is released once closed: %+v", relay.NATStatus())
	status, s := hopConnect(t, caller, relay, target.ID())
	assert.Equal(t, pbv2.Status_OK, status, "a circuit is allowed again after the others closed")
	_ = s.Reset()
}

func TestRelayAddrs(t *testing.T) {
	relay := "/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/10.1.0.10/tcp/4001"),
		ma.StringCast(relay + "/p2p-circuit"),
		ma.StringCast("/ip4/11.0.0.10/udp/4001/quic-v1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK/p2p-circuit"),
	}
	circuits, relays := relayAddrs(addrs)
	assert.Len(t, circuits, 2)
	require.Len(t, relays, 1, "one relay reached by two transports")
	assert.True(t, strings.HasSuffix(relay, relays[0].String()))
}

func indexOfPeer(st []PeerStatus, p PeerID) int {
	for i, s := range st {
		if s.ID == p {
			return i
		}
	}
	return -1
}

func TestRelayPeerSource(t *testing.T) {
	h := newTCPHost(t, Config{})
	static := make([]peer.AddrInfo, 3)
	for i := range static {
		static[i] = peer.AddrInfo{ID: randomPeerID(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}
	}
	src := relayPeerSource(static, h.lh, h.kad)
	for _, tc := range []struct {
		name string
		num  int
		want []peer.AddrInfo
	}{
		{name: "at most num, static first", num: 2, want: static[:2]},
		{name: "every static one, then the DHT's (none here)", num: 5, want: static},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []peer.AddrInfo
			for info := range src(testContext(t), tc.num) { // closed when done
				got = append(got, info)
			}
			assert.Equal(t, tc.want, got)
		})
	}
	ctx, cancel := context.WithCancel(testContext(t))
	ch := src(ctx, 3)
	cancel()
	for range ch { // closed once ctx ends, whether or not anything was read
	}
}

// TestRelayCandidateNeedsADirectPublicAddress: a peer the kad DHT finds becomes an auto-relay
// candidate only with a public address of its own; behind a NAT (private or loopback addresses
// only, or reachable itself only through a relay) it would relay for nobody outside.
func TestRelayCandidateNeedsADirectPublicAddress(t *testing.T) {
	const relayed = "/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK/p2p-circuit"
	for _, tc := range []struct {
		name  string
		addrs []string
		want  bool
	}{
		{name: "no address", want: false},
		{name: "loopback only", addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, want: false},
		{name: "private LAN only", addrs: []string{"/ip4/10.1.0.10/tcp/4001", "/ip4/192.168.1.2/udp/4001/quic-v1"}, want: false},
		{name: "reachable only through a public relay", addrs: []string{relayed}, want: false},
		{name: "a public address among private ones", addrs: []string{"/ip4/10.1.0.10/tcp/4001", "/ip4/11.0.0.11/tcp/4001"}, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []ma.Multiaddr
			for _, s := range tc.addrs {
				addrs = append(addrs, ma.StringCast(s))
			}
			assert.Equal(t, tc.want, hasDirectPublicAddr(addrs))
		})
	}
}

// fakeConn is a network.Conn with only a direction, a limited flag and a remote address.
type fakeConn struct {
	network.Conn
	stat   network.ConnStats
	remote ma.Multiaddr
}

func (c fakeConn) Stat() network.ConnStats       { return c.stat }
func (c fakeConn) RemoteMultiaddr() ma.Multiaddr { return c.remote }

// TestReachedThroughRelayOnly: the hole-punch retries are for a peer that reached this host through
// a relay and has no direct connection to it.
func TestReachedThroughRelayOnly(t *testing.T) {
	const circuit = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK/p2p-circuit"
	conn := func(dir network.Direction, limited bool, addr string) network.Conn {
		return fakeConn{stat: network.ConnStats{Stats: network.Stats{Direction: dir, Limited: limited}}, remote: ma.StringCast(addr)}
	}
	for _, tc := range []struct {
		name  string
		conns []network.Conn
		want  bool
	}{
		{name: "no connection"},
		{name: "direct only", conns: []network.Conn{conn(network.DirInbound, false, "/ip4/127.0.0.1/tcp/1")}},
		{name: "inbound through a relay", conns: []network.Conn{conn(network.DirInbound, true, circuit)}, want: true},
		{name: "inbound limited, no circuit address", conns: []network.Conn{conn(network.DirInbound, true, "/ip4/127.0.0.1/tcp/1")}, want: true},
		{name: "outbound through a relay: the other side punches",
			conns: []network.Conn{conn(network.DirOutbound, true, circuit)}},
		{name: "relayed and direct", conns: []network.Conn{
			conn(network.DirInbound, true, circuit), conn(network.DirOutbound, false, "/ip4/127.0.0.1/tcp/1"),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, reachedThroughRelayOnly(tc.conns))
		})
	}
}
