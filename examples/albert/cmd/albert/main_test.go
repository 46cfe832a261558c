package main

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/internal/cli"
)

// TestCommandLine checks usage errors and help; none of these cases starts a node.
func TestCommandLine(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		usage bool   // a usage error (exit status 2)
		out   string // expected in stdout or stderr
	}{
		{name: "no command", args: nil, usage: true, out: "commands:"},
		{name: "unknown command", args: []string{"train"}, usage: true, out: "commands:"},
		{name: "help", args: []string{"help"}, out: "demo"},
		{name: "demo without trainers", args: []string{"demo", "--trainers", "0"}, usage: true},
		{name: "demo with a key file", args: []string{"demo", "--key-file", "k.pem"}, usage: true},
		{name: "trainer with no batch", args: []string{"trainer", "--batch-size", "0"}, usage: true},
		{name: "trainer with a bad flag", args: []string{"trainer", "--bogus"}, usage: true},
		{name: "monitor with an argument", args: []string{"monitor", "extra"}, usage: true},
		{name: "monitor with a bad level", args: []string{"monitor", "--log-level", "loud"}, usage: true},
		{name: "monitor with no refresh", args: []string{"monitor", "--refresh-period", "0s"}, usage: true, out: "is not positive"},
		{name: "demo with a negative refresh", args: []string{"demo", "--refresh-period", "-1s"}, usage: true, out: "is not positive"},
		{name: "monitor with an argument after --", args: []string{"monitor", "--", "-x"}, usage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			var u *cli.UsageError
			if tc.usage {
				require.ErrorAs(t, err, &u)
				require.Equal(t, cli.ExitUsage, cli.ExitCode(prog, err, &stderr))
			} else {
				require.NoError(t, err)
			}
			require.Contains(t, stdout.String()+stderr.String(), tc.out)
		})
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"trainer", "--help"}, &bytes.Buffer{}, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Zero(t, cli.ExitCode(prog, err, &stderr))
	require.True(t, strings.Contains(stderr.String(), "--target-batch-size"), stderr.String())
}
