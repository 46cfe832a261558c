package p2p

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// randomPeerID is the ID of a peer nobody knows.
func randomPeerID(t *testing.T) PeerID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(mustKey(t))
	require.NoError(t, err)
	return id
}

// TestNewMakesInitialPeersRoutable: New returns once its initial peers are usable for peer routing:
// one that serves the kad DHT is already in kad's routing table (kad's own admission runs later,
// asynchronously); one that does not is not added (issue 13).
func TestNewMakesInitialPeersRoutable(t *testing.T) {
	tests := []struct {
		name      string
		entryMode DHTMode
		inTable   bool
	}{
		{name: "kad server", entryMode: DHTModeServer, inTable: true},
		{name: "kad client", entryMode: DHTModeClient, inTable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := newTCPHost(t, Config{DHTMode: tt.entryMode})
			for i := range 5 { // each New races kad's own admission afresh
				h := newTCPHost(t, Config{DHTMode: DHTModeClient, InitialPeers: []string{entry.VisibleMaddrs()[0].String()}})
				got := h.kad.RoutingTable().Find(entry.ID()) == entry.ID()
				assert.Equal(t, tt.inTable, got, "host %d: entry in the kad routing table", i)
				require.NoError(t, h.Close())
			}
		})
	}
}

// TestFirstCallByPeerIDAfterNew: a call to a peer known by its ID alone (as the peers of an rpc_find
// answer are) resolves its addresses through the kad DHT (p2pd's routed host), even the host's very
// first call, made as soon as New returns. Before issue 13's fix kad's routing table was still empty
// then and the call failed at once ("failed to find any peer in table"). The target runs kad as a
// client, so no routing-table refresh of the caller can learn its addresses beforehand: only a
// lookup of its ID finds them.
func TestFirstCallByPeerIDAfterNew(t *testing.T) {
	entry := newTCPHost(t, Config{})
	entryAddr := entry.VisibleMaddrs()[0].String()
	target := newTCPHost(t, Config{DHTMode: DHTModeClient, InitialPeers: []string{entryAddr}})
	registerEcho(t, target)
	for i := range 5 {
		caller := newTCPHost(t, Config{DHTMode: DHTModeClient, InitialPeers: []string{entryAddr}})
		require.Empty(t, caller.lh.Peerstore().Addrs(target.ID()), "the caller knows no address of the target")
		got, err := CallUnary[num](testContext(t), caller, target.ID(), "E.rpc_echo", n(int64(i)))
		require.NoError(t, err, "caller %d", i)
		assert.Equal(t, int64(i), got.GetValue())
		require.NoError(t, caller.Close())
	}
}

// TestAskReferrer: the peer that named a peer is asked for its addresses with a kad FIND_NODE.
func TestAskReferrer(t *testing.T) {
	referrer := newTCPHost(t, Config{})
	referrerAddr := referrer.VisibleMaddrs()[0].String()
	target := newTCPHost(t, Config{DHTMode: DHTModeClient, InitialPeers: []string{referrerAddr}})
	noKad := newTCPHost(t, Config{DHTMode: DHTModeClient, InitialPeers: []string{referrerAddr}})
	caller := newTCPHost(t, Config{DHTMode: DHTModeClient, InitialPeers: []string{referrerAddr, noKad.VisibleMaddrs()[0].String()}})

	tests := []struct {
		name     string
		referrer PeerID
		about    PeerID
		check    func(t *testing.T, info peer.AddrInfo, err error)
	}{
		{name: "the referrer knows the peer", referrer: referrer.ID(), about: target.ID(),
			check: func(t *testing.T, info peer.AddrInfo, err error) {
				require.NoError(t, err)
				assert.Equal(t, target.ID(), info.ID)
				assert.Subset(t, multiaddrStrings(info.Addrs), multiaddrStrings(target.Addrs()))
			}},
		{name: "the referrer does not know the peer", referrer: referrer.ID(), about: randomPeerID(t),
			check: func(t *testing.T, _ peer.AddrInfo, err error) {
				assert.ErrorIs(t, err, routing.ErrNotFound)
			}},
		{name: "the referrer does not serve kad", referrer: noKad.ID(), about: target.ID(),
			check: func(t *testing.T, _ peer.AddrInfo, err error) {
				assert.Error(t, err)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := caller.resolver.askReferrer(testContext(t), tt.referrer, tt.about)
			tt.check(t, info, err)
		})
	}
}

