// Package e2e runs the supervisor binary as real processes: a swarm, the one-shot commands against
// it, Ctrl-C and kill -9 of the supervisor.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bin is the supervisor binary built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hivemind-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "supervisor")
	build := exec.Command("go", "build", "-o", bin, "github.com/hivemind-go/hivemind/cmd/supervisor")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cmd/supervisor:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running supervisor whose stdout lines are collected.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{}
	done  chan struct{}
	err   error
	errb  bytes.Buffer
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd.Stderr = &p.errb
	out, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("supervisor %v stdout:\n%s\nstderr:\n%s", args, strings.Join(p.output(), "\n"), p.errb.String())
		}
	})
	return p
}

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// waitLine waits for a stdout line containing s.
func (p *proc) waitLine(t *testing.T, ctx context.Context, s string) {
	t.Helper()
	for {
		for _, l := range p.output() {
			if strings.Contains(l, s) {
				return
			}
		}
		select {
		case <-p.more:
		case <-p.done:
			t.Fatalf("supervisor exited before printing %q: %v", s, p.err)
		case <-ctx.Done():
			t.Fatalf("no line %q before the deadline", s)
		}
	}
}

// maddrs returns the printed multiaddrs of each worker, by name.
func (p *proc) maddrs() map[string][]string {
	out := map[string][]string{}
	cur := ""
	for _, l := range p.output() {
		if name, _, ok := strings.Cut(l, " ready: "); ok && !strings.HasPrefix(l, " ") {
			cur = name
			continue
		}
		if strings.HasPrefix(l, "  /") && cur != "" {
			out[cur] = append(out[cur], strings.TrimSpace(l))
		}
	}
	return out
}

// cli runs a one-shot command and returns stdout, stderr and the exit code.
func cli(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type status struct {
	PID   int `json:"pid"`
	Slots []struct {
		Name   string   `json:"name"`
		State  string   `json:"state"`
		PID    int      `json:"pid"`
		Maddrs []string `json:"maddrs"`
	} `json:"slots"`
}

func readStatus(t *testing.T, ctx context.Context, stateDir string) status {
	t.Helper()
	out, errs, code := cli(t, ctx, "status", "--json", "--state-dir", stateDir)
	require.Equal(t, 0, code, errs)
	var st status
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	return st
}

func startSwarm(t *testing.T, ctx context.Context) (*proc, string) {
	stateDir := t.TempDir()
	p := start(t, "run", "--state-dir", stateDir, "--admin-addr", "127.0.0.1:0", "--log-level", "warn")
	p.waitLine(t, ctx, "workers ready")
	return p, stateDir
}

func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func waitGone(t *testing.T, ctx context.Context, pids []int, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		alive := 0
		for _, pid := range pids {
			if !processGone(pid) {
				alive++
			}
		}
		if alive == 0 {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%d of %v still alive after %v", alive, pids, bound)
		}
	}
}

func TestRunStoreOnOneGetOnAnother(t *testing.T) {
	ctx := testCtx(t)
	p, stateDir := startSwarm(t, ctx)
	m := p.maddrs()
	require.Len(t, m, 3, "stdout: %v", p.output())

	out, errs, code := cli(t, ctx, "store", "greeting", `{"text": "hello", "n": 3}`, "--initial-peers", m["worker-1"][0])
	require.Equal(t, 0, code, "store: %s %s", out, errs)
	var stored struct {
		Stored   bool `json:"stored"`
		Replicas []struct {
			Accepted bool `json:"accepted"`
		} `json:"replicas"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &stored))
	assert.True(t, stored.Stored)

	out, errs, code = cli(t, ctx, "get", "greeting", "--latest", "--initial-peers", m["worker-3"][0])
	require.Equal(t, 0, code, "get: %s %s", out, errs)
	var got struct {
		Found bool           `json:"found"`
		Value map[string]any `json:"value"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), out)
	assert.True(t, got.Found)
	assert.Equal(t, map[string]any{"text": "hello", "n": float64(3)}, got.Value)

	// Dictionary values and raw msgpack.
	_, errs, code = cli(t, ctx, "store", "scores", "--subkey", "alice", "--value-hex", "2a", "--initial-peers", m["worker-2"][0])
	require.Equal(t, 0, code, errs)
	out, errs, code = cli(t, ctx, "get", "scores", "--initial-peers", m["worker-1"][0])
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, `"alice": {`)
	assert.Contains(t, out, `"value": 42`)

	st := readStatus(t, ctx, stateDir)
	require.Len(t, st.Slots, 3)
	var pids []int
	for _, s := range st.Slots {
		assert.Equal(t, "running", s.State)
		pids = append(pids, s.PID)
	}
	table, _, code := cli(t, ctx, "status", "--state-dir", stateDir)
	require.Equal(t, 0, code)
	assert.Contains(t, table, "WORKER")
	assert.Contains(t, table, "worker-3")

	addr, err := os.ReadFile(filepath.Join(stateDir, "admin.addr"))
	require.NoError(t, err)
	resp, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), `hivemind_worker_up{slot="worker-1"} 1`)

	// Ctrl-C: the supervisor stops every worker and exits cleanly.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-p.done:
		require.NoError(t, p.err, "stderr: %s", p.errb.String())
	case <-ctx.Done():
		t.Fatal("supervisor did not exit after SIGINT")
	}
	waitGone(t, ctx, pids, 5*time.Second)
	assert.Contains(t, p.output()[len(p.output())-1], "stopped 3 workers")
}

