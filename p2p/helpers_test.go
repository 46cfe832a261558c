package p2p

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every operation a test waits for; generous, so slow CI machines pass.
const testTimeout = 20 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testLogger discards logs unless P2P_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("P2P_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// network kinds the servicer tests run on.
const (
	netTCP  = "tcp"
	netMock = "mocknet"
)

// newTCPHost starts a real host on loopback TCP.
func newTCPHost(t *testing.T, cfg Config) *Host {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	h, err := New(testContext(t), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h
}

// hostPair returns a server and a client host connected to each other on the given network kind; cfg
// applies to both.
func hostPair(t *testing.T, kind string, cfg Config) (server, client *Host) {
	t.Helper()
	switch kind {
	case netTCP:
		server, client = newTCPHost(t, cfg), newTCPHost(t, cfg)
		_, err := client.Connect(testContext(t), server.VisibleMaddrs()[0].String())
		require.NoError(t, err)
		return server, client
	case netMock:
		mn := mocknet.New()
		t.Cleanup(func() { require.NoError(t, mn.Close()) })
		if cfg.Logger == nil {
			cfg.Logger = testLogger()
		}
		cfg = cfg.withDefaults()
		var hosts [2]*Host
		for i := range hosts {
			lh, err := mn.GenPeer()
			require.NoError(t, err)
			hosts[i] = wrapHost(lh, nil, cfg)
			t.Cleanup(func() { require.NoError(t, hosts[i].Close()) })
		}
		require.NoError(t, mn.LinkAll())
		require.NoError(t, mn.ConnectAllButSelf())
		return hosts[0], hosts[1]
	default:
		t.Fatalf("unknown network kind %q", kind)
		return nil, nil
	}
}

// forEachNet runs fn as a subtest on loopback TCP and on mocknet.
func forEachNet(t *testing.T, fn func(t *testing.T, kind string)) {
	for _, kind := range []string{netTCP, netMock} {
		t.Run(kind, func(t *testing.T) { fn(t, kind) })
	}
}

// rawStream opens a plain libp2p stream from client to server for name, bypassing the servicer
// machinery, so tests can write exact (or broken) bytes.
func rawStream(t *testing.T, client, server *Host, name string) network.Stream {
	t.Helper()
	s, err := client.lh.NewStream(testContext(t), server.ID(), protocol.ID(name))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Reset() })
	return s
}

// readAllTimeout reads s until EOF or error, failing the test if that takes longer than testTimeout.
func readAllTimeout(t *testing.T, s network.Stream) ([]byte, error) {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(testTimeout))
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(s)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(testTimeout):
		_ = s.Reset()
		t.Fatal("reading the stream timed out")
		return nil, nil
	}
}

// appendFrameHeader re-frames a body (uvarint length prefix), for comparing whole frames.
func appendFrameHeader(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}
