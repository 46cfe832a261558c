package jitterlink

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRelaysBothWays: datagrams reach the target through the link and answers come back, each
// delayed; Close ends everything and is idempotent.
func TestRelaysBothWays(t *testing.T) {
	echo, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = echo.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteToUDP(buf[:n], from)
		}
	}()
	l, err := New(echo.LocalAddr().(*net.UDPAddr), 5*time.Millisecond, 1)
	require.NoError(t, err)
	t.Cleanup(l.Close)

	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: l.Port()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	got := map[string]bool{}
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	for _, m := range []string{"a", "b", "c"} {
		_, err := c.Write([]byte(m))
		require.NoError(t, err)
	}
	buf := make([]byte, 16)
	for len(got) < 3 {
		n, err := c.Read(buf)
		require.NoError(t, err, "every datagram comes back (in any order)")
		got[string(buf[:n])] = true
	}
	l.Close()
	l.Close()
}
