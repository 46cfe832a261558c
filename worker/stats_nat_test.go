package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

const natTestPeer = "/ip4/127.0.0.1/tcp/31337/p2p/QmS5QmciTXXnCUCyxud5eWFenUMAmvAWSDa1c7dvdXRMZ7"

func TestHostConfigMapsNATOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   *ipcpb.NodeConfig
		want p2p.Config
	}{
		{name: "hivemind defaults", in: &ipcpb.NodeConfig{}, want: p2p.Config{}},
		{name: "client mode: kad client", in: &ipcpb.NodeConfig{ClientMode: true}, want: p2p.Config{DHTMode: p2p.DHTModeClient}},
		{name: "dht_mode wins over client mode", in: &ipcpb.NodeConfig{ClientMode: true, DhtMode: "auto"}, want: p2p.Config{DHTMode: p2p.DHTModeAuto}},
		{name: "every option", in: &ipcpb.NodeConfig{
			InitialPeers: []string{natTestPeer}, DisableRelayService: true, UseAutoRelay: true, TrustedRelays: []string{natTestPeer},
			DisableAutoNat: true, NatPortMap: true, ForceReachability: "private", NoListen: true,
			RelayLimits: &ipcpb.RelayLimits{MaxCircuits: 4, MaxReservations: 8, BufferSize: 4096, DataLimit: 1 << 20, TimeLimitSeconds: 60},
		}, want: p2p.Config{
			InitialPeers: []string{natTestPeer}, DisableRelayService: true, AutoRelay: true, TrustedRelays: []string{natTestPeer},
			DisableAutoNAT: true, NATPortMap: true, Reachability: p2p.ReachabilityPrivate, NoListen: true,
			Relay: p2p.RelayLimits{MaxCircuits: 4, MaxReservations: 8, BufferSize: 4096, DataLimit: 1 << 20, TimeLimit: time.Minute},
		}},
		{name: "relay off", in: &ipcpb.NodeConfig{DisableRelay: true}, want: p2p.Config{DisableRelay: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hostConfig(tc.in)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBadNATCombinationIsAConfigError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testServer(t)
	_, err := s.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: &ipcpb.NodeConfig{UseAutoRelay: true}})
	require.Error(t, err)
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	assert.Contains(t, err.Error(), "AutoRelay")
}

func TestStatsReportReachability(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testServer(t)
	configure(t, ctx, s, &ipcpb.NodeConfig{ForceReachability: "private", DhtMode: "auto"})
	require.Eventually(t, func() bool {
		st, err := s.Stats(ctx, &ipcpb.StatsRequest{})
		return err == nil && st.GetNat().GetKadMode() == "client"
	}, 20*time.Second, 20*time.Millisecond, "dht_mode auto follows the forced reachability")
	st, err := s.Stats(ctx, &ipcpb.StatsRequest{})
	require.NoError(t, err)
	n := st.GetNat()
	assert.Equal(t, "private", n.GetReachability())
	assert.True(t, n.GetReachabilityForced())
	assert.True(t, n.GetRelay())
	assert.True(t, n.GetRelayService())
	assert.True(t, n.GetAutoNat())
	assert.False(t, n.GetNatPortMap())
	assert.Empty(t, n.GetRelayAddrs())
	assert.Zero(t, n.GetCircuitsOpen())
}
