// Package archtest checks the package rules of DESIGN.md §2 ("rooms and who may enter them") over the
// non-test imports of every package in the module, using `go list`.
package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/hivemind-go/hivemind"

// pkg is the part of `go list -json` this test reads.
type pkg struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

// Import path families named by the rules.
var (
	isLibp2p    = prefixes("github.com/libp2p/")
	isGRPC      = prefixes("google.golang.org/grpc")
	isGoPlugin  = prefixes("github.com/hashicorp/go-plugin")
	isOwn       = prefixes(module + "/")
	isTestTree  = prefixes(module + "/test/")
	isExamples  = prefixes(module + "/examples/")
	ownPackages = func(room ...string) func(string) bool {
		var ps []string
		for _, r := range room {
			ps = append(ps, module+"/"+r+"/", module+"/"+r+"\x00")
		}
		return func(p string) bool {
			for _, pre := range ps {
				if strings.HasSuffix(pre, "\x00") && p == strings.TrimSuffix(pre, "\x00") || strings.HasPrefix(p, pre) {
					return true
				}
			}
			return false
		}
	}
)

// isStd reports whether p is a standard-library package (its first element has no dot).
func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

func prefixes(ps ...string) func(string) bool {
	return func(p string) bool {
		for _, pre := range ps {
			if strings.HasPrefix(p, pre) {
				return true
			}
		}
		return false
	}
}

// rule forbids, for packages in a room, a set of imports; transitive rules look at Deps, direct ones
// at Imports.
type rule struct {
	name       string
	room       func(string) bool
	forbidden  func(string) bool
	transitive bool
}

func TestRooms(t *testing.T) {
	pkgs := listPackages(t)
	inRoom := ownPackages
	rules := []rule{
		{name: "proto imports only protobuf and grpc", room: inRoom("proto"), transitive: true,
			forbidden: func(p string) bool {
				return !isStd(p) && !strings.HasPrefix(p, "google.golang.org/protobuf") &&
					!isGRPC(p) && !strings.HasPrefix(p, "google.golang.org/genproto") &&
					!strings.HasPrefix(p, "golang.org/x/") && !ownPackages("proto")(p)
			}},
		{name: "dht imports no libp2p", room: inRoom("dht"), forbidden: isLibp2p, transitive: true},
		{name: "dht imports no grpc", room: inRoom("dht"), forbidden: isGRPC, transitive: true},
		{name: "dht imports no go-plugin", room: inRoom("dht"), forbidden: isGoPlugin, transitive: true},
		{name: "dht imports none of the outer rooms", room: inRoom("dht"), transitive: true,
			forbidden: ownPackages("p2p", "worker", "ipc", "cmd", "examples", "test")},
		{name: "dhtsim imports only dht", room: inRoom("dht/dhtsim"), transitive: false,
			forbidden: func(p string) bool { return isOwn(p) && !ownPackages("dht", "proto")(p) }},
		{name: "only p2p imports go-libp2p", room: func(p string) bool { return isOwn(p) && !ownPackages("p2p")(p) },
			forbidden: isLibp2p, transitive: false},
		{name: "p2p imports only libp2p, proto and dht of ours", room: inRoom("p2p"), transitive: false,
			forbidden: func(p string) bool { return isOwn(p) && !ownPackages("p2p", "proto", "dht")(p) }},
		{name: "worker never imports ipc", room: inRoom("worker"), forbidden: ownPackages("ipc"), transitive: true},
		{name: "ipc never imports worker", room: inRoom("ipc"), forbidden: ownPackages("worker"), transitive: true},
		{name: "ipc never imports p2p", room: inRoom("ipc"), forbidden: ownPackages("p2p"), transitive: true},
		{name: "ipc never imports libp2p", room: inRoom("ipc"), forbidden: isLibp2p, transitive: true},
		{name: "cmd imports neither test nor examples", room: inRoom("cmd"), transitive: true,
			forbidden: func(p string) bool { return isTestTree(p) || isExamples(p) }},
		{name: "examples use the public API only", room: inRoom("examples"), transitive: false,
			forbidden: func(p string) bool {
				return isOwn(p) && !ownPackages("ipc", "dht", "worker", "examples", "internal")(p)
			}},
		{name: "internal imports only the standard library", room: inRoom("internal"), transitive: true,
			forbidden: func(p string) bool { return !isStd(p) }},
		{name: "only the binaries import internal", room: func(p string) bool {
			return isOwn(p) && !ownPackages("cmd", "examples", "internal", "test")(p)
		}, forbidden: ownPackages("internal"), transitive: true},
		{name: "production code never imports test helpers", room: func(p string) bool { return isOwn(p) && !isTestTree(p) },
			forbidden: isTestTree, transitive: true},
	}
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			var broken []string
			for _, p := range pkgs {
				if !r.room(p.ImportPath) {
					continue
				}
				imports := p.Imports
				if r.transitive {
					imports = p.Deps
				}
				for _, imp := range imports {
					if r.forbidden(imp) {
						broken = append(broken, fmt.Sprintf("%s -> %s", p.ImportPath, imp))
					}
				}
			}
			slices.Sort(broken)
			require.Empty(t, broken, "rule %q is broken", r.name)
		})
	}
}

// TestRulesCanFail checks the rule helpers themselves, so that a rule that matches nothing is caught.
func TestRulesCanFail(t *testing.T) {
	require.True(t, ownPackages("dht")(module+"/dht"))
	require.True(t, ownPackages("dht")(module+"/dht/msgpack"))
	require.False(t, ownPackages("dht")(module+"/dhtx"))
	require.True(t, ownPackages("internal/cli")(module+"/internal/cli"))
	require.False(t, ownPackages("internal/cli")(module+"/internal/clix"))
	require.False(t, isStd("github.com/stretchr/testify/require"))
	require.True(t, isLibp2p("github.com/libp2p/go-libp2p/core/host"))
	require.True(t, isGoPlugin("github.com/hashicorp/go-plugin"))
	require.True(t, isGRPC("google.golang.org/grpc/status"))
	require.False(t, isOwn("github.com/hivemind-go/hivemindx/foo"))
	require.True(t, isStd("crypto/internal/entropy/v1.0.0"))
	require.False(t, isStd("golang.org/x/sys/unix"))
}

// TestWorkerOnlyMainInExamples: examples may import worker only for worker.Main (self re-exec).
func TestWorkerOnlyMainInExamples(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", module+"/examples/...")
	out, err := cmd.Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Skip("no examples packages yet")
	}
	for _, dir := range strings.Fields(string(out)) {
		grep := exec.Command("grep", "-rhoE", `worker\.[A-Za-z_]+`, "--include=*.go", "--exclude=*_test.go", dir)
		found, _ := grep.Output()
		for _, use := range strings.Fields(string(found)) {
			require.Equal(t, "worker.Main", use, "examples in %s may use only worker.Main", dir)
		}
	}
}
