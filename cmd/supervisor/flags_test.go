package main

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

const flagsTestPeer = "/ip4/127.0.0.1/tcp/1/p2p/QmVrH6p1osxWeQTcffq483hdda8Ypx93dEW3NWkurYJJLv"

// TestNATFlagsHelp: dht --help lists the NAT flags under hivemind's names with hivemind's defaults
// (but --nat-port-map, which says why it is off).
func TestNATFlagsHelp(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"dht", "--help"}, &out, &errb)
	require.Equal(t, 0, cli.ExitCode(prog, err, &errb))
	help := out.String() + errb.String()
	for _, want := range []string{
		"-use-relay\n", "(hivemind use_relay) (default true)",
		"-use-auto-relay\n", "(hivemind use_auto_relay)",
		"-trusted-relays value", "(hivemind trusted_relays)",
		"-auto-nat\n", "(hivemind auto_nat) (default true)",
		"-nat-port-map\n", "which hivemind turns on",
		"-force-reachability string", "(hivemind force_reachability)",
		"-no-listen\n", "(hivemind no_listen)",
		"-dht-mode string", "(hivemind dht_mode)",
		"-relay-max-circuits int", "(default 16)",
		"-relay-max-reservations int", "(default 128)",
		"-relay-buffer-size int", "(default 16777216)",
		"-relay-data-limit int", "(default 4294967296)",
		"-relay-time-limit duration", "(default 30m0s)",
	} {
		assert.Contains(t, help, want)
	}
}

func TestNATFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the usage error
	}{
		{name: "deprecated use-relay-hop", args: []string{"dht", "--use-relay-hop"}, want: "--use-relay-hop is deprecated"},
		{name: "deprecated use-relay-discovery with a value", args: []string{"dht", "--use-relay-discovery=false"}, want: "--use-relay-discovery is deprecated"},
		{name: "deprecated relay-hop-limit on run", args: []string{"run", "--relay-hop-limit"}, want: "--relay-hop-limit is deprecated"},
		{name: "deprecated quic on store", args: []string{"store", "k", "1", "--quic", "--initial-peers", flagsTestPeer}, want: "--quic is deprecated"},
		{name: "auto-relay with no relay and no initial peer", args: []string{"dht", "--use-auto-relay"}, want: "UseAutoRelay"},
		{name: "auto-relay without the relay", args: []string{"dht", "--use-auto-relay", "--use-relay=false", "--initial-peers", flagsTestPeer}, want: "UseAutoRelay"},
		{name: "trusted relays without auto-relay", args: []string{"dht", "--trusted-relays", flagsTestPeer}, want: "TrustedRelays"},
		{name: "unknown reachability", args: []string{"run", "--force-reachability", "maybe"}, want: "ForceReachability"},
		{name: "unknown dht mode", args: []string{"dht", "--dht-mode", "dht_server"}, want: "DHTMode"},
		{name: "unknown dht mode on get", args: []string{"get", "k", "--dht-mode", "dht_server", "--initial-peers", flagsTestPeer}, want: "DHTMode"},
		{name: "unknown dht mode on store", args: []string{"store", "k", "1", "--dht-mode", "dht_server", "--initial-peers", flagsTestPeer}, want: "DHTMode"},
		{name: "no-listen with host maddrs", args: []string{"dht", "--no-listen", "--host-maddrs", "/ip4/0.0.0.0/tcp/0"}, want: "NoListen"},
		{name: "zero relay limit", args: []string{"dht", "--relay-max-circuits", "0"}, want: "must be positive"},
		{name: "get with auto-relay and no relay", args: []string{"get", "k", "--use-auto-relay", "--use-relay=false", "--initial-peers", flagsTestPeer}, want: "UseAutoRelay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			require.Equal(t, 2, cli.ExitCode(prog, err, &errb), "err %v", err)
			assert.Contains(t, errb.String(), tc.want)
		})
	}
}

func TestNATFlagsNodeConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want func(*ipc.NodeConfig)
	}{
		{name: "hivemind defaults", args: nil, want: func(*ipc.NodeConfig) {}},
		{name: "every flag", args: []string{
			"--use-auto-relay", "--trusted-relays", flagsTestPeer, "--auto-nat=false", "--nat-port-map",
			"--force-reachability", "private", "--no-listen", "--dht-mode", "auto", "--relay-service=false",
			"--relay-max-circuits", "4", "--relay-max-reservations", "8", "--relay-buffer-size", "4096",
			"--relay-data-limit", "1048576", "--relay-time-limit", "1m",
		}, want: func(c *ipc.NodeConfig) {
			c.UseAutoRelay, c.TrustedRelays, c.DisableAutoNAT, c.NATPortMap = true, []string{flagsTestPeer}, true, true
			c.ForceReachability, c.NoListen, c.DHTMode, c.DisableRelayService = "private", true, "auto", true
			c.Relay = ipc.RelayLimits{MaxCircuits: 4, MaxReservations: 8, BufferSize: 4096, DataLimit: 1 << 20, TimeLimit: time.Minute}
		}},
		{name: "relay off", args: []string{"--use-relay=false"}, want: func(c *ipc.NodeConfig) { c.DisableRelay = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFlagSet("t", "", "", io.Discard)
			var nf nodeFlags
			nf.register(fs)
			require.NoError(t, cli.ParseFlags(fs, tc.args))
			got, err := nf.nodeConfig()
			require.NoError(t, err)
			want := ipc.NodeConfig{Relay: ipc.RelayLimits{MaxCircuits: 16, MaxReservations: 128, BufferSize: 16 << 20, DataLimit: 4 << 30, TimeLimit: 30 * time.Minute}}
			tc.want(&want)
			assert.Equal(t, want, got)
		})
	}
}
