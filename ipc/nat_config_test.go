package ipc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

const natTestPeer = "/ip4/127.0.0.1/tcp/31337/p2p/QmS5QmciTXXnCUCyxud5eWFenUMAmvAWSDa1c7dvdXRMZ7"

func TestNodeConfigNATValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  NodeConfig
		want []string // fields named in the error; none: valid
	}{
		{name: "defaults", cfg: NodeConfig{}},
		{name: "auto-relay from initial peers", cfg: NodeConfig{UseAutoRelay: true, InitialPeers: []string{natTestPeer}}},
		{name: "auto-relay with trusted relays", cfg: NodeConfig{UseAutoRelay: true, TrustedRelays: []string{natTestPeer}}},
		{name: "auto-relay with no relay and no initial peer", cfg: NodeConfig{UseAutoRelay: true}, want: []string{"UseAutoRelay"}},
		{name: "auto-relay with the relay off", cfg: NodeConfig{UseAutoRelay: true, DisableRelay: true, InitialPeers: []string{natTestPeer}},
			want: []string{"UseAutoRelay"}},
		{name: "trusted relays without auto-relay", cfg: NodeConfig{TrustedRelays: []string{natTestPeer}}, want: []string{"TrustedRelays"}},
		{name: "trusted relay without a peer id", cfg: NodeConfig{UseAutoRelay: true, TrustedRelays: []string{"/ip4/127.0.0.1/tcp/1"}},
			want: []string{"TrustedRelays[0]"}},
		{name: "no-listen with host maddrs", cfg: NodeConfig{NoListen: true, HostMaddrs: []string{"/ip4/0.0.0.0/tcp/0"}}, want: []string{"NoListen"}},
		{name: "unknown reachability", cfg: NodeConfig{ForceReachability: "sometimes"}, want: []string{"ForceReachability"}},
		{name: "unknown dht mode", cfg: NodeConfig{DHTMode: "dht_server"}, want: []string{"DHTMode"}},
		{name: "negative relay limits", cfg: NodeConfig{Relay: RelayLimits{MaxCircuits: -1, TimeLimit: -time.Second}},
			want: []string{"Relay.MaxCircuits", "Relay.TimeLimit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			for _, f := range tc.want {
				assert.ErrorContains(t, err, f+":")
			}
		})
	}
}

func TestNodeConfigNATToProto(t *testing.T) {
	cfg := NodeConfig{
		InitialPeers: []string{natTestPeer}, DisableRelayService: true, UseAutoRelay: true, TrustedRelays: []string{natTestPeer},
		DisableAutoNAT: true, NATPortMap: true, ForceReachability: "public", NoListen: true, DHTMode: "auto",
		Relay: RelayLimits{MaxCircuits: 4, MaxReservations: 8, BufferSize: 4096, DataLimit: 1 << 20, TimeLimit: time.Minute},
	}
	p := cfg.toProto()
	assert.False(t, p.GetDisableRelay())
	assert.True(t, p.GetDisableRelayService())
	assert.True(t, p.GetUseAutoRelay())
	assert.Equal(t, []string{natTestPeer}, p.GetTrustedRelays())
	assert.True(t, p.GetDisableAutoNat())
	assert.True(t, p.GetNatPortMap())
	assert.Equal(t, "public", p.GetForceReachability())
	assert.True(t, p.GetNoListen())
	assert.Equal(t, "auto", p.GetDhtMode())
	assert.Equal(t, &ipcpb.RelayLimits{MaxCircuits: 4, MaxReservations: 8, BufferSize: 4096, DataLimit: 1 << 20, TimeLimitSeconds: 60},
		p.GetRelayLimits())
	assert.Nil(t, NodeConfig{}.toProto().GetRelayLimits(), "zero limits travel as none: the worker's defaults")
}

func TestNATFromProto(t *testing.T) {
	assert.Equal(t, "unknown", natFromProto(nil).Reachability, "a worker that reports none")
	n := natFromProto(&ipcpb.NATStatus{
		Reachability: "private", KadMode: "client", Relay: true, AutoRelay: true,
		RelayAddrs: []string{"/ip4/11.0.0.10/tcp/4001/p2p/R/p2p-circuit"}, Reservations: []string{"R"},
		CircuitsOpen: 2, CircuitsRefused: 1, HolePunches: 3, DirectConns: 4, RelayedConns: 1,
	})
	assert.Equal(t, "private", n.Reachability)
	assert.Equal(t, []string{"R"}, n.Reservations)
	assert.Equal(t, 2, n.CircuitsOpen)
	assert.Equal(t, uint64(3), n.HolePunches)
	c := n.clone()
	c.RelayAddrs[0] = "changed"
	assert.NotEqual(t, "changed", n.RelayAddrs[0], "clone is deep")
}
