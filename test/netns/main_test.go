package netns

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// supervisorBin is cmd/supervisor, built once by TestMain without -race (its workers are separate
// programs; the parts that run in this process run with -race when the tests do).
var supervisorBin string

// envHelper makes this test binary a helper program instead of running tests (see helpers_test.go):
// the helpers run inside namespaces, where only a process started there can be.
const envHelper = "HIVEMIND_NETNS_HELPER"

// envLong turns on the long forms.
const envLong = "HIVEMIND_LONG"

func TestMain(m *testing.M) {
	if h := os.Getenv(envHelper); h != "" {
		os.Exit(runHelper(h, os.Args[1:]))
	}
	if Unusable() != "" {
		// Every test skips (or fails under CI=true) with the reason; no binary to build.
		os.Exit(m.Run())
	}
	RemoveStale()
	dir, err := os.MkdirTemp("", "hivemind-netns-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	supervisorBin = filepath.Join(dir, "supervisor")
	build := exec.Command("go", "build", "-o", supervisorBin, "github.com/hivemind-go/hivemind/cmd/supervisor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/supervisor:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// node is a `supervisor run` of one worker inside a host of the bed; it stops with the test.
type node struct {
	t    *testing.T
	name string
	host *Host
	dir  string // the supervisor's state directory
	cmd  *exec.Cmd
	out  *tail
	done chan struct{}
}

// startNode runs supervisor run --workers 1 with args inside h, its admin endpoint on h's
// loopback, health checks (and so the status's figures) every 500 ms.
func startNode(t *testing.T, name string, h *Host, args ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, host: h, dir: t.TempDir(), out: newTail(400), done: make(chan struct{})}
	level := "warn"
	if os.Getenv("GOLOG_LOG_LEVEL") != "" {
		level = "debug" // libp2p's own logs, asked for, reach the supervisor's output
	}
	all := append([]string{"run", "--workers", "1", "--state-dir", n.dir, "--admin-addr", "127.0.0.1:0",
		"--health-interval", "500ms", "--log-level", level}, args...)
	n.cmd = h.Command(context.Background(), supervisorBin, all...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	require.NoError(t, n.cmd.Start())
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", n.name, h.NS, n.out.String())
		}
	})
	return n
}

// kill stops the node at once (SIGKILL to its process group: the supervisor and its worker).
func (n *node) kill() {
	if n.cmd.Process != nil {
		_ = n.cmd.Cancel()
	}
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.t.Errorf("%s did not exit after SIGKILL", n.name)
	}
}

// slotDoc is the part of a worker's /status this suite reads.
type slotDoc struct {
	State            string    `json:"state"`
	PID              int       `json:"pid"`
	PeerID           string    `json:"peer_id"`
	Maddrs           []string  `json:"maddrs"`
	StoredKeys       int       `json:"stored_keys"`
	RoutingTableSize int       `json:"routing_table_size"`
	ConnectedPeers   int       `json:"connected_peers"`
	Goroutines       int       `json:"goroutines"`
	StatsAt          time.Time `json:"stats_at"`
	Peers            []peerDoc `json:"peers"`
	NAT              struct {
		Reachability     string   `json:"reachability"`
		Forced           bool     `json:"reachability_forced"`
		KadMode          string   `json:"kad_mode"`
		RelayAddrs       []string `json:"relay_addrs"`
		Reservations     []string `json:"reservations"`
		CircuitsOpen     int      `json:"circuits_open"`
		CircuitsTotal    uint64   `json:"circuits_total"`
		CircuitsRefused  uint64   `json:"circuits_refused"`
		ReservationsHeld int      `json:"reservations_held"`
		HolePunches      uint64   `json:"hole_punches"`
		DirectConns      int      `json:"direct_conns"`
		RelayedConns     int      `json:"relayed_conns"`
	} `json:"nat"`
}

// peerDoc is one of a worker's peers in its status.
type peerDoc struct {
	PeerID         string    `json:"peer_id"`
	Connected      bool      `json:"connected"`
	Relayed        bool      `json:"relayed"`
	Addrs          []string  `json:"addrs"`
	DHTLastRequest time.Time `json:"dht_last_request"`
	DHTLastAnswer  time.Time `json:"dht_last_answer"`
}

// peerOf is peer id in a status, or nil.
func peerOf(st slotDoc, id string) *peerDoc {
	for i := range st.Peers {
		if st.Peers[i].PeerID == id {
			return &st.Peers[i]
		}
	}
	return nil
}

// dhtNode is a `supervisor dht` inside a host of the bed; it stops with the test.
type dhtNode struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	out   *tail
	lines chan string
	done  chan struct{}
}

// startDHT runs supervisor dht with args inside h; its stdout lines are read by firstMaddr.
func startDHT(t *testing.T, name string, h *Host, args ...string) *dhtNode {
	t.Helper()
	n := &dhtNode{t: t, name: name, out: newTail(200), lines: make(chan string, 1024), done: make(chan struct{})}
	n.cmd = h.Command(context.Background(), supervisorBin, append([]string{"dht", "--log-level", "warn"}, args...)...)
	n.cmd.Stderr = n.out
	stdout, err := n.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, n.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = n.out.Write([]byte(sc.Text() + "\n"))
			select {
			case n.lines <- sc.Text():
			default: // nobody reads any more
			}
		}
		_ = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		_ = n.cmd.Cancel()
		<-n.done
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", name, h.NS, n.out.String())
		}
	})
	return n
}

