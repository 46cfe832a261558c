package browser

import (
	"bufio"
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

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// binDir holds the binaries the suite builds (on first use, after a browser was found); TestMain
// removes it.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

// browserCandidates are the Debian packages' binaries, in order of preference.
var browserCandidates = []string{"chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hivemind-browser-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// binary returns the path of a binary of the repository (cmd/supervisor or
// examples/albert/cmd/albert), building them all once.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	pkgs := []string{"cmd/supervisor", "examples/albert/cmd/albert"}
	buildOnce.Do(func() {
		for _, p := range pkgs {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, filepath.Base(p)), "./"+p)
			cmd.Dir = repoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", p, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	require.Contains(t, pkgs, pkg)
	return filepath.Join(binDir, filepath.Base(pkg))
}

// repoRoot is the folder holding go.mod, found from the package directory.
func repoRoot() string {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "."
		}
		dir = parent
	}
}

// findBrowser returns the browser to drive; without one the test is skipped, or fails under CI=true.
func findBrowser(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HIVEMIND_BROWSER"); p != "" {
		return p
	}
	for _, name := range browserCandidates {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (looked for " + strings.Join(browserCandidates, ", ") +
		"): install Debian's chromium-headless-shell (bash .ci/run does) or set HIVEMIND_BROWSER"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless browser with a fresh profile (flags that keep it off the network:
// it talks to loopback pages only) and returns a chromedp context of one tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; its context must not carry a deadline (see chromedp.Run).
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start %s", path)
	return ctx
}

// eval evaluates a JS expression in the page and decodes its value into T.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(t, err, js)
	return v
}

// eventually calls check until it reports done or the bound passes; the last reason is in the
// failure message. A liveness bound, not a timing assertion.
func eventually(t *testing.T, bound time.Duration, what string, check func() (done bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(bound)
	var why string
	for {
		var done bool
		if done, why = check(); done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, bound, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// screenshot saves a PNG of the whole page as name in the suite's screenshot directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := filepath.Join(screenshotDir(t), name)
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot: %s", path)
}

var (
	shotsOnce sync.Once
	shotsDir  string
	shotsErr  error
)

// screenshotDir is HIVEMIND_SCREENSHOTS, or a temporary directory of this run that is kept (its
// path is logged) so the pictures can be looked at after the run.
func screenshotDir(t *testing.T) string {
	shotsOnce.Do(func() {
		if d := os.Getenv("HIVEMIND_SCREENSHOTS"); d != "" {
			shotsDir, shotsErr = d, os.MkdirAll(d, 0o755)
			return
		}
		shotsDir, shotsErr = os.MkdirTemp("", "hivemind-browser-screenshots-")
	})
	require.NoError(t, shotsErr)
	return shotsDir
}

// proc is a process of the suite with its stdout read line by line.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced at each new line
	done  chan struct{}
	errb  strings.Builder
}

// start runs bin with args; the process is interrupted (then killed) when the test ends.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), more: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), "HIVEMIND_WORKER_LOG_LEVEL=warn")
	out, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	p.cmd.Stderr = &lockedWriter{w: &p.errb, mu: &p.mu}
	require.NoError(t, p.cmd.Start())
	go p.read(out)
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
	_ = p.cmd.Wait()
	close(p.done)
}

// waitLine returns the first line holding s, waiting for it.
func (p *proc) waitLine(t *testing.T, s string, bound time.Duration) string {
	t.Helper()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		p.mu.Lock()
		for _, l := range p.lines {
			if strings.Contains(l, s) {
				p.mu.Unlock()
				return l
			}
		}
		more := p.more
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			t.Fatalf("%s exited before printing %q:\n%s\n%s", p.cmd.Path, s, strings.Join(p.output(), "\n"), p.stderr())
		case <-timer.C:
			t.Fatalf("%s did not print %q within %v:\n%s", p.cmd.Path, s, bound, strings.Join(p.output(), "\n"))
		}
	}
}

func (p *proc) output() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// interrupt sends SIGINT and waits for the process to exit.
func (p *proc) interrupt(t *testing.T, bound time.Duration) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(bound):
		t.Errorf("%s did not exit within %v of SIGINT", p.cmd.Path, bound)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.interrupt(t, 20*time.Second)
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// getJSON decodes the JSON document at url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v), url)
}
