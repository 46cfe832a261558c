package p2p

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validateCase is a Config and the fields its Validate error must name (none: valid).
type validateCase struct {
	name   string
	cfg    Config
	fields []string // every field named in the error; none means valid
}

// checkValidate runs Validate on each case: it leaves the Config as it was, and accepts it or
// names every field of the case in an error wrapping ErrInvalidConfig.
func checkValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Join(tc.cfg.ListenAddrs, ",")
			err := tc.cfg.Validate()
			assert.Equal(t, before, strings.Join(tc.cfg.ListenAddrs, ","), "Validate does not modify")
			if len(tc.fields) == 0 {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			for _, f := range tc.fields {
				assert.Contains(t, err.Error(), f+":")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	checkValidate(t, []validateCase{
		{name: "zero value is valid", cfg: Config{}},
		{name: "full valid config", cfg: Config{
			ListenAddrs:   []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			AnnounceAddrs: []string{"/ip4/127.0.0.1/tcp/31337"},
			InitialPeers:  []string{"/ip4/127.0.0.1/tcp/31337/p2p/QmS5QmciTXXnCUCyxud5eWFenUMAmvAWSDa1c7dvdXRMZ7"},
			DHTMode:       DHTModeClient, Reachability: ReachabilityPublic,
			MaxMessageSize: 1 << 20, Limits: Limits{ConnManagerLow: 10, ConnManagerHigh: 20},
		}},
		{name: "bad listen addr", cfg: Config{ListenAddrs: []string{"tcp://127.0.0.1:1"}}, fields: []string{"ListenAddrs[0]"}},
		{name: "announce port 0", cfg: Config{AnnounceAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}, fields: []string{"AnnounceAddrs[0]"}},
		{name: "initial peer without /p2p", cfg: Config{InitialPeers: []string{"/ip4/127.0.0.1/tcp/1"}}, fields: []string{"InitialPeers[0]"}},
		{name: "initial peer without address", cfg: Config{InitialPeers: []string{"/p2p/QmS5QmciTXXnCUCyxud5eWFenUMAmvAWSDa1c7dvdXRMZ7"}}, fields: []string{"InitialPeers[0]"}},
		{name: "several bad fields", cfg: Config{
			DHTMode: "sometimes", Reachability: "maybe", MaxMessageSize: -1, StreamIdleTimeout: -time.Second,
			BootstrapTimeout: -1, Limits: Limits{MaxConns: -1, ConnManagerLow: 600},
		}, fields: []string{"DHTMode", "Reachability", "MaxMessageSize", "StreamIdleTimeout", "BootstrapTimeout",
			"Limits.MaxConns", "Limits.ConnManagerLow"}},
		{name: "per-peer memory below one frame", cfg: Config{MaxMessageSize: 8 << 20, Limits: Limits{MaxMemoryPerPeer: 4 << 20}},
			fields: []string{"Limits.MaxMemoryPerPeer"}},
		{name: "identity twice", cfg: Config{IdentityPath: "x", PrivateKey: mustKey(t)}, fields: []string{"IdentityPath"}},
	})
}

func mustKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	return key
}

func TestNewDefaults(t *testing.T) {
	cfg := Config{Logger: testLogger()}
	h := newTCPHost(t, cfg)
	assert.Empty(t, cfg.ListenAddrs, "New does not modify the caller's Config")
	assert.True(t, strings.HasPrefix(h.ID().String(), "12D3KooW"), "fresh Ed25519 identity")
	vis := h.VisibleMaddrs()
	require.NotEmpty(t, vis)
	for _, m := range vis {
		assert.True(t, strings.HasPrefix(m.String(), "/ip4/127.0.0.1/tcp/"), "loopback only by default: %s", m)
		assert.True(t, strings.HasSuffix(m.String(), "/p2p/"+h.ID().String()), "%s", m)
	}
	assert.Equal(t, DefaultMaxMessageSize, h.cfg.MaxMessageSize)
	require.NotNil(t, h.kad, "kad DHT runs for peer routing")
}

func TestNewOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"dht client", Config{DHTMode: DHTModeClient}},
		{"dht auto", Config{DHTMode: DHTModeAuto}},
		{"reachability public", Config{Reachability: ReachabilityPublic}},
		{"reachability private", Config{Reachability: ReachabilityPrivate}},
		{"explicit limits", Config{MaxMessageSize: 1 << 20, StreamIdleTimeout: time.Minute, UserAgent: "test/1",
			Limits: Limits{MaxConns: 64, MaxConnsPerPeer: 2, MaxStreams: 256, MaxStreamsPerPeer: 16,
				MaxMemory: 256 << 20, MaxMemoryPerPeer: 8 << 20, ConnManagerLow: 4, ConnManagerHigh: 8, ConnManagerGrace: time.Second}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := newTCPHost(t, tc.cfg), newTCPHost(t, tc.cfg)
			registerEcho(t, server)
			_, err := client.Connect(testContext(t), server.VisibleMaddrs()[0].String())
			require.NoError(t, err)
			assertStillServing(t, server, client)
		})
	}
	_, err := New(testContext(t), Config{DHTMode: "sometimes"})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestIdentityPathKeepsPeerID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	h1 := newTCPHost(t, Config{IdentityPath: path})
	id := h1.ID()
	assert.True(t, strings.HasPrefix(id.String(), "Qm"), "created as RSA, like hivemind")
	require.NoError(t, h1.Close())
	h2 := newTCPHost(t, Config{IdentityPath: path})
	assert.Equal(t, id, h2.ID(), "same identity file, same peer ID")
}