func TestKill9SupervisorTakesItsWorkers(t *testing.T) {
	ctx := testCtx(t)
	p, stateDir := startSwarm(t, ctx)
	st := readStatus(t, ctx, stateDir)
	pids := []int{}
	for _, s := range st.Slots {
		pids = append(pids, s.PID)
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	took := waitGone(t, ctx, pids, 10*time.Second) // target 1 s; generous for loaded machines
	t.Logf("workers gone %v after kill -9 of the supervisor", took)
}

func TestCLIErrorsAreOneClearLine(t *testing.T) {
	ctx := testCtx(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, want: `unknown command "frobnicate"`},
		{name: "bad flag", args: []string{"run", "--workers", "many"}, code: 2, want: "invalid value"},
		{name: "get without peers", args: []string{"get", "k"}, code: 2, want: "needs --initial-peers"},
		{name: "store value not JSON", args: []string{"store", "k", "not json", "--initial-peers", "/ip4/127.0.0.1/tcp/9/p2p/QmVrH6p1osxWeQTcffq483hdda8Ypx93dEW3NWkurYJJLv"}, code: 2, want: "VALUE must be JSON"},
		{name: "unreachable peer", args: []string{"get", "k", "--initial-peers", "/ip4/127.0.0.1/tcp/9/p2p/QmVrH6p1osxWeQTcffq483hdda8Ypx93dEW3NWkurYJJLv"}, code: 1, want: "cannot join the DHT"},
		{name: "keygen bad type", args: []string{"keygen", "--type", "dsa", "x"}, code: 2, want: "--type must be rsa or ed25519"},
		{name: "no supervisor", args: []string{"status", "--state-dir", t.TempDir()}, code: 1, want: "no running supervisor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := cli(t, ctx, tt.args...)
			assert.Equal(t, tt.code, code, "stdout %q stderr %q", out, errs)
			assert.Contains(t, errs, tt.want)
			assert.NotContains(t, errs, "goroutine ", "no stack traces")
			first, _, _ := strings.Cut(strings.TrimSpace(errs), "\n")
			assert.True(t, strings.HasPrefix(first, "supervisor: ") || strings.HasPrefix(first, "invalid value") || strings.HasPrefix(first, "usage:"), "first line %q", first)
		})
	}
}

func TestKeygen(t *testing.T) {
	ctx := testCtx(t)
	for _, kind := range []string{"rsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.key")
			out, errs, code := cli(t, ctx, "keygen", "--type", kind, path)
			require.Equal(t, 0, code, errs)
			assert.NotEmpty(t, strings.TrimSpace(out))
			_, errs, code = cli(t, ctx, "keygen", path)
			assert.Equal(t, 1, code, "never overwrites")
			assert.Contains(t, errs, "exist")
		})
	}
}

func TestDHTCommandPrintsMaddrsAndStatus(t *testing.T) {
	ctx := testCtx(t)
	p := start(t, "dht", "--refresh-period", "200ms", "--log-level", "warn")
	p.waitLine(t, ctx, "MADDR /ip4/127.0.0.1/")
	p.waitLine(t, ctx, "DHT nodes (including this one) are in the local routing table")
	p.waitLine(t, ctx, "Local storage contains 0 keys")
	var maddr string
	for _, l := range p.output() {
		if m, ok := strings.CutPrefix(l, "MADDR "); ok {
			maddr = m
		}
	}
	q := start(t, "dht", "--refresh-period", "200ms", "--log-level", "warn", "--initial-peers", maddr)
	q.waitLine(t, ctx, "2 DHT nodes (including this one)")
	for _, x := range []*proc{p, q} {
		require.NoError(t, x.cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-x.done:
			assert.NoError(t, x.err)
		case <-ctx.Done():
			t.Fatal("dht did not exit after SIGTERM")
		}
	}
}
