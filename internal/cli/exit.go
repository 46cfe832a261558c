package cli

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
)

// Exit statuses of the project's binaries.
const (
	ExitOK      = 0 // success, or --help
	ExitFailure = 1 // a runtime failure
	ExitUsage   = 2 // a bad command line
)

// UsageError is a bad command line: ExitCode prints it with a hint to see the help and returns
// ExitUsage.
type UsageError struct {
	// Msg is the one-line message printed after the program's name.
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// AsUsage turns err (a configuration's Validate error, say) into a *UsageError with err's text on
// one line; nil stays nil.
func AsUsage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Msg: OneLine(err)}
}

// OneLine flattens an error's message into one line: line breaks become "; " and runs of white
// space one space.
func OneLine(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.Join(strings.Fields(s), " ")
}

// ExitCode prints err on stderr as one line prefixed with "prog: " and returns the exit status:
// ExitOK for nil and flag.ErrHelp (the flag set printed its help), ExitUsage for a *UsageError,
// ExitFailure otherwise.
func ExitCode(prog string, err error, stderr io.Writer) int {
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %s\n(see %s help)\n", prog, OneLine(usage), prog)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %s\n", prog, OneLine(err))
		return ExitFailure
	}
}

// RunFunc runs a binary or one of its commands on a command line (without the program's or the
// command's name). It writes only to stdout and stderr and returns when ctx ends at the latest.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs run on the process's command line with a context that ends on SIGINT or SIGTERM, and
// returns the exit status for os.Exit (see ExitCode). Only main should call it.
func Main(prog string, run RunFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ExitCode(prog, run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr)
}

// Command is one command of a binary ("supervisor get").
type Command struct {
	Name string
	Run  RunFunc
}

// Dispatch runs the command args[0] names with the rest of args. "help", "-h", "-help" and "--help"
// print usage on stdout; no command or an unknown one prints usage on stderr and is a usage error.
func Dispatch(ctx context.Context, args []string, stdout, stderr io.Writer, usage string, commands []Command) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return Usagef("no command given")
	}
	name, rest := args[0], args[1:]
	for _, c := range commands {
		if c.Name == name {
			return c.Run(ctx, rest, stdout, stderr)
		}
	}
	switch name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return Usagef("unknown command %q", name)
}
