package hostile

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// streamBytes writes data on a new stream to name (write side left open) and reads everything the
// target sends until it ends the stream; errDeadline when it does not within streamBound.
func (a *arena) streamBytes(ctx context.Context, name string, data []byte) ([]byte, error) {
	s, err := a.stream(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = s.Reset() }()
	_ = s.SetDeadline(time.Now().Add(streamBound))
	if _, err := s.Write(data); err != nil {
		return nil, nil // reset while writing: ended without a byte
	}
	got, err := io.ReadAll(s)
	if errors.Is(classify(err), errDeadline) {
		return got, errDeadline
	}
	return got, nil
}

// stalled serves the target's node on a second host with a 1 s stream idle timeout, and sends it
// frames that stop half way: each stream must be reset once the timeout passes.
func stalled(ctx context.Context, t *testing.T, a *arena) result {
	h, err := p2p.New(ctx, p2p.Config{StreamIdleTimeout: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = h.Close() }()
	if err := dhtrpc.Serve(h, a.target); err != nil {
		t.Fatal(err)
	}
	if err := a.attacker.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	var res result
	for range 5 {
		res.runs++
		s, err := a.attacker.NewStream(ctx, h.ID(), protocol.ID(dhtrpc.HandleName(dhtrpc.MethodStore)))
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(streamBound))
		start := time.Now()
		_, _ = s.Write(append(uvarint(1000), make([]byte, 100)...))
		_, err = io.ReadAll(s)
		took := time.Since(start)
		_ = s.Reset()
		if errors.Is(classify(err), errDeadline) {
			res.hung++
			continue
		}
		res.rejected++
		res.notes = append(res.notes[:0], fmt.Sprintf("cut-after=%v", took.Round(10*time.Millisecond)))
	}
	return res
}

// maliciousHandler is a DHT peer that lies: it answers FIND with fake neighbours (random node IDs
// on random, unreachable peer IDs), accepts every store and pings back with its node ID.
type maliciousHandler struct {
	id dht.ID
}

func randomPeerID() dht.PeerID {
	b := make([]byte, 34)
	b[0], b[1] = 0x12, 0x20 // sha2-256 multihash of 32 random bytes: a valid, unreachable peer ID
	_, _ = rand.Read(b[2:])
	return dht.PeerID(b)
}

func (m *maliciousHandler) HandlePing(context.Context, dht.PeerID, *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	return &dhtpb.PingResponse{Peer: &dhtpb.NodeInfo{NodeId: m.id.Bytes()}, DhtTime: now(), Available: true}, nil
}

func (m *maliciousHandler) HandleStore(_ context.Context, _ dht.PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	ok := make([]bool, len(req.GetKeys()))
	for i := range ok {
		ok[i] = true
	}
	return &dhtpb.StoreResponse{StoreOk: ok, Peer: &dhtpb.NodeInfo{NodeId: m.id.Bytes()}}, nil
}

func (m *maliciousHandler) HandleFind(_ context.Context, _ dht.PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	resp := &dhtpb.FindResponse{Peer: &dhtpb.NodeInfo{NodeId: m.id.Bytes()}}
	for range req.GetKeys() {
		r := &dhtpb.FindResult{Type: dhtpb.ResultType_NOT_FOUND}
		for range 20 {
			id := dht.RandomID()
			r.NearestNodeIds = append(r.NearestNodeIds, id.Bytes())
			r.NearestPeerIds = append(r.NearestPeerIds, []byte(randomPeerID()))
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// poisonedFind lets a malicious peer into the target's routing table, then makes the target look
// keys up: every lookup must end, and no fake neighbour may enter the table.
func poisonedFind(ctx context.Context, t *testing.T, a *arena) result {
	mh, err := p2p.New(ctx, p2p.Config{InitialPeers: []string{a.thost.VisibleMaddrs()[0].String()}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = mh.Close() }()
	m := &maliciousHandler{id: dht.RandomID()}
	if err := dhtrpc.Serve(mh, m); err != nil {
		t.Fatal(err)
	}
	tr := dhtrpc.NewTransport(mh)
	if _, err := tr.Ping(ctx, dhtrpc.PeerIDFromP2P(a.thost.ID()), &dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{NodeId: m.id.Bytes()}}); err != nil {
		t.Fatal(err)
	}
	var res result
	const bound = 30 * time.Second
	for i := range 10 {
		res.runs++
		cctx, cancel := context.WithTimeout(ctx, bound)
		start := time.Now()
		_, err := a.target.Get(cctx, dht.MustKey(fmt.Sprint("lookup-", i)), dht.GetOptions{})
		cancel()
		if time.Since(start) >= bound {
			res.hung++
			continue
		}
		if err == nil {
			res.rejected++ // the lookup ended on its own, fakes or not
		} else {
			t.Logf("lookup %d: %v", i, err)
		}
	}
	st := a.target.Stats().RoutingTable
	// The table may hold the honest peer and the malicious one, nothing else.
	if st.NodeIDs > 2 {
		res.rejected = 0
		t.Errorf("fake neighbours entered the routing table: %d node IDs", st.NodeIDs)
	}
	res.notes = append(res.notes, fmt.Sprintf("table-node-ids=%d", st.NodeIDs))
	return res
}
