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
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hivemind-go/hivemind/worker"
)

func main() {
	worker.Main() // a worker process never returns from here
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
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
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "monitor":
		return runMonitor(ctx, rest, stdout, stderr)
	case "trainer":
		return runTrainer(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return nil
	default:
		fmt.Fprint(stderr, topUsage)
		return usagef("unknown command %q", cmd)
	}
}

// exitCode prints err as one line and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "albert: %s\n(see albert help)\n", usage.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "albert: %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
}
