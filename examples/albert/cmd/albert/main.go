// Command albert runs hivemind's examples/albert on hivemind-go with a fake workload: trainers that
// coordinate a collaborative run through the DHT (signed metrics and progress records) and a monitor
// that aggregates their progress. Every peer starts its own DHT worker: this same binary,
// re-executed, which is why main calls the worker package's Main first.
//
//	albert demo                                   # a monitor and 3 trainers on loopback, until Ctrl-C
//	albert monitor                                # prints the multiaddrs trainers join with
//	albert trainer --initial-peers /ip4/127.0.0.1/tcp/…/p2p/…
//
// Exit status: 0 on success, 1 on a runtime failure, 2 on a bad command line.
package main

import (
	"context"
	"io"
	"os"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/worker"
)

// prog is the binary's name in messages and help texts.
const prog = "albert"

func main() {
	worker.Main() // a worker process never returns from here
	os.Exit(cli.Main(prog, run))
}

const topUsage = `usage: albert <command> [flags]

hivemind's albert example with a fake workload: trainers coordinate an epoch-based collaborative
run through the DHT (signed <run_id>_metrics and <run_id>_progress records), a monitor aggregates
their metrics and logs "Step #<n>  loss = <x>" whenever the collaboration reaches a new step.

commands:
  demo      a monitor and N trainers on loopback in one go, until Ctrl-C (or --duration)
  monitor   the training monitor; prints the multiaddrs trainers join with
  trainer   one trainer (--initial-peers: the monitor's or any peer's multiaddr)
  help      this text; "albert <command> --help" explains a command's flags
`

// run dispatches a command line (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, args, stdout, stderr, topUsage, []cli.Command{
		{Name: "demo", Run: runDemo},
		{Name: "monitor", Run: runMonitor},
		{Name: "trainer", Run: runTrainer},
	})
}
