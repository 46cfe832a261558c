package ipc

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/hivemind-go/hivemind/proto/ipcpb"
	"github.com/hivemind-go/hivemind/worker"
)

// TestMain doubles as the worker (go-plugin's helper-process pattern): re-executed with the
// handshake cookie, the test binary serves a fake node and never runs the tests; run as the
// parent-helper, it starts a pool and waits to be killed.
func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv(ipcpb.MagicCookieKey); ok {
		if os.Getenv(envTestNode) == "libp2p" {
			worker.Main() // the production worker: a libp2p node with its DHT RPCs measured
			return
		}
		worker.MainWith(worker.ServerConfig{NewNode: newFakeNode})
		return
	}
	if os.Getenv(envParentHelper) != "" {
		os.Exit(parentHelper())
	}
	goleak.VerifyTestMain(m)
}

// quietLogger drops everything below warn unless -v.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}
