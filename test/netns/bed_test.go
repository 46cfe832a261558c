package netns

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listenIn runs the listen helper on addr inside h until the test ends, and waits until it is ready.
func listenIn(ctx context.Context, t *testing.T, h *Host, addr string) {
	t.Helper()
	cmd, err := helperCommand(ctx, h, helperListen, addr)
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
}

// dialFrom dials addr from h with the dial helper and returns the listener's answer (the address
// it saw the connection come from).
func dialFrom(ctx context.Context, h *Host, addr string) (string, error) {
	cmd, err := helperCommand(ctx, h, helperDial, addr)
	if err != nil {
		return "", err
	}
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// TestBedIsANAT checks the bed itself: a LAN host reaches the public segment from its router's
// address (masquerade), and nothing reaches a LAN host from outside it, neither from the public
// segment nor from another LAN, by its own address or its router's.
func TestBedIsANAT(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bed := New(t)
	pub := bed.PublicHost()
	lanA, lanB := bed.LAN(), bed.LAN()
	a, b := lanA.Host(), lanB.Host()
	listenIn(ctx, t, pub, pub.IP+":7000")
	listenIn(ctx, t, a, "0.0.0.0:7001")

	seen, err := dialFrom(ctx, a, pub.IP+":7000")
	require.NoError(t, err, "a LAN host reaches the public segment")
	assert.True(t, strings.HasPrefix(seen, lanA.WAN+":"), "the public host sees the router's address, not %s", seen)

	for _, tc := range []struct {
		name, to string
		h        *Host
	}{
		{name: "public host to the LAN host's address", h: pub, to: a.IP + ":7001"},
		{name: "public host to its router", h: pub, to: lanA.WAN + ":7001"},
		{name: "other LAN to the LAN host's address", h: b, to: a.IP + ":7001"},
		{name: "other LAN to its router", h: b, to: lanA.WAN + ":7001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialFrom(ctx, tc.h, tc.to)
			assert.Error(t, err, fmt.Sprintf("%s reaches %s", tc.h.NS, tc.to))
		})
	}
	seen, err = dialFrom(ctx, b, pub.IP+":7000")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(seen, lanB.WAN+":"), seen)
}

// TestCutAndHeal: a cut host reaches nobody and nobody reaches it; healed, it is reachable again.
func TestCutAndHeal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bed := New(t)
	pub, other := bed.PublicHost(), bed.PublicHost()
	listenIn(ctx, t, pub, pub.IP+":7000")
	listenIn(ctx, t, other, other.IP+":7000")

	require.NoError(t, pub.Cut())
	_, err := dialFrom(ctx, other, pub.IP+":7000")
	assert.Error(t, err, "a cut host is not reached")
	_, err = dialFrom(ctx, pub, other.IP+":7000")
	assert.Error(t, err, "a cut host reaches nobody")

	require.NoError(t, pub.Heal())
	seen, err := dialFrom(ctx, other, pub.IP+":7000")
	require.NoError(t, err, "a healed host is reached again")
	assert.True(t, strings.HasPrefix(seen, other.IP+":"), seen)
	_, err = dialFrom(ctx, pub, other.IP+":7000")
	assert.NoError(t, err, "a healed host reaches others again")
	assert.Error(t, pub.Heal(), "healing twice: no rule left to delete")
}
