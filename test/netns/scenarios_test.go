package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The scenarios of issue 10, each on a bed of its own, real supervisor and worker processes in the
// namespaces. Every wait is a liveness bound with a wide margin (AutoNAT waits 15 s before its
// first probe and gives a silent dial 15 s more); the times are logged.

// listenFlag makes a node listen on every address of its host, on a fixed port (each host is a
// namespace of its own).
var listenFlag = []string{"--host-maddrs", "/ip4/0.0.0.0/tcp/4001"}

// reachWithin bounds the wait for AutoNAT's verdict and a relay reservation.
const reachWithin = 2 * time.Minute

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestAutoRelayMakesANATedNodeReachable: a public Go node is the bootstrap node and relay; a Go
// node behind NAT A with --use-auto-relay finds itself private, reserves a slot on it and
// announces a /p2p-circuit address; nodes behind NAT B find it through the DHT and store on it,
// and get back, records that only it holds (one replica, on it).
func TestAutoRelayMakesANATedNodeReachable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	bed := New(t)
	relayHost := bed.PublicHost()
	a, b := bed.LAN().Host(), bed.LAN().Host()

	relay := startNode(t, "relay", relayHost, listenFlag...)
	relayAddr := relay.maddr(ctx)
	relayID := peerIDOf(relayAddr)
	nodeA := startNode(t, "a", a, append(listenFlag, "--initial-peers", relayAddr, "--use-auto-relay")...)
	st := nodeA.waitFor(ctx, reachWithin, "private with a relay reservation", func(st slotDoc) bool {
		return st.NAT.Reachability == "private" && slices.Contains(st.NAT.Reservations, relayID) && len(st.NAT.RelayAddrs) > 0
	})
	for _, m := range st.NAT.RelayAddrs {
		assert.True(t, strings.HasPrefix(m, "/ip4/"+relayHost.IP+"/"), "A's relayed address goes through the relay's public address: %s", m)
		assert.True(t, strings.HasSuffix(m, "/p2p/"+relayID+"/p2p-circuit"), m)
	}
	idA := st.PeerID
	relay.waitFor(ctx, time.Minute, "holding A's reservation", func(st slotDoc) bool { return st.NAT.ReservationsHeld >= 1 })

	// One replica each, at the nearest node (the relay, A, or the storing node itself, whose copy
	// leaves with it): keep the keys that landed on A, which only A holds.
	var onA []string
	for i := 0; len(onA) < 2 && i < 32; i++ {
		key := fmt.Sprintf("behind-nat-a-%d", i)
		r := store(ctx, t, b, key, fmt.Sprintf(`"value %d"`, i), "--num-replicas", "1", "--min-replicas", "0", "--initial-peers", relayAddr)
		if slices.Equal(r.acceptedBy(), []string{idA}) {
			onA = append(onA, key)
		}
	}
	require.NotEmpty(t, onA, "no key of 32 had A nearest")
	t.Logf("records held by A alone: %q", onA)
	for _, key := range onA {
		assert.JSONEq(t, fmt.Sprintf(`"value %s"`, strings.TrimPrefix(key, "behind-nat-a-")),
			get(ctx, t, b, key, "--initial-peers", relayAddr), "a fresh node behind NAT B gets %s from A", key)
	}
	st = nodeA.waitFor(ctx, time.Minute, "holding the records", func(st slotDoc) bool { return st.StoredKeys >= len(onA) })
	// supervisor status says so too.
	table, err := a.Run(ctx, supervisorBin, "status", "--state-dir", nodeA.dir)
	require.NoError(t, err)
	assert.Regexp(t, `\d+ direct, \d+ relayed\s+private\s+1\s`, string(table))
	assert.Contains(t, string(table), "/p2p/"+relayID+"/p2p-circuit/p2p/"+idA+" (through a relay)")
	relaySt, err := relay.status(ctx)
	require.NoError(t, err)
	assert.Positive(t, relaySt.NAT.CircuitsTotal, "the nodes behind NAT B reached A through the relay")
}