func TestAnnounceAddrsReplaceTheAnnouncedSet(t *testing.T) {
	h := newTCPHost(t, Config{AnnounceAddrs: []string{"/ip4/127.0.0.1/tcp/31337", "/ip4/127.0.0.2/tcp/31338"}})
	var got []string
	for _, m := range h.VisibleMaddrs() {
		got = append(got, m.String())
	}
	assert.Equal(t, []string{
		"/ip4/127.0.0.1/tcp/31337/p2p/" + h.ID().String(),
		"/ip4/127.0.0.2/tcp/31338/p2p/" + h.ID().String(),
	}, got)
}

func TestQUICOnlyWhenAsked(t *testing.T) {
	h := newTCPHost(t, Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}})
	var quic string
	for _, m := range h.VisibleMaddrs() {
		if strings.Contains(m.String(), "/quic-v1") {
			quic = m.String()
		}
	}
	require.NotEmpty(t, quic, "listening on QUIC")
	client := newTCPHost(t, Config{ListenAddrs: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}})
	_, err := client.Connect(testContext(t), quic)
	require.NoError(t, err)
	require.NoError(t, AddUnaryHandler(h, "Q.rpc_echo", func(_ context.Context, _ PeerID, r num) (num, error) { return r, nil }))
	got, err := CallUnary[num](testContext(t), client, h.ID(), "Q.rpc_echo", n(3))
	require.NoError(t, err)
	assert.Equal(t, int64(3), got.GetValue())

	tcpOnly := newTCPHost(t, Config{})
	for _, m := range tcpOnly.Addrs() {
		assert.NotContains(t, m.String(), "quic")
	}
}

func TestInitialPeers(t *testing.T) {
	a, b := newTCPHost(t, Config{}), newTCPHost(t, Config{})
	dead := newTCPHost(t, Config{})
	deadAddr := dead.VisibleMaddrs()[0].String()
	require.NoError(t, dead.Close()) // its port is now closed

	t.Run("all reachable", func(t *testing.T) {
		h := newTCPHost(t, Config{InitialPeers: []string{a.VisibleMaddrs()[0].String(), b.VisibleMaddrs()[0].String()}})
		assert.ElementsMatch(t, []PeerID{a.ID(), b.ID()}, h.Peers())
		assert.True(t, h.lh.ConnManager().IsProtected(a.ID(), initialPeerTag))
	})
	t.Run("partial failure is logged, not fatal", func(t *testing.T) {
		h := newTCPHost(t, Config{InitialPeers: []string{deadAddr, a.VisibleMaddrs()[0].String()}})
		assert.Equal(t, []PeerID{a.ID()}, h.Peers())
	})
	t.Run("none reachable fails, naming each peer", func(t *testing.T) {
		other := strings.Replace(deadAddr, dead.ID().String(), b.ID().String(), 1) // b's ID at a dead port
		_, err := New(testContext(t), Config{InitialPeers: []string{deadAddr, other}, Logger: testLogger(),
			BootstrapTimeout: 5 * time.Second})
		require.ErrorIs(t, err, ErrBootstrap)
		assert.Contains(t, err.Error(), dead.ID().String())
		assert.Contains(t, err.Error(), b.ID().String())
	})
}

func TestProtect(t *testing.T) {
	h := newTCPHost(t, Config{})
	p := peer.ID("some peer")
	h.Protect(p, "routing-table")
	h.Protect(p, "other")
	assert.True(t, h.Unprotect(p, "routing-table"), "still protected by the other tag")
	assert.False(t, h.Unprotect(p, "other"))
}

func TestCloseIsIdempotentAndRefusesNewWork(t *testing.T) {
	server, client := hostPair(t, netTCP, Config{})
	require.NoError(t, server.Close())
	require.NoError(t, server.Close())
	err := AddUnaryHandler(server, "C.rpc_x", func(_ context.Context, _ PeerID, r num) (num, error) { return r, nil })
	assert.ErrorIs(t, err, ErrClosed)
	_, err = CallUnary[num](testContext(t), server, client.ID(), "C.rpc_x", n(1))
	assert.ErrorIs(t, err, ErrClosed)
}

// TestParsePeerList: initial peers and trusted relays become one AddrInfo per peer, in the order
// the peers first appear, with every address given for each; a bad entry names its field and index.
func TestParsePeerList(t *testing.T) {
	a, b := randomPeerID(t).String(), randomPeerID(t).String()
	tests := []struct {
		name    string
		list    []string
		want    map[string][]string // peer → its addresses, in list order
		order   []string
		wantErr string
	}{
		{name: "none"},
		{name: "one address per peer", list: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + b, "/ip4/127.0.0.1/tcp/2/p2p/" + a},
			order: []string{b, a}, want: map[string][]string{b: {"/ip4/127.0.0.1/tcp/1"}, a: {"/ip4/127.0.0.1/tcp/2"}}},
		{name: "several addresses of one peer",
			list:  []string{"/ip4/127.0.0.1/tcp/1/p2p/" + a, "/ip4/127.0.0.1/tcp/2/p2p/" + b, "/ip4/127.0.0.1/udp/3/quic-v1/p2p/" + a},
			order: []string{a, b}, want: map[string][]string{a: {"/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/udp/3/quic-v1"}, b: {"/ip4/127.0.0.1/tcp/2"}}},
		{name: "an entry without /p2p", list: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + a, "/ip4/127.0.0.1/tcp/2"}, wantErr: "Peers[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			infos, err := parsePeerList("Peers", tt.list)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidConfig)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			var order []string
			for _, info := range infos {
				order = append(order, info.ID.String())
				assert.Equal(t, tt.want[info.ID.String()], multiaddrStrings(info.Addrs), "addresses of %s", info.ID)
			}
			assert.Equal(t, tt.order, order)
		})
	}
}
