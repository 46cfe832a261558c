package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Addresses of a bed. The public segment uses a range libp2p counts as public: it treats the
// documentation and benchmarking ranges as unroutable, and would then neither ask AutoNAT about
// them, nor announce relay addresses through them, nor hole-punch with them. The range exists only
// on the veths of the test's own namespaces, which have no link to the host's network.
const (
	publicNet     = "11.0.0"  // /24: hosts .10 up, routers' WAN sides .100 up
	privateNetFmt = "10.%d.0" // /24 per LAN: its router .1, hosts .10 up
	nsPrefix      = "hmnat"   // namespace names: hmnat<pid>x<random>-<role>
	cmdTimeout    = 10 * time.Second
)

// envCI is set on CI, where a bed that cannot be made fails the test instead of skipping it.
const envCI = "CI"

// Bed is a NAT test bed in Linux network namespaces: a switch namespace bridging the public
// segment, hosts on it, and private LANs each behind a router namespace that masquerades their
// traffic and forwards nothing inbound that it did not see go out (and drops the rest silently, as
// a home router does). Processes run inside hosts through Host.Command. Every namespace is deleted
// by the test's cleanup, after the processes in it are killed; nothing touches the host's own
// interfaces, routes or firewall.
//
// A Bed is used by one test goroutine.
type Bed struct {
	t      testing.TB
	prefix string
	made   []string // namespaces, in creation order
	pubs   int
	lans   int
}

// Host is one network namespace with one address.
type Host struct {
	bed *Bed
	// NS is the namespace's name, IP its address (public segment or its LAN).
	NS, IP string
}

// LAN is a private network behind its own router.
type LAN struct {
	bed    *Bed
	n      int    // 1-based
	router string // the router's namespace
	// WAN is the router's public address, which the LAN's hosts appear from.
	WAN   string
	hosts int
}

// Unusable says why network namespaces cannot be made here, or "" when they can: it needs root, ip
// and iptables, and the right to make a namespace. It finds out once per process.
var Unusable = sync.OnceValue(func() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, veth, iptables)"
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("needs %s (Debian: iproute2, iptables; .ci/run installs them)", tool)
		}
	}
	name := fmt.Sprintf("%s%dxprobe", nsPrefix, os.Getpid())
	if out, err := run(context.Background(), "ip", "netns", "add", name); err != nil {
		return fmt.Sprintf("cannot make a network namespace: %v: %s", err, out)
	}
	_, _ = run(context.Background(), "ip", "netns", "del", name)
	return ""
})