// TestNATedClientsDialOutOnly: behind a NAT, a client-mode node works without the relay (it dials
// out only), and so does one that listens on nothing.
func TestNATedClientsDialOutOnly(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	bed := New(t)
	pubA, pubB := bed.PublicHost(), bed.PublicHost()
	lan := bed.LAN()
	c1, c2 := lan.Host(), lan.Host()

	boot := startNode(t, "bootstrap", pubA, listenFlag...)
	bootAddr := boot.maddr(ctx)
	second := startNode(t, "second", pubB, append(listenFlag, "--initial-peers", bootAddr)...)
	second.maddr(ctx)

	for _, tc := range []struct {
		name string
		h    *Host
		args []string
	}{
		{name: "client mode without relay", h: c1, args: []string{"--use-relay=false"}},
		{name: "no-listen", h: c2, args: []string{"--no-listen"}},
		{name: "no-listen without relay", h: c2, args: []string{"--no-listen", "--use-relay=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "dial-out-" + strings.ReplaceAll(tc.name, " ", "-")
			peers := append([]string{"--initial-peers", bootAddr}, tc.args...)
			r := store(ctx, t, tc.h, key, `"stored from behind a NAT"`, peers...)
			require.True(t, r.Stored)
			assert.Len(t, r.acceptedBy(), 2, "both public nodes accepted: %+v", r)
			assert.JSONEq(t, `"stored from behind a NAT"`, get(ctx, t, tc.h, key, append(peers, "--latest")...))
		})
	}
	// A long-running client that listens on nothing: it runs, announces nothing, and is in touch
	// with the swarm.
	quiet := startNode(t, "no-listen", c1, "--client-mode", "--no-listen", "--use-relay=false", "--initial-peers", bootAddr)
	st := quiet.waitFor(ctx, time.Minute, "connected", func(st slotDoc) bool { return st.ConnectedPeers >= 1 })
	assert.Empty(t, st.Maddrs, "a node listening on nothing announces nothing")
	assert.Zero(t, st.NAT.RelayedConns)
}

// TestHolePunchUpgradesARelayedConnection: two nodes behind two NATs meet through the relay and
// punch a direct connection (the status shows it); once the relay is gone, their DHT requests
// still flow, over it.
func TestHolePunchUpgradesARelayedConnection(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	bed := New(t)
	relayHost := bed.PublicHost()
	a, b := bed.LAN().Host(), bed.LAN().Host()

	relay := startNode(t, "relay", relayHost, listenFlag...)
	relayAddr := relay.maddr(ctx)
	nodeA := startNode(t, "a", a, append(listenFlag, "--initial-peers", relayAddr, "--use-auto-relay")...)
	stA := nodeA.waitFor(ctx, reachWithin, "reachable through the relay", func(st slotDoc) bool {
		return st.NAT.Reachability == "private" && len(st.NAT.RelayAddrs) > 0
	})
	// B looks keys up every 2 s (supervisor dht's heartbeat): its lookups reach A, first through
	// A's relayed address.
	nodeB := startDHT(t, "b", b, append(listenFlag, "--initial-peers", relayAddr, "--use-auto-relay", "--refresh-period", "2s")...)
	idB := peerIDOf(nodeB.firstMaddr(ctx))
	// dht prints its addresses again once its reservation gives it a relayed one.
	circuit := nodeB.waitMaddr(ctx, reachWithin, "/p2p-circuit/")
	assert.True(t, strings.HasPrefix(circuit, "/ip4/"+relayHost.IP+"/tcp/4001/p2p/"+peerIDOf(relayAddr)+"/p2p-circuit/p2p/"+idB), circuit)

	stA = nodeA.waitFor(ctx, reachWithin, "directly connected to B by a hole punch", func(st slotDoc) bool {
		p := peerOf(st, idB)
		return p != nil && p.Connected && !p.Relayed && st.NAT.HolePunches > 0
	})
	p := peerOf(stA, idB)
	for _, addr := range p.Addrs {
		if !strings.Contains(addr, "/p2p-circuit") {
			assert.True(t, strings.HasPrefix(addr, "/ip4/"+publicNet+"."), "the direct connection goes to B's router: %s", addr)
		}
	}

	relay.kill()
	killed := time.Now()
	nodeA.waitFor(ctx, time.Minute, "serving B's DHT requests after the relay is gone", func(st slotDoc) bool {
		p := peerOf(st, idB)
		return p != nil && p.Connected && !p.Relayed && p.DHTLastRequest.After(killed)
	})
}

