package browser

import (
	"context"
	"os/exec"
	"time"
)

// runCLI runs a one-shot command of a binary of the suite and returns its combined output.
func runCLI(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}
