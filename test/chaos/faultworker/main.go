// Command faultworker is the worker binary of the chaos suite (test/chaos): worker.MainWith with a
// node factory that obeys the fault points of package faults. The suite builds it once (without
// -race, so a 16-worker swarm stays light) and launches it through ipc.ExecLauncher.
//
// Fault points, read from <state dir>/faults.json on every call:
//   - exit_at_start: the process exits before its node exists (a crash loop);
//   - call_delay: the parent's Get/GetMany/Store/StoreMany wait first (a slow worker);
//   - handler_delay, link_delay, blocked: delays and partitions between workers, on the DHT RPCs
//     themselves (only when the worker runs with HIVEMIND_CHAOS_NETFAULTS=1: its node is then the
//     production node, worker.NewLibp2pNodeWith, with its DHT transport and handler behind a gate).
//
// And one signal: SIGUSR1 shuts down the worker's end of its connections to the parent (the
// go-plugin unix socket), as if the socket broke mid-call; the process keeps running.
package main

import (
	"fmt"
	"os"

	"github.com/hivemind-go/hivemind/worker"
)

// EnvNetFaults selects the net-fault node (gated transport and handler) when set to 1.
const EnvNetFaults = "HIVEMIND_CHAOS_NETFAULTS"

func main() {
	watchSocketSignal()
	if !worker.MainWith(worker.ServerConfig{NewNode: newNode}) {
		fmt.Fprintln(os.Stderr, "faultworker: start me through ipc (the go-plugin cookie is missing)")
		os.Exit(2)
	}
}