// firstMaddr waits for the node's first MADDR line and returns its multiaddr.
func (n *dhtNode) firstMaddr(ctx context.Context) string {
	n.t.Helper()
	return n.waitMaddr(ctx, time.Minute, "")
}

// waitMaddr waits (up to within) for a MADDR line holding part and returns its multiaddr.
func (n *dhtNode) waitMaddr(ctx context.Context, within time.Duration, part string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		select {
		case l := <-n.lines:
			if m, ok := strings.CutPrefix(l, "MADDR "); ok && strings.Contains(m, part) {
				return m
			}
		case <-n.done:
			n.t.Fatalf("%s exited before printing a MADDR line with %q", n.name, part)
		case <-ctx.Done():
			n.t.Fatalf("%s printed no MADDR line with %q within %v", n.name, part, within)
		}
	}
}

// status reads the worker's status through `supervisor status --json`, run inside the node's host
// (its admin endpoint is on the host's loopback).
func (n *node) status(ctx context.Context) (slotDoc, error) {
	out, err := n.host.Run(ctx, supervisorBin, "status", "--json", "--state-dir", n.dir)
	if err != nil {
		return slotDoc{}, err
	}
	var st struct {
		Slots []slotDoc `json:"slots"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return slotDoc{}, fmt.Errorf("status of %s: %w: %s", n.name, err, out)
	}
	if len(st.Slots) != 1 {
		return slotDoc{}, fmt.Errorf("status of %s: %d slots", n.name, len(st.Slots))
	}
	return st.Slots[0], nil
}

// waitFor polls the node's status until its worker runs, has reported its figures once (a health
// check came) and cond holds, and returns that status; it fails the test after within, naming what
// and showing the last status. A condition on what happened after some event says so itself (as a
// DHTLastRequest after a time).
func (n *node) waitFor(ctx context.Context, within time.Duration, what string, cond func(slotDoc) bool) slotDoc {
	n.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var last slotDoc
	var lastErr error
	for {
		st, err := n.status(ctx)
		if err == nil {
			last, lastErr = st, nil
			if st.State == "running" && !st.StatsAt.IsZero() && cond(st) {
				n.t.Logf("%s: %s after %v", n.name, what, time.Since(start).Round(100*time.Millisecond))
				return st
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			js, _ := json.MarshalIndent(last, "", " ")
			n.t.Fatalf("%s: not %s within %v (last error %v); last status:\n%s", n.name, what, within, lastErr, js)
		case <-n.done:
			n.t.Fatalf("%s exited while waiting until %s", n.name, what)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// maddr waits until the node runs and returns its first multiaddr on h's address.
func (n *node) maddr(ctx context.Context) string {
	n.t.Helper()
	st := n.waitFor(ctx, time.Minute, "running", func(st slotDoc) bool { return len(st.Maddrs) > 0 })
	for _, m := range st.Maddrs {
		if strings.HasPrefix(m, "/ip4/"+n.host.IP+"/") {
			return m
		}
	}
	n.t.Fatalf("%s: no multiaddr on %s in %v", n.name, n.host.IP, st.Maddrs)
	return ""
}

// storeResult is supervisor store's JSON output.
type storeResult struct {
	Stored   bool `json:"stored"`
	Replicas []struct {
		PeerID   string `json:"peer_id"`
		Accepted bool   `json:"accepted"`
		Local    bool   `json:"local"`
	} `json:"replicas"`
}

// acceptedBy lists the peers (not the storing node itself) that accepted the record.
func (r storeResult) acceptedBy() []string {
	var out []string
	for _, p := range r.Replicas {
		if p.Accepted && !p.Local {
			out = append(out, p.PeerID)
		}
	}
	return out
}

// store runs a one-shot `supervisor store` inside h.
func store(ctx context.Context, t *testing.T, h *Host, key, value string, args ...string) storeResult {
	t.Helper()
	out, err := h.Run(ctx, supervisorBin, append([]string{"store", key, value}, args...)...)
	require.NoError(t, err, "store %s", key)
	var r storeResult
	require.NoError(t, json.Unmarshal(out, &r), "%s", out)
	return r
}

// get runs a one-shot `supervisor get` inside h and returns the value found (JSON), or fails.
func get(ctx context.Context, t *testing.T, h *Host, key string, args ...string) string {
	t.Helper()
	out, err := h.Run(ctx, supervisorBin, append([]string{"get", key}, args...)...)
	require.NoError(t, err, "get %s", key)
	var r struct {
		Found bool            `json:"found"`
		Value json.RawMessage `json:"value"`
	}
	require.NoError(t, json.Unmarshal(out, &r), "%s", out)
	require.True(t, r.Found, "get %s: not found: %s", key, out)
	return string(r.Value)
}

// peerIDOf is the peer ID at the end of a multiaddr.
func peerIDOf(maddr string) string {
	_, id, _ := strings.Cut(maddr, "/p2p/")
	if i := strings.LastIndex(id, "/p2p/"); i >= 0 {
		id = id[i+len("/p2p/"):]
	}
	return id
}

// tail keeps the last lines written to it.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
	part  bytes.Buffer
}

func newTail(max int) *tail { return &tail{max: max} }

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.part.Write(p)
	for {
		i := bytes.IndexByte(w.part.Bytes(), '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, string(w.part.Next(i + 1)[:i]))
	}
	if len(w.lines) > w.max {
		w.lines = w.lines[len(w.lines)-w.max:]
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n") + "\n" + w.part.String()
}

var _ io.Writer = (*tail)(nil)
