package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hivemind-go/hivemind/internal/cli"
)

// TestBenchUsageErrors: a bad bench command line is a usage error before any worker starts.
func TestBenchUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "one worker", args: []string{"bench", "--workers", "1"}},
		{name: "no ops", args: []string{"bench", "--ops", "0"}},
		{name: "nothing in flight", args: []string{"bench", "--inflight", "0"}},
		{name: "empty batch", args: []string{"bench", "--batch", "0"}},
		{name: "no waves", args: []string{"bench", "--repeat", "0"}},
		{name: "no starts", args: []string{"bench", "--starts", "0"}},
		{name: "unknown workload", args: []string{"bench", "--only", "latency,speed"}},
		{name: "an argument", args: []string{"bench", "extra"}},
		{name: "bad initial peer", args: []string{"bench", "--initial-peers", "not-a-maddr"}},
		{name: "workers that cannot be dialled", args: []string{"bench", "--no-listen"}},
		{name: "unwritable block profile", args: []string{"bench", "--blockprofile", "/dev/null/block.pprof"}},
		{name: "unwritable CPU profile", args: []string{"bench", "--cpuprofile", "/dev/null/cpu.pprof"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			assert.Equal(t, 2, cli.ExitCode(prog, err, &errb), "err %v", err)
			assert.Empty(t, out.String(), "nothing measured")
		})
	}
}