// TestNoAddressIsItsOwnError: a peer nobody can resolve fails with ErrNoAddress, naming what was
// asked; a call whose own context ended first fails with the context's error instead.
func TestNoAddressIsItsOwnError(t *testing.T) {
	entry := newTCPHost(t, Config{})
	caller := newTCPHost(t, Config{InitialPeers: []string{entry.VisibleMaddrs()[0].String()}})
	unknown := randomPeerID(t)
	caller.NoteReferrals(entry.ID(), []PeerID{unknown})

	_, err := caller.resolver.FindPeer(testContext(t), unknown)
	require.ErrorIs(t, err, ErrNoAddress)
	assert.Contains(t, err.Error(), "kad dht")
	assert.Contains(t, err.Error(), "referrer "+entry.ID().String())

	_, err = CallUnary[num](testContext(t), caller, unknown, "E.rpc_echo", n(1))
	assert.ErrorIs(t, err, ErrNoAddress)

	ctx, cancel := context.WithCancel(testContext(t))
	cancel()
	_, err = caller.resolver.FindPeer(ctx, unknown)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrNoAddress)
}

// TestNoteReferralsSkipsSelf: a host is never recorded as a peer to resolve.
func TestNoteReferralsSkipsSelf(t *testing.T) {
	h := newTCPHost(t, Config{})
	referrer, other := randomPeerID(t), randomPeerID(t)
	h.NoteReferrals(referrer, []PeerID{h.ID(), other})
	assert.Empty(t, h.resolver.refs.of(h.ID()))
	assert.Equal(t, []PeerID{referrer}, h.resolver.refs.of(other))
}

func TestReferralBook(t *testing.T) {
	p := func(i int) peer.ID { return peer.ID(fmt.Sprintf("peer-%d", i)) }
	type note struct {
		referrer peer.ID
		peers    []peer.ID
	}
	tests := []struct {
		name     string
		capacity int
		notes    []note
		want     map[peer.ID][]peer.ID // peer → referrers; nil: forgotten
	}{
		{name: "most recent referrer first", capacity: 8,
			notes: []note{{p(1), []peer.ID{p(9)}}, {p(2), []peer.ID{p(9)}}, {p(1), []peer.ID{p(9)}}},
			want:  map[peer.ID][]peer.ID{p(9): {p(1), p(2)}}},
		{name: "at most referrersPerPeer", capacity: 8,
			notes: []note{{p(1), []peer.ID{p(9)}}, {p(2), []peer.ID{p(9)}}, {p(3), []peer.ID{p(9)}}, {p(4), []peer.ID{p(9)}}},
			want:  map[peer.ID][]peer.ID{p(9): {p(4), p(3), p(2)}}},
		{name: "a peer does not refer itself", capacity: 8,
			notes: []note{{p(1), []peer.ID{p(1), p(2), ""}}},
			want:  map[peer.ID][]peer.ID{p(1): nil, p(2): {p(1)}, "": nil}},
		{name: "the peer noted first is forgotten first", capacity: 2,
			notes: []note{{p(1), []peer.ID{p(7)}}, {p(1), []peer.ID{p(8)}}, {p(2), []peer.ID{p(7)}}, {p(1), []peer.ID{p(9)}}},
			want:  map[peer.ID][]peer.ID{p(7): nil, p(8): {p(1)}, p(9): {p(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newReferralBook(tt.capacity)
			for _, n := range tt.notes {
				b.note(n.referrer, n.peers)
			}
			for p, want := range tt.want {
				assert.Equal(t, want, b.of(p), "referrers of %q", p)
			}
			assert.LessOrEqual(t, len(b.by), tt.capacity)
			assert.Len(t, b.order, len(b.by))
		})
	}
}

func TestReadKadMessage(t *testing.T) {
	valid, err := proto.Marshal(kadpb.NewMessage(kadpb.Message_FIND_NODE, []byte("key"), 0))
	require.NoError(t, err)
	tests := []struct {
		name    string
		in      []byte
		wantErr error
	}{
		{name: "valid", in: appendFrameHeader(valid)},
		{name: "over the cap", in: binary.AppendUvarint(nil, maxKadMessage+1), wantErr: ErrFrameTooLarge},
		{name: "not a kad message", in: appendFrameHeader([]byte{0xff, 0xff, 0xff}), wantErr: ErrDecode},
		{name: "truncated", in: appendFrameHeader(valid)[:4], wantErr: ErrTruncatedFrame},
		{name: "no reply at all", in: nil, wantErr: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := readKadMessage(bytes.NewReader(tt.in))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []byte("key"), m.GetKey())
		})
	}
}

// FuzzReadKadMessage: a referrer's reply, whatever its bytes, is read or refused without a panic
// and without allocating past the cap.
func FuzzReadKadMessage(f *testing.F) {
	valid, _ := proto.Marshal(&kadpb.Message{Type: kadpb.Message_FIND_NODE, CloserPeers: []*kadpb.Message_Peer{{Id: []byte("x"), Addrs: [][]byte{{1, 2}}}}})
	f.Add(appendFrameHeader(valid))
	f.Add(binary.AppendUvarint(nil, 1<<40))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := readKadMessage(bytes.NewReader(in))
		if err == nil {
			_ = kadpb.PBPeersToPeerInfos(m.GetCloserPeers())
		}
	})
}
