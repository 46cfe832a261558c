package ipc

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
	"github.com/hivemind-go/hivemind/worker"
)

// BenchmarkGetLocalKeyInProcess: a Get of a key a worker's (fake) node holds, through a worker.Server
// served on a unix socket in this process (no go-plugin, no TLS, no second process): on the open
// streams of a WorkerConn, next to the unary call. test/e2e's BenchmarkGetLocalKey measures the same
// against a worker process.
func BenchmarkGetLocalKeyInProcess(b *testing.B) {
	ctx := context.Background()
	srv := worker.NewServer(worker.ServerConfig{NewNode: newFakeNode, Logger: testLogger(b)})
	defer srv.Close(ctx)
	if _, err := srv.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion}); err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(b.TempDir(), "worker.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	if err := (&worker.Plugin{Worker: srv}).GRPCServer(nil, gs); err != nil {
		b.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()
	cc, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()

	key := dht.RawKey([]byte("bench"))
	if _, err := NewClient(cc, nil).Store(ctx, dht.StoreItem{Key: key, Value: rawMsgpack(b, "value"), Expiration: 2e9}); err != nil {
		b.Fatal(err)
	}
	wc := NewWorkerConn(cc)
	defer wc.closeStreams()
	for _, bc := range []struct {
		name string
		c    *Client
	}{{"stream", NewClient(wc, nil)}, {"unary", NewClient(cc, nil)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, err := bc.c.Get(ctx, key, dht.GetOptions{}); err != nil || r == nil {
					b.Fatalf("get: %v %v", r, err)
				}
			}
		})
	}
}
