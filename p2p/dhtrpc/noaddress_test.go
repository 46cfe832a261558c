package dhtrpc

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransportNoAddress: a call to a peer that peer routing cannot resolve fails with
// dht.ErrNoAddress, not dht.ErrNoResponse (nothing reached the peer: the node must not ban it); when
// the call's own context ended first it is an ordinary unanswered call.
func TestTransportNoAddress(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	require.NoError(t, err)
	unknown, err := peer.IDFromPrivateKey(key)
	require.NoError(t, err)
	tests := []struct {
		name      string
		ctx       func(t *testing.T) context.Context
		noAddress bool
	}{
		{name: "no address known", noAddress: true, ctx: func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			t.Cleanup(cancel)
			return ctx
		}},
		{name: "the call's context ended", noAddress: false, ctx: func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := newHost(t)
			client, err := p2p.New(t.Context(), p2p.Config{
				ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, InitialPeers: []string{entry.VisibleMaddrs()[0].String()}, Logger: quiet,
			})
			require.NoError(t, err)
			t.Cleanup(func() { _ = client.Close() })
			_, err = NewTransport(client).Find(tt.ctx(t), PeerIDFromP2P(unknown), &dhtpb.FindRequest{Keys: [][]byte{{1}}})
			require.Error(t, err)
			assert.Equal(t, tt.noAddress, errors.Is(err, dht.ErrNoAddress), "errors.Is(%v, dht.ErrNoAddress)", err)
			assert.Equal(t, !tt.noAddress, errors.Is(err, dht.ErrNoResponse), "errors.Is(%v, dht.ErrNoResponse)", err)
			if tt.noAddress {
				assert.ErrorIs(t, err, p2p.ErrNoAddress)
			}
		})
	}
}

// TestNearestPeers: the peers a FIND answer names are noted as referrals once each, in the order
// they first appear across its results, and an ID that is not a peer ID is skipped.
func TestNearestPeers(t *testing.T) {
	ids := make([]p2p.PeerID, 3)
	for i := range ids {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		require.NoError(t, err)
		ids[i], err = peer.IDFromPrivateKey(key)
		require.NoError(t, err)
	}
	raw := func(i int) []byte { return []byte(ids[i]) }
	tests := []struct {
		name    string
		results [][][]byte // each result's nearest_peer_ids
		want    []p2p.PeerID
	}{
		{name: "no results"},
		{name: "one result", results: [][][]byte{{raw(0), raw(1)}}, want: ids[:2]},
		{name: "results sharing neighbours", results: [][][]byte{{raw(1), raw(0)}, {raw(0), raw(2), raw(1)}, {raw(2)}},
			want: []p2p.PeerID{ids[1], ids[0], ids[2]}},
		{name: "invalid IDs skipped", results: [][][]byte{{[]byte("not a peer id"), raw(2), {}}}, want: ids[2:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &dhtpb.FindResponse{}
			for _, nearest := range tt.results {
				resp.Results = append(resp.Results, &dhtpb.FindResult{NearestPeerIds: nearest})
			}
			assert.Equal(t, tt.want, nearestPeers(resp))
		})
	}
}
