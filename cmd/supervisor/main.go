// Command supervisor runs hivemind DHT workers: a supervised local swarm (run), a single node like
// hivemind-dht (dht), one-shot get and store, identity key generation and a running supervisor's
// status. Every worker is this same binary, re-executed: main calls worker.Main() first.
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

// exitCode prints err as one line and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	var usage *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "supervisor: %s\n(see supervisor help)\n", usage.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "supervisor: %s\n", oneLine(err))
		return 1
	}
}

const topUsage = `usage: supervisor <command> [flags] [arguments]

Runs hivemind DHT workers (Go processes speaking hivemind's wire protocol) under a supervisor.

commands:
  run       a supervised swarm of workers (default: 3 on loopback) with an admin endpoint
  dht       one DHT node, like hivemind-dht: prints MADDR lines, then status every period
  get       look a key up through a short-lived client-mode node; prints JSON
  store     store a value through a short-lived client-mode node; prints JSON
  keygen    write an identity key file (rsa: hivemind and p2pd; ed25519: p2pd and Go nodes)
  status    show a running supervisor's workers
  help      this text; "supervisor <command> --help" explains a command's flags

Try it:
  supervisor run                      # prints each worker's address and how to query it
  supervisor status                   # from another terminal
`

// run dispatches a command line (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runSwarm(ctx, rest, stdout, stderr)
	case "dht":
		return runDHT(ctx, rest, stdout, stderr)
	case "get":
		return runGet(ctx, rest, stdout, stderr)
	case "store":
		return runStore(ctx, rest, stdout, stderr)
	case "keygen":
		return runKeygen(rest, stdout, stderr)
	case "status":
		return runStatus(ctx, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, topUsage)
		return nil
	default:
		fmt.Fprint(stderr, topUsage)
		return usagef("unknown command %q", cmd)
	}
}
