// Package cli is the command-line plumbing the project's binaries (cmd/supervisor and
// examples/albert/cmd/albert) share: exit codes and usage errors, command dispatch, flag sets with a
// help text, argument parsing with flags anywhere, list, log-level and positive-duration flags, and
// ordered JSON output. It holds no DHT logic and imports only the standard library.
//
// The contract every binary follows:
//
//   - main calls worker.Main() first, then os.Exit(cli.Main(prog, run)); run(ctx, args, stdout, stderr)
//     returns an error and never exits. ctx ends on SIGINT or SIGTERM.
//   - Exit status: ExitOK (0) on success and for --help, ExitUsage (2) for a bad command line (an error
//     that is, or wraps, a *UsageError), ExitFailure (1) for anything else. The error is printed on
//     stderr as one line "prog: message"; a usage error adds a hint to see the help.
//   - Flags may come before, between or after the positional arguments. "--" ends the flags: every
//     later argument is positional, whatever it looks like. Before "--", an argument that starts with
//     "-" is a flag unless the command says it is a positional value (ParseArgs' isValue: a VALUE -1
//     after the KEY, say).
package cli
