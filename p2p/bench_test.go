package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

const rawEchoProtocol = "/bench/raw-echo/1.0.0"

// BenchmarkUnaryVsRawEcho measures, in the same run over loopback TCP, a typed unary call round trip
// (envelope, handler dispatch, protobuf both ways) against the baseline it is built on: a raw libp2p
// echo of the same bytes on a new stream per call. It reports both and their ratio (target ≤ 1.5×;
// never asserted).
func BenchmarkUnaryVsRawEcho(b *testing.B) {
	server, client := benchPair(b)
	req := &dhtpb.PingRequest{Peer: &dhtpb.NodeInfo{NodeId: make([]byte, 20)}, Validate: true}
	reqBytes, err := marshal(req)
	require.NoError(b, err)
	resp := &dhtpb.PingResponse{Peer: &dhtpb.NodeInfo{NodeId: make([]byte, 20)}, DhtTime: 1.7e9, Available: true}
	require.NoError(b, AddUnaryHandler(server, "DHTProtocol.rpc_ping", func(context.Context, PeerID, *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
		return resp, nil
	}))
	server.lh.SetStreamHandler(rawEchoProtocol, func(s network.Stream) {
		body, res, err := readDelimited(s, DefaultMaxMessageSize, nil)
		if err != nil {
			_ = s.Reset()
			return
		}
		res.release()
		_, _ = s.Write(appendFrameHeader(body))
		_ = s.Close()
	})
	ctx := context.Background()
	unary := func() {
		if _, err := CallUnary[*dhtpb.PingResponse](ctx, client, server.ID(), "DHTProtocol.rpc_ping", req); err != nil {
			b.Fatal(err)
		}
	}
	raw := func() {
		s, err := client.lh.NewStream(ctx, server.ID(), protocol.ID(rawEchoProtocol))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Write(appendFrameHeader(reqBytes)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := readDelimited(s, DefaultMaxMessageSize, nil); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
	for range 20 { // warm up connections, identify and the peerstore's protocol cache
		unary()
		raw()
	}
	b.ResetTimer()
	var unaryTime, rawTime time.Duration
	for i := 0; i < b.N; i++ { // interleaved, so both see the same machine load
		start := time.Now()
		unary()
		mid := time.Now()
		raw()
		unaryTime += mid.Sub(start)
		rawTime += time.Since(mid)
	}
	b.StopTimer()
	b.ReportMetric(float64(unaryTime.Nanoseconds())/float64(b.N), "unary-ns/op")
	b.ReportMetric(float64(rawTime.Nanoseconds())/float64(b.N), "raw-echo-ns/op")
	b.ReportMetric(float64(unaryTime)/float64(rawTime), "unary/raw-ratio")
}

func benchPair(b *testing.B) (server, client *Host) {
	b.Helper()
	start := func() *Host {
		h, err := New(context.Background(), Config{Logger: testLogger()})
		require.NoError(b, err)
		b.Cleanup(func() { _ = h.Close() })
		return h
	}
	server, client = start(), start()
	_, err := client.Connect(context.Background(), server.VisibleMaddrs()[0].String())
	require.NoError(b, err)
	return server, client
}
