package p2p

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsRelayedAddr(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want bool
	}{
		{name: "direct tcp", addr: "/ip4/127.0.0.1/tcp/4001", want: false},
		{name: "direct quic", addr: "/ip4/127.0.0.1/udp/4001/quic-v1", want: false},
		{name: "through a relay", addr: "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ma.NewMultiaddr(tc.addr)
			require.NoError(t, err)
			assert.Equal(t, tc.want, IsRelayedAddr(m))
		})
	}
}

// TestPeerStatuses: two hosts on loopback see each other connected, directly, with the agent
// version the other announced through identify; a peer only named by the caller is listed as not
// connected, and the host itself never.
func TestPeerStatuses(t *testing.T) {
	server := newTCPHost(t, Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, UserAgent: "test-agent/1"})
	client := newTCPHost(t, Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}})
	_, err := client.Connect(testContext(t), server.VisibleMaddrs()[0].String())
	require.NoError(t, err)
	stranger := newTCPHost(t, Config{ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}}).ID()

	var got []PeerStatus
	require.Eventually(t, func() bool { // identify runs right after the connection is made
		got = client.PeerStatuses([]PeerID{stranger, client.ID(), server.ID()})
		for _, p := range got {
			if p.ID == server.ID() && p.Agent != "" {
				return true
			}
		}
		return false
	}, testTimeout, 10*time.Millisecond)
	require.Len(t, got, 2, "the server once and the stranger; never the host itself")
	byID := map[PeerID]PeerStatus{got[0].ID: got[0], got[1].ID: got[1]}
	s := byID[server.ID()]
	assert.Equal(t, "test-agent/1", s.Agent)
	assert.True(t, s.Connected)
	assert.False(t, s.Relayed)
	require.NotEmpty(t, s.Addrs)
	assert.Contains(t, s.Addrs[0], "/ip4/127.0.0.1/tcp/")
	o := byID[stranger]
	assert.False(t, o.Connected)
	assert.Empty(t, o.Addrs)
	assert.Empty(t, o.Agent)

	var back []PeerStatus
	require.Eventually(t, func() bool {
		back = server.PeerStatuses(nil)
		return len(back) == 1 && back[0].Agent != ""
	}, testTimeout, 10*time.Millisecond)
	assert.Equal(t, client.ID(), back[0].ID)
	assert.Equal(t, DefaultUserAgent, back[0].Agent)
}
