// Command supervisor runs hivemind DHT workers: a supervised local swarm (run), a single node like
// hivemind-dht (dht), one-shot get and store, identity key generation and a running supervisor's
// status. Every worker is this same binary, re-executed: main calls worker.Main() first.
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
const prog = "supervisor"

func main() {
	worker.Main() // a worker process never returns from here
	os.Exit(cli.Main(prog, run))
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
  bench     measure a swarm of workers (latency, throughput, batches, start-up, memory) against baselines
  help      this text; "supervisor <command> --help" explains a command's flags

Flags may come before or after the arguments; "--" ends the flags (supervisor store -- -key -1).

Try it:
  supervisor run                      # prints each worker's address and how to query it
  supervisor status                   # from another terminal
`

// run dispatches a command line (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return cli.Dispatch(ctx, args, stdout, stderr, topUsage, []cli.Command{
		{Name: "run", Run: runSwarm},
		{Name: "dht", Run: runDHT},
		{Name: "get", Run: runGet},
		{Name: "store", Run: runStore},
		{Name: "keygen", Run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return runKeygen(args, stdout, stderr)
		}},
		{Name: "status", Run: runStatus},
		{Name: "bench", Run: runBench},
	})
}
