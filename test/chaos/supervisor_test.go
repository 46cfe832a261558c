package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/test/chaos/report"
)

// supervisorProc is a running `supervisor run` whose stdout is parsed as it comes.
type supervisorProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	pids   map[string]int      // worker name -> pid, from "<name> ready: pid N, peer P"
	peers  map[string]string   // worker name -> peer ID
	maddrs map[string][]string // worker name -> multiaddrs
	ready  chan struct{}       // closed at "N workers ready"
	exited chan struct{}
}

var readyLine = regexp.MustCompile(`^(\S+) ready: pid (\d+), peer (\S+)$`)

// startSupervisor runs the supervisor binary on stateDir with runID's mark in its environment (its
// workers inherit it) and waits until its workers are ready.
func startSupervisor(ctx context.Context, t *testing.T, stateDir, runID string, workers int) *supervisorProc {
	t.Helper()
	p := &supervisorProc{
		pids: map[string]int{}, peers: map[string]string{}, maddrs: map[string][]string{},
		ready: make(chan struct{}), exited: make(chan struct{}),
	}
	p.cmd = exec.Command(supervisorBin, "run", "--workers", strconv.Itoa(workers), "--state-dir", stateDir,
		"--admin-addr", "127.0.0.1:0", "--log-level", "error", "--health-interval", "500ms")
	p.cmd.Env = append(os.Environ(), envRun+"="+runID)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(out)
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	select {
	case <-p.ready:
	case <-p.exited:
		t.Fatalf("supervisor exited before its workers were ready: %v", p.cmd.ProcessState)
	case <-ctx.Done():
		t.Fatal("supervisor workers not ready before the deadline")
	}
	// The summary line can come before the last worker's "ready" lines (the pool is ready when
	// every slot runs; each slot's ready event follows).
	complete := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.peers) < workers {
			return false
		}
		for name := range p.peers {
			if len(p.maddrs[name]) == 0 {
				return false
			}
		}
		return true
	}
	if !waitUntil(ctx, 30*time.Second, complete) {
		t.Fatalf("supervisor printed the addresses of %d of %d workers", len(p.peers), workers)
	}
	return p
}

func (p *supervisorProc) read(out io.Reader) {
	defer close(p.exited)
	defer func() { _ = p.cmd.Wait() }()
	sc := bufio.NewScanner(out)
	cur := ""
	readied := false
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		if m := readyLine.FindStringSubmatch(line); m != nil {
			cur = m[1]
			p.pids[cur], _ = strconv.Atoi(m[2])
			p.peers[cur] = m[3]
			p.maddrs[cur] = nil
		} else if strings.HasPrefix(line, "  /") && cur != "" {
			p.maddrs[cur] = append(p.maddrs[cur], strings.TrimSpace(line))
		}
		p.mu.Unlock()
		if strings.HasSuffix(line, "workers ready. Query them from another terminal:") && !readied {
			readied = true
			close(p.ready)
		}
	}
	_, _ = io.Copy(io.Discard, out)
}

// snapshot returns the workers' pids, peer IDs and one multiaddr each.
func (p *supervisorProc) snapshot() (pids []int, peers map[string]string, addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	peers = map[string]string{}
	for name, pid := range p.pids {
		pids = append(pids, pid)
		peers[name] = p.peers[name]
		if len(p.maddrs[name]) > 0 {
			addrs = append(addrs, p.maddrs[name][0])
		}
	}
	return pids, peers, addrs
}

// clientNode is an in-process client-mode DHT node on a loopback host: a peer from outside the
// supervisor's swarm.
type clientNode struct {
	host *p2p.Host
	node *dhtrpc.Node
}

func newClientNode(ctx context.Context, addrs []string) (*clientNode, error) {
	quiet := slog.New(slog.DiscardHandler)
	host, err := p2p.New(ctx, p2p.Config{InitialPeers: addrs, DHTMode: p2p.DHTModeClient, Logger: quiet})
	if err != nil {
		return nil, err
	}
	var peers []dht.PeerID
	for _, a := range addrs {
		id, err := p2p.ParsePeerID(a[strings.LastIndex(a, "/p2p/")+len("/p2p/"):])
		if err != nil {
			return nil, errors.Join(err, host.Close())
		}
		peers = append(peers, dhtrpc.PeerIDFromP2P(id))
	}
	node, err := dhtrpc.NewNode(ctx, host, dht.Config{ClientMode: true, InitialPeers: peers, WaitTimeout: time.Second, Logger: quiet})
	if err != nil {
		return nil, errors.Join(err, host.Close())
	}
	return &clientNode{host: host, node: node}, nil
}

func (c *clientNode) close() error { return errors.Join(c.node.Close(), c.host.Close()) }