// New makes an empty bed (the public segment's switch) for t, or skips t with the reason when
// namespaces cannot be made here (fails it under CI=true). Cleanup tears the bed down, also when
// t fails.
func New(t testing.TB) *Bed {
	t.Helper()
	if why := Unusable(); why != "" {
		if os.Getenv(envCI) == "true" {
			t.Fatalf("netns test bed: %s (CI=true: this suite must run)", why)
		}
		t.Skipf("netns test bed: %s; skipped", why)
	}
	var id [3]byte
	_, _ = rand.Read(id[:])
	b := &Bed{t: t, prefix: fmt.Sprintf("%s%dx%x", nsPrefix, os.Getpid(), id)}
	t.Cleanup(b.teardown)
	sw := b.addNS("sw")
	b.must("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	b.must("ip", "-n", sw, "link", "set", "br0", "up")
	return b
}

// PublicHost adds a host on the public segment.
func (b *Bed) PublicHost() *Host {
	b.t.Helper()
	b.pubs++
	ns := b.addNS(fmt.Sprintf("pub%d", b.pubs))
	ip := fmt.Sprintf("%s.%d", publicNet, 9+b.pubs)
	b.plug(b.swNS(), "br0", fmt.Sprintf("p%d", b.pubs), ns, ip+"/24")
	return &Host{bed: b, NS: ns, IP: ip}
}

// LAN adds a private network behind a new router: masquerade NAT on the way out, only replies on
// the way in.
func (b *Bed) LAN() *LAN {
	b.t.Helper()
	b.lans++
	n := b.lans
	r := b.addNS(fmt.Sprintf("rtr%d", n))
	wan := fmt.Sprintf("%s.%d", publicNet, 99+n)
	lan := fmt.Sprintf(privateNetFmt, n)
	b.plug(b.swNS(), "br0", fmt.Sprintf("r%d", n), r, wan+"/24")
	// The LAN side: a bridge the LAN's hosts plug into.
	b.must("ip", "-n", r, "link", "add", "lan0", "type", "bridge")
	b.must("ip", "-n", r, "addr", "add", lan+".1/24", "dev", "lan0")
	b.must("ip", "-n", r, "link", "set", "lan0", "up")
	b.must("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for _, rule := range [][]string{
		{"-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"},
		{"-A", "FORWARD", "-i", "lan0", "-o", "eth0", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "eth0", "-o", "lan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-j", "DROP"},
		{"-A", "INPUT", "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "INPUT", "-i", "eth0", "-j", "DROP"},
	} {
		b.must("ip", append([]string{"netns", "exec", r, "iptables", "-w"}, rule...)...)
	}
	return &LAN{bed: b, n: n, router: r, WAN: wan}
}

// Host adds a host to the LAN, its default route through the router.
func (l *LAN) Host() *Host {
	b := l.bed
	b.t.Helper()
	l.hosts++
	ns := b.addNS(fmt.Sprintf("lan%dh%d", l.n, l.hosts))
	ip := fmt.Sprintf(privateNetFmt+".%d", l.n, 9+l.hosts)
	b.plug(l.router, "lan0", fmt.Sprintf("h%d", l.hosts), ns, ip+"/24")
	b.must("ip", "-n", ns, "route", "add", "default", "via", fmt.Sprintf(privateNetFmt+".1", l.n))
	return &Host{bed: b, NS: ns, IP: ip}
}

// Command returns the command path args... to run inside h (ip netns exec, which execs it: the
// process's PID is the command's). It gets its own process group, so Kill reaches its children.
func (h *Host) Command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, path}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs path args... inside h and returns its stdout; an error carries its stderr.
func (h *Host) Run(ctx context.Context, path string, args ...string) ([]byte, error) {
	cmd := h.Command(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s in %s: %w: %s", path, strings.Join(args, " "), h.NS, err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// Cut drops every packet h sends or receives on its network link (a partition), until Heal.
func (h *Host) Cut() error { return h.dropRules("-I", "cut") }

// Heal undoes Cut.
func (h *Host) Heal() error { return h.dropRules("-D", "heal") }

// dropRules inserts (-I) or deletes (-D) the rules that drop h's traffic on its link, both ways.
func (h *Host) dropRules(op, what string) error {
	for _, rule := range [][]string{{op, "INPUT", "-i", "eth0", "-j", "DROP"}, {op, "OUTPUT", "-o", "eth0", "-j", "DROP"}} {
		if out, err := run(context.Background(), "ip", append([]string{"netns", "exec", h.NS, "iptables", "-w"}, rule...)...); err != nil {
			return fmt.Errorf("%s %s: %w: %s", what, h.NS, err, out)
		}
	}
	return nil
}

func (b *Bed) swNS() string { return b.prefix + "-sw" }

// addNS makes a namespace with its loopback up.
func (b *Bed) addNS(role string) string {
	b.t.Helper()
	ns := b.prefix + "-" + role
	b.must("ip", "netns", "add", ns)
	b.made = append(b.made, ns)
	b.must("ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// plug links ns to the bridge br of namespace at through a veth pair (port there, eth0 in ns),
// and gives ns's end the address cidr. The pair is made inside the namespaces, never in the
// host's.
func (b *Bed) plug(at, br, port, ns, cidr string) {
	b.t.Helper()
	b.must("ip", "-n", at, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	b.must("ip", "-n", at, "link", "set", port, "master", br)
	b.must("ip", "-n", at, "link", "set", port, "up")
	b.must("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
	b.must("ip", "-n", ns, "link", "set", "eth0", "up")
}

func (b *Bed) must(name string, args ...string) {
	b.t.Helper()
	if out, err := run(context.Background(), name, args...); err != nil {
		b.t.Fatalf("netns test bed: %s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// teardown kills whatever still runs in the bed's namespaces (only this test's processes can be
// there) and deletes them, the last made first.
func (b *Bed) teardown() {
	var errs []error
	for i := len(b.made) - 1; i >= 0; i-- {
		ns := b.made[i]
		killIn(ns)
		if out, err := run(context.Background(), "ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", ns, err, out))
		}
	}
	if err := errors.Join(errs...); err != nil {
		b.t.Errorf("netns test bed teardown: %v", err)
	}
}

// killIn kills every process in namespace ns and waits (bounded) until none is left.
func killIn(ns string) {
	deadline := time.Now().Add(cmdTimeout)
	for {
		out, err := run(context.Background(), "ip", "netns", "pids", ns)
		pids := strings.Fields(string(out))
		if err != nil || len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond) // polling the kernel's view, not a timing assertion
	}
}

// RemoveStale deletes the namespaces earlier runs of this suite left behind (their process died
// before its cleanup ran): those named with this suite's prefix and a PID that no longer runs.
func RemoveStale() {
	out, err := run(context.Background(), "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		rest := strings.TrimPrefix(f[0], nsPrefix)
		pidText, _, ok := strings.Cut(rest, "x")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // its run is still going
		}
		killIn(f[0])
		_, _ = run(context.Background(), "ip", "netns", "del", f[0])
	}
}

// run runs a command with cmdTimeout and returns its combined output.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