// TestRelayLimitsHold: a peer asking a relay for more circuits than it allows (p2pd's 16 per peer)
// is refused the extra ones, and once it closes them the relay holds nothing for it any more.
func TestRelayLimitsHold(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	bed := New(t)
	relayHost, probeHost := bed.PublicHost(), bed.PublicHost()
	// Small buffers: the default 16 MiB ones would charge 512 MiB to the relay for 16 circuits.
	relay := startNode(t, "relay", relayHost, append(listenFlag, "--relay-buffer-size", "65536")...)
	relayAddr := relay.maddr(ctx)
	before := relay.waitFor(ctx, time.Minute, "idle", func(st slotDoc) bool { return st.NAT.CircuitsOpen == 0 })

	const maxCircuits = 16 // p2pd's -relayMaxCircuits
	probe, err := helperCommand(ctx, probeHost, helperCircuits, relayAddr, fmt.Sprint(maxCircuits+2))
	require.NoError(t, err)
	stdin, err := probe.StdinPipe()
	require.NoError(t, err)
	stdout, err := probe.StdoutPipe()
	require.NoError(t, err)
	probeErr := newTail(50)
	probe.Stderr = probeErr
	require.NoError(t, probe.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = probe.Wait() })
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "probe: %s", probeErr)
	var report probeReport
	require.NoError(t, json.Unmarshal(lines.Bytes(), &report))
	want := slices.Repeat([]string{"OK"}, maxCircuits)
	want = append(want, "RESOURCE_LIMIT_EXCEEDED", "RESOURCE_LIMIT_EXCEEDED")
	assert.Equal(t, want, report.Statuses)
	relay.waitFor(ctx, time.Minute, "carrying 16 circuits, 2 refused", func(st slotDoc) bool {
		return st.NAT.CircuitsOpen == maxCircuits && st.NAT.CircuitsRefused == before.NAT.CircuitsRefused+2 &&
			st.NAT.ReservationsHeld == before.NAT.ReservationsHeld+1
	})

	require.NoError(t, stdin.Close())
	require.True(t, lines.Scan(), "probe: %s", probeErr)
	assert.Equal(t, "closed", lines.Text())
	require.NoError(t, probe.Wait())
	after := relay.waitFor(ctx, time.Minute, "back to idle", func(st slotDoc) bool {
		return st.NAT.CircuitsOpen == 0 && st.NAT.ReservationsHeld == before.NAT.ReservationsHeld && st.NAT.RelayedConns == 0
	})
	assert.Equal(t, before.NAT.CircuitsTotal+maxCircuits, after.NAT.CircuitsTotal)
	// Goroutines: the relay's copy loops are gone (a wide margin: libp2p's own come and go).
	assert.Less(t, after.Goroutines, before.Goroutines+40, "goroutines %d before, %d after", before.Goroutines, after.Goroutines)
}

// TestAutoNATAndDHTModeAuto: AutoNAT finds a public node public and a node behind a NAT private;
// with --dht-mode auto the kad DHT serves on the first and only queries on the second.
func TestAutoNATAndDHTModeAuto(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	bed := New(t)
	bootHost, pubHost := bed.PublicHost(), bed.PublicHost()
	natHost := bed.LAN().Host()

	boot := startNode(t, "bootstrap", bootHost, listenFlag...)
	bootAddr := boot.maddr(ctx)
	public := startNode(t, "public", pubHost, append(listenFlag, "--initial-peers", bootAddr, "--dht-mode", "auto")...)
	natted := startNode(t, "natted", natHost, append(listenFlag, "--initial-peers", bootAddr, "--dht-mode", "auto")...)

	st := public.waitFor(ctx, reachWithin, "public, kad server", func(st slotDoc) bool {
		return st.NAT.Reachability == "public" && st.NAT.KadMode == "server"
	})
	assert.False(t, st.NAT.Forced)
	st = natted.waitFor(ctx, reachWithin, "private, kad client", func(st slotDoc) bool {
		return st.NAT.Reachability == "private" && st.NAT.KadMode == "client"
	})
	assert.False(t, st.NAT.Forced)
	boot.waitFor(ctx, reachWithin, "public", func(st slotDoc) bool { return st.NAT.Reachability == "public" })
}
