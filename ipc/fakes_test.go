package ipc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/worker"
)

// envTestNode selects the behaviour of the fake node in a re-executed test worker; "libp2p" runs the
// production worker instead (see TestMain).
const envTestNode = "IPC_TEST_NODE"

// fakeNode is an in-memory worker.Node: a map of records (written to the worker's Persister, and
// loaded from it, like a dht.Node's storage), an identity kept in the identity file (so restarts
// keep the peer ID), and keys that trigger errors:
//   - a raw key "err:<sentinel>" makes Get fail with that dht sentinel;
//   - a raw key "hang" makes Get block until its ctx ends;
//   - a raw key "reject" is never stored (a validator's rejection).
type fakeNode struct {
	id     dht.ID
	peer   string
	maddrs []string

	hanging atomic.Int32 // Get("hang") calls in flight, reported as ConnectedPeers

	persister dht.Persister // nil: nothing persisted

	mu   sync.Mutex
	recs map[dht.ID]dht.Result
}

var fakeSentinels = map[string]error{
	"invalid-key":   dht.ErrInvalidKey,
	"invalid-value": dht.ErrInvalidValue,
	"invalid-arg":   dht.ErrInvalidArgument,
	"no-response":   dht.ErrNoResponse,
	"shutdown":      dht.ErrShutdown,
	"too-large":     dht.ErrMessageTooLarge,
	"internal":      errors.New("something odd"),
}