// TestSupervisorKill9 runs the supervisor binary (3 workers), stores records through an outside
// client node, keeps get/store load on it and kills the supervisor with SIGKILL: every worker must
// be gone within the bound (target 1 s; the time is printed), every client call must end within
// its deadline, and a supervisor restarted on the same state directory must bring the same peer
// IDs back and every record the outside client had stored before the crash (the workers hold them
// as replicas, in their durable state: nothing else survives a crash of the whole swarm).
func TestSupervisorKill9(t *testing.T) {
	s := seed(t)
	runs := 2
	if long() {
		runs = 10
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(s, 3))
	stateDir, runID := t.TempDir(), newRunID()
	tl := newTally()
	var (
		worstRecovery, worstOrphan time.Duration
		peak                       uint64
		firstPeers                 map[string]string
		checked, survived          int
		prev                       []record
	)
	for run := range runs {
		started := time.Now()
		sup := startSupervisor(ctx, t, stateDir, runID, 3)
		ready := time.Since(started)
		pids, peers, addrs := sup.snapshot()
		if run == 0 {
			firstPeers = peers
		} else {
			worstRecovery = max(worstRecovery, ready)
			for name, p := range firstPeers {
				if peers[name] != p {
					t.Errorf("restart %d: %s came back as %s, was %s", run, name, peers[name], p)
				}
			}
		}
		cn, err := newClientNode(ctx, addrs)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range prev { // what the last crash had to keep
			checked++
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			got, err := cn.node.Get(cctx, rec.key, dht.GetOptions{})
			ccancel()
			if err == nil && got != nil && string(got.Value) == string(rec.value) {
				survived++
			} else {
				t.Errorf("restart %d: record %q lost (%v, %v)", run, rec.key.Data, got, err)
			}
		}
		prev = prev[:0]
		for i := range 8 {
			rec := record{key: dht.MustKey(fmt.Sprintf("outside-%d-%d", run, i)), value: mustPack(i)}
			res, err := cn.node.Store(ctx, dht.StoreItem{Key: rec.key, Value: msgpack.Raw(rec.value), Expiration: exp()})
			if err == nil && remoteReplicaError(res, cn.node.PeerID()) == nil {
				prev = append(prev, rec)
			}
		}
		for _, pid := range pids {
			if mi, err := readMem(pid); err == nil {
				peak = max(peak, mi.HWM)
			}
		}
		stop := clientLoad(ctx, cn, prev, rng, tl)
		waitUntil(ctx, 20*time.Second, func() bool { return tl.snapshot().calls > 0 })
		calledBefore := tl.snapshot().calls
		if err := sup.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-sup.exited
		octx, ocancel := context.WithTimeout(ctx, 10*time.Second) // target 1 s; generous for loaded machines
		left, took := waitNoMarked(octx, runID)
		ocancel()
		worstOrphan = max(worstOrphan, took)
		if len(left) > 0 {
			t.Errorf("run %d: workers %v outlived the supervisor by %v", run, left, took)
		}
		// The client keeps calling a swarm that is gone: every call must still end in time.
		waitUntil(ctx, 20*time.Second, func() bool { return tl.snapshot().calls > calledBefore+6 })
		stop()
		if err := cn.close(); err != nil {
			t.Logf("client close: %v", err)
		}
	}
	c := tl.snapshot()
	row := report.Row{
		Scenario: "chaos/supervisor-kill-9", Runs: runs, Calls: c.calls, FailedAsExpected: c.typed,
		Hung: c.hung, Unclear: c.untyped, Lost: checked - survived, Restarts: runs - 1, WorstRecovery: worstRecovery,
		PeakMemory: peak, MemoryKind: "rss",
		Notes: fmt.Sprintf("seed=%d workers-gone-after-kill<=%v outside-records-surviving-restart=%d/%d %s",
			s, worstOrphan.Round(time.Millisecond), survived, checked, tl.sentinelSummary()),
	}
	recordRow(t, row)
	for _, ex := range c.examples {
		t.Log(ex)
	}
	if !row.OK() {
		t.Errorf("hung=%d unclear=%d lost=%d, all must be 0", row.Hung, row.Unclear, row.Lost)
	}
}

// remoteReplicaError is nil when a replica other than self accepted the store, else the first
// remote replica's error (a client node may keep the record itself when nobody else answers).
func remoteReplicaError(res dht.StoreResult, self dht.PeerID) error {
	var first error
	for _, r := range res.Replicas {
		if r.Peer == self {
			continue
		}
		if r.Accepted {
			return nil
		}
		if first == nil && r.Err != nil {
			first = r.Err
		}
	}
	if first == nil {
		first = dht.ErrNoResponse
	}
	return fmt.Errorf("no remote replica accepted: %w", first)
}

// clientLoad runs gets and stores on the client node until stopped; a store no remote replica
// accepted, a get that finds nothing and a failed call count as failed as expected when typed.
func clientLoad(ctx context.Context, cn *clientNode, recs []record, r *rand.Rand, tl *tally) (stop func()) {
	const deadline = 3 * time.Second
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	seed := r.Uint64()
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for n := 0; ctx.Err() == nil; n++ {
				cctx, ccancel := context.WithTimeout(ctx, deadline)
				start := time.Now()
				var err error
				if len(recs) > 0 && r.IntN(2) == 0 {
					var got *dht.Result
					got, err = cn.node.Get(cctx, recs[r.IntN(len(recs))].key, dht.GetOptions{})
					if err == nil && got == nil {
						err = errNotFound
					}
				} else {
					var res dht.StoreResult
					res, err = cn.node.Store(cctx, dht.StoreItem{Key: dht.MustKey(fmt.Sprintf("client-load-%d-%d", w, n)), Value: n, Expiration: exp()})
					if err == nil {
						err = remoteReplicaError(res, cn.node.PeerID())
					}
				}
				ccancel()
				if ctx.Err() == nil {
					tl.note("client", err, time.Since(start), deadline)
				}
				select {
				case <-time.After(20 * time.Millisecond):
				case <-ctx.Done():
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}
