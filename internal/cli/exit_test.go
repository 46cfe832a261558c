package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{name: "success", err: nil, code: ExitOK},
		{name: "help", err: flag.ErrHelp, code: ExitOK},
		{name: "wrapped help", err: fmt.Errorf("get: %w", flag.ErrHelp), code: ExitOK},
		{name: "usage", err: Usagef("--ttl must be positive, got %d", -1), code: ExitUsage,
			stderr: "prog: --ttl must be positive, got -1\n(see prog help)\n"},
		{name: "wrapped usage", err: fmt.Errorf("store: %w", Usagef("bad")), code: ExitUsage,
			stderr: "prog: bad\n(see prog help)\n"},
		{name: "validation error as usage", err: AsUsage(errors.New("NodeConfig:\n  InitialPeers: bad")), code: ExitUsage,
			stderr: "prog: NodeConfig:; InitialPeers: bad\n(see prog help)\n"},
		{name: "failure on one line", err: errors.New("cannot join\n  the   DHT "), code: ExitFailure,
			stderr: "prog: cannot join; the DHT\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			assert.Equal(t, tc.code, ExitCode("prog", tc.err, &stderr))
			assert.Equal(t, tc.stderr, stderr.String())
		})
	}
	require.NoError(t, AsUsage(nil))
}

func TestDispatch(t *testing.T) {
	const usage = "usage: prog <command>\n"
	var ran []string
	cmd := func(name string) Command {
		return Command{Name: name, Run: func(_ context.Context, args []string, _, _ io.Writer) error {
			ran = append(ran, fmt.Sprint(name, args))
			return nil
		}}
	}
	commands := []Command{cmd("get"), cmd("store")}
	tests := []struct {
		name           string
		args           []string
		usage          bool // a usage error
		stdout, stderr string
		ran            string
	}{
		{name: "no command", args: nil, usage: true, stderr: usage},
		{name: "unknown command", args: []string{"frob"}, usage: true, stderr: usage},
		{name: "help", args: []string{"help"}, stdout: usage},
		{name: "--help", args: []string{"--help"}, stdout: usage},
		{name: "a command with arguments", args: []string{"store", "k", "-1"}, ran: "store[k -1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ran = nil
			var stdout, stderr bytes.Buffer
			err := Dispatch(context.Background(), tc.args, &stdout, &stderr, usage, commands)
			if tc.usage {
				var u *UsageError
				require.ErrorAs(t, err, &u)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.stdout, stdout.String())
			assert.Equal(t, tc.stderr, stderr.String())
			if tc.ran != "" {
				assert.Equal(t, []string{tc.ran}, ran)
			} else {
				assert.Empty(t, ran)
			}
		})
	}
}

func TestObjectKeepsOrder(t *testing.T) {
	var o Object
	o.Add("z", 1).Add("a", Object{}).Add("m", []int{1})
	var buf bytes.Buffer
	require.NoError(t, PrintJSON(&buf, &o))
	assert.Equal(t, "{\n  \"z\": 1,\n  \"a\": {},\n  \"m\": [\n    1\n  ]\n}\n", buf.String())
	assert.Equal(t, 3, o.Len())
	v, ok := o.Get("m")
	assert.True(t, ok)
	assert.Equal(t, []int{1}, v)
	_, ok = o.Get("missing")
	assert.False(t, ok)
	var keys []string
	for k := range o.All() {
		keys = append(keys, k)
	}
	assert.Equal(t, []string{"z", "a", "m"}, keys)

	var bad Object
	bad.Add("f", func() {})
	require.Error(t, PrintJSON(io.Discard, bad), "a value JSON cannot hold is an error, not a panic")
}