func newFakeNode(ctx context.Context, spec worker.NodeSpec) (worker.Node, error) {
	switch os.Getenv(envTestNode) {
	case "fail":
		return nil, fmt.Errorf("%w: none of the initial peers responded to a ping", dht.ErrBootstrapFailed)
	case "crash":
		os.Exit(7)
	}
	peer := ""
	if path := spec.Config.GetIdentityPath(); path != "" {
		if b, err := os.ReadFile(path); err == nil {
			peer = strings.TrimSpace(string(b))
		}
		if peer == "" {
			peer = "fake-" + randHex(8)
			if err := os.WriteFile(path, []byte(peer+"\n"), 0o600); err != nil {
				return nil, err
			}
		}
	} else {
		peer = "fake-" + randHex(8)
	}
	id := spec.NodeID
	if id == (dht.ID{}) {
		id = dht.RandomID()
	}
	n := &fakeNode{
		id:        id,
		peer:      peer,
		maddrs:    []string{"/ip4/127.0.0.1/tcp/1/p2p/" + peer},
		persister: spec.Persister,
		recs:      map[dht.ID]dht.Result{},
	}
	if n.persister != nil {
		if err := n.persister.Load(func(r dht.PersistedRecord) {
			n.recs[r.Key] = dht.Result{Value: r.Value, Expiration: r.Expiration}
		}); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (n *fakeNode) Get(ctx context.Context, key dht.Key, _ dht.GetOptions) (*dht.Result, error) {
	if key.Raw {
		s := string(key.Data)
		if name, ok := strings.CutPrefix(s, "err:"); ok {
			return nil, fmt.Errorf("fake get: %w", fakeSentinels[name])
		}
		if s == "hang" {
			n.hanging.Add(1)
			defer n.hanging.Add(-1)
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.recs[key.ID()]
	if !ok {
		return nil, nil
	}
	return &r, nil
}

func (n *fakeNode) GetMany(ctx context.Context, keys []dht.Key, opts dht.GetOptions) ([]*dht.Result, error) {
	out := make([]*dht.Result, len(keys))
	for i, k := range keys {
		r, err := n.Get(ctx, k, opts)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func (n *fakeNode) Store(_ context.Context, item dht.StoreItem) (dht.StoreResult, error) {
	if item.Key.Raw && string(item.Key.Data) == "reject" {
		return dht.StoreResult{Replicas: []dht.ReplicaResult{{Peer: dht.PeerID(n.peer), Node: n.id}}}, nil
	}
	raw, ok := item.Value.(msgpack.Raw)
	if !ok {
		return dht.StoreResult{}, fmt.Errorf("%w: want msgpack.Raw", dht.ErrInvalidValue)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	id := item.Key.ID()
	old, ok := n.recs[id]
	if ok && old.Expiration >= item.Expiration {
		return dht.StoreResult{}, nil
	}
	if n.persister != nil {
		err := n.persister.Persist([]dht.PersistedRecord{{Key: id, Kind: dht.ValueRegular, Value: raw, Expiration: item.Expiration}})
		if err != nil {
			return dht.StoreResult{}, nil
		}
	}
	n.recs[id] = dht.Result{Value: raw, Expiration: item.Expiration}
	return dht.StoreResult{Stored: true, Replicas: []dht.ReplicaResult{{Peer: dht.PeerID(n.peer), Node: n.id, Accepted: true}}}, nil
}

func (n *fakeNode) StoreMany(ctx context.Context, items []dht.StoreItem) ([]dht.StoreResult, error) {
	out := make([]dht.StoreResult, len(items))
	for i, it := range items {
		r, err := n.Store(ctx, it)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func (n *fakeNode) NodeID() dht.ID                                        { return n.id }
func (n *fakeNode) PeerID() (dht.PeerID, string)                          { return dht.PeerID(n.peer), n.peer }
func (n *fakeNode) Close(context.Context) error                           { return nil }
func (n *fakeNode) VisibleMaddrs(context.Context, bool) ([]string, error) { return n.maddrs, nil }

// AddPeers pretends every peer answered; a maddr without /p2p/ is malformed.
func (n *fakeNode) AddPeers(_ context.Context, maddrs []string) (worker.AddPeersResult, error) {
	for i, m := range maddrs {
		if !strings.Contains(m, "/p2p/") {
			return worker.AddPeersResult{}, fmt.Errorf("%w: maddrs[%d] %q: no /p2p/<peer id>", worker.ErrInvalidConfig, i, m)
		}
	}
	return worker.AddPeersResult{Answered: len(maddrs), ConnectErrs: make([]error, len(maddrs))}, nil
}

func (n *fakeNode) Stats() worker.NodeStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return worker.NodeStats{RoutingTableSize: 1, StoredKeys: len(n.recs), ConnectedPeers: int(n.hanging.Load())}
}

// inprocLauncher serves workers inside the test process through go-plugin's test mode and reattach.
type inprocLauncher struct {
	newNode worker.NodeFactory
}

func (l inprocLauncher) Launch(ctx context.Context, spec LaunchSpec) (Process, error) {
	logger := spec.Logger
	if logger == nil {
		logger = slog.Default()
	}
	srv := worker.NewServer(worker.ServerConfig{NewNode: l.newNode, Logger: logger.With("worker", spec.Name)})
	sctx, stopServe := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: worker.Handshake(),
		Plugins:         worker.PluginSet(srv),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		Test:            &plugin.ServeTestConfig{Context: sctx, ReattachConfigCh: reattach, CloseCh: closed},
	})
	var rc *plugin.ReattachConfig
	select {
	case rc = <-reattach:
	case <-ctx.Done():
		stopServe()
		<-closed
		return nil, ctx.Err()
	}
	p := &inprocProcess{srv: srv, stopServe: stopServe, closed: closed, done: make(chan struct{})}
	rc.ReattachFunc = func() (runner.AttachedRunner, error) { return inprocAttached{done: p.done}, nil }
	p.client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake(),
		Plugins:          PluginSet(),
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
	})
	cc, err := dispenseConn(p.client)
	if err != nil {
		p.exit(nil)
		return nil, err
	}
	p.cc = cc
	go func() {
		select {
		case <-srv.Done(): // Shutdown RPC: the "process" exits cleanly
			p.exit(nil)
		case <-p.done:
		}
	}()
	return p, nil
}

type inprocProcess struct {
	srv       *worker.Server
	stopServe context.CancelFunc
	closed    <-chan struct{}
	client    *plugin.Client
	cc        *grpc.ClientConn

	once    sync.Once
	reason  error
	done    chan struct{}
	release sync.Once
}

func (p *inprocProcess) exit(reason error) {
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.srv.Close(ctx)
		p.stopServe()
		<-p.closed
		p.reason = reason
		close(p.done)
	})
}

func (p *inprocProcess) Conn() grpc.ClientConnInterface { return p.cc }
func (p *inprocProcess) PID() int                       { return 0 }
func (p *inprocProcess) Done() <-chan struct{}          { return p.done }
func (p *inprocProcess) ExitReason() error              { return p.reason }

// Signal exits asynchronously: exit waits for the in-process server to close.
func (p *inprocProcess) Signal(sig syscall.Signal) error {
	return fakeSignal(p.done, sig, func(reason error) { go p.exit(reason) })
}

// fakeSignal is how a fake worker process takes a signal: os.ErrProcessDone once done is closed;
// otherwise SIGKILL makes it exit as killed, SIGTERM cleanly, and other signals do nothing.
func fakeSignal(done <-chan struct{}, sig syscall.Signal, exit func(reason error)) error {
	select {
	case <-done:
		return os.ErrProcessDone
	default:
	}
	switch sig {
	case syscall.SIGKILL:
		exit(errors.New("signal: killed"))
	case syscall.SIGTERM:
		exit(nil)
	}
	return nil
}

func (p *inprocProcess) Release() {
	p.release.Do(func() {
		p.exit(errors.New("signal: killed"))
		if p.client != nil {
			if rpc, err := p.client.Client(); err == nil {
				_ = rpc.Close()
			}
			p.client.Kill()
		}
	})
}

// inprocAttached is go-plugin's view of an in-process worker: it "exits" when done is closed.
type inprocAttached struct{ done <-chan struct{} }

func (a inprocAttached) Wait(context.Context) error                          { <-a.done; return nil }
func (a inprocAttached) Kill(context.Context) error                          { return nil }
func (a inprocAttached) ID() string                                          { return "in-process" }
func (a inprocAttached) PluginToHost(n, addr string) (string, string, error) { return n, addr, nil }
func (a inprocAttached) HostToPlugin(n, addr string) (string, string, error) { return n, addr, nil }
