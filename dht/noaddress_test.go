package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// unreachableTransport fails every call to one peer with err, at once, as a Transport whose peer
// routing knows no address for it does (ErrNoAddress) or as one whose dial failed (ErrNoResponse).
type unreachableTransport struct {
	Transport
	peer PeerID
	err  error
}

func (t unreachableTransport) fail(to PeerID) error {
	if to == t.peer {
		return fmt.Errorf("%w: call to %s", t.err, to)
	}
	return nil
}

func (t unreachableTransport) Ping(ctx context.Context, to PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if err := t.fail(to); err != nil {
		return nil, err
	}
	return t.Transport.Ping(ctx, to, req)
}

func (t unreachableTransport) Store(ctx context.Context, to PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if err := t.fail(to); err != nil {
		return nil, err
	}
	return t.Transport.Store(ctx, to, req)
}

func (t unreachableTransport) Find(ctx context.Context, to PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if err := t.fail(to); err != nil {
		return nil, err
	}
	return t.Transport.Find(ctx, to, req)
}

// TestNoAddressIsNotBanned: a FIND that fails because the Transport knows no address for the peer
// (ErrNoAddress) is the node's own missing knowledge, not the peer's failure: the peer is not banned
// and the next lookup tries it again. A peer that did not respond (ErrNoResponse) is banned, as in
// hivemind (issue 13: a fresh node banned every peer its first lookup learned of and stored to its
// initial peer alone).
func TestNoAddressIsNotBanned(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantBanned bool
	}{
		{name: "no address known", err: ErrNoAddress, wantBanned: false},
		{name: "did not respond", err: ErrNoResponse, wantBanned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, 4, func(_ int, cfg *Config) { cfg.BlacklistTime = time.Hour })
			target := s.nodes[2]
			const self = PeerID("fresh")
			tr := unreachableTransport{Transport: s.net.endpoint(self), peer: target.PeerID(), err: tt.err}
			node, err := New(Config{
				Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, ClientMode: true,
				InitialPeers: []PeerID{testPeer(0)},
			}, self, tr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = node.Close() })
			if err := node.Bootstrap(t.Context()); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := node.FindNearestNodes(t.Context(), []ID{target.NodeID()}, 0, true); err != nil {
					t.Fatal(err)
				}
			}
			finds := 0
			for _, c := range s.net.takeCalls() {
				if c.from == self && c.kind == rpcFind && c.to != target.PeerID() {
					finds++
				}
			}
			if finds == 0 {
				t.Fatal("the lookups sent no FIND: the target was never named to the node")
			}
			banned := slices.Contains(node.BannedPeers(), target.PeerID())
			if banned != tt.wantBanned {
				t.Errorf("target banned = %v, want %v (banned: %q)", banned, tt.wantBanned, node.BannedPeers())
			}
		})
	}
}

// TestNoAddressIsItsOwnError: ErrNoAddress and ErrNoResponse are distinct sentinels; the node's
// RPC layer reports a call that could not be sent as unanswered while keeping why.
func TestNoAddressIsItsOwnError(t *testing.T) {
	if errors.Is(ErrNoAddress, ErrNoResponse) || errors.Is(ErrNoResponse, ErrNoAddress) {
		t.Fatal("ErrNoAddress and ErrNoResponse must be distinct")
	}
	s := newTestSwarm(t, 2, nil)
	const self = PeerID("fresh")
	tr := unreachableTransport{Transport: s.net.endpoint(self), peer: s.nodes[1].PeerID(), err: ErrNoAddress}
	node, err := New(Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1, ClientMode: true}, self, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	_, err = node.callFind(t.Context(), s.nodes[1].PeerID(), []ID{RandomID()})
	if !errors.Is(err, ErrNoAddress) || !errors.Is(err, ErrNoResponse) {
		t.Errorf("callFind error %v: want it to wrap ErrNoAddress and ErrNoResponse", err)
	}
}

// switchableTransport fails calls to one peer with err once failing is set, as a Transport whose
// peer forgot its address (or stopped answering) after it was added to the routing table.
type switchableTransport struct {
	unreachableTransport
	failing *atomic.Bool
}

func (t switchableTransport) Find(ctx context.Context, to PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if t.failing.Load() {
		return t.unreachableTransport.Find(ctx, to, req)
	}
	return t.unreachableTransport.Transport.Find(ctx, to, req)
}

// TestNoAddressKeepsTheRoutingTable: a call that could not be sent for want of an address does not
// evict the peer from the routing table, as an unanswered call does (hivemind's
// update_routing_table(responded=False)).
func TestNoAddressKeepsTheRoutingTable(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantInTable bool
	}{
		{name: "no address known", err: ErrNoAddress, wantInTable: true},
		{name: "did not respond", err: ErrNoResponse, wantInTable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSwarm(t, 2, nil)
			target := s.nodes[1]
			const self = PeerID("fresh")
			failing := new(atomic.Bool)
			tr := switchableTransport{
				unreachableTransport: unreachableTransport{Transport: s.net.endpoint(self), peer: target.PeerID(), err: tt.err},
				failing:              failing,
			}
			node, err := New(Config{Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1}, self, tr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = node.Close() })
			if _, err := node.callFind(t.Context(), target.PeerID(), []ID{RandomID()}); err != nil {
				t.Fatal(err)
			}
			inTable := func() bool {
				node.mu.Lock()
				defer node.mu.Unlock()
				_, in := node.table.PeerByID(target.NodeID())
				return in
			}
			if !inTable() {
				t.Fatal("an answering peer was not added to the routing table")
			}
			failing.Store(true)
			if _, err := node.callFind(t.Context(), target.PeerID(), []ID{RandomID()}); !errors.Is(err, tt.err) {
				t.Fatalf("callFind: %v, want %v", err, tt.err)
			}
			if in := inTable(); in != tt.wantInTable {
				t.Errorf("in the routing table after the failure: %v, want %v", in, tt.wantInTable)
			}
		})
	}
}
