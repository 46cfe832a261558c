// Package jitterlink is a loopback UDP relay that delays every datagram by its own random amount, for
// tests that need a congested path on one machine (the fresh-client tests of p2p/dhtrpc and
// test/chaos): placed in front of a QUIC address, it makes the streams of one connection (identify,
// a kad query, a DHT RPC) overtake each other.
package jitterlink

import (
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// spikeOdds: one datagram in spikeOdds waits up to the link's spike on top of its base delay.
const spikeOdds = 2

// Link relays datagrams sent to 127.0.0.1:Port() to a target address and the answers back, each
// after its own random delay: up to a millisecond, plus up to spike for one in spikeOdds. The delays
// are drawn from one generator seeded by New's seed, in the order the datagrams arrive: a seed gives
// the same sequence of delays, not the same run (which datagram draws which depends on timing).
// Each sender gets its own socket towards the target, so the target sees one peer per sender.
type Link struct {
	front  *net.UDPConn // faces the senders
	target *net.UDPAddr
	spike  time.Duration
	done   chan struct{}
	wg     sync.WaitGroup

	mu        sync.Mutex
	rng       *rand.Rand
	upstreams map[string]*net.UDPConn // sender address → its socket towards target; nil once closed
}

// New starts a link in front of target. Close it when done.
func New(target *net.UDPAddr, spike time.Duration, seed uint64) (*Link, error) {
	front, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	l := &Link{
		front: front, target: target, spike: spike, done: make(chan struct{}),
		rng: rand.New(rand.NewPCG(seed, 17)), upstreams: make(map[string]*net.UDPConn),
	}
	l.wg.Go(l.serveFront)
	return l, nil
}

// Port is the link's UDP port on 127.0.0.1.
func (l *Link) Port() int { return l.front.LocalAddr().(*net.UDPAddr).Port }

// Close stops the link; datagrams still waiting are dropped. It returns once every goroutine ended.
func (l *Link) Close() {
	l.mu.Lock()
	if l.upstreams == nil {
		l.mu.Unlock()
		return
	}
	close(l.done)
	ups := l.upstreams
	l.upstreams = nil
	l.mu.Unlock()
	_ = l.front.Close()
	for _, up := range ups {
		_ = up.Close()
	}
	l.wg.Wait()
}

func (l *Link) delay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := time.Duration(l.rng.Int64N(int64(time.Millisecond)))
	if l.spike > 0 && l.rng.IntN(spikeOdds) == 0 {
		d += time.Duration(l.rng.Int64N(int64(l.spike)))
	}
	return d
}

// later sends a copy of b with send after a random delay, unless the link closes first.
func (l *Link) later(b []byte, send func([]byte)) {
	b = append([]byte(nil), b...)
	l.wg.Go(func() {
		t := time.NewTimer(l.delay())
		defer t.Stop()
		select {
		case <-t.C:
			send(b)
		case <-l.done:
		}
	})
}

func (l *Link) serveFront() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.front.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if up, err := l.upstream(from); err == nil {
			l.later(buf[:n], func(b []byte) { _, _ = up.Write(b) })
		}
	}
}

// upstream returns the socket relaying from's datagrams to the target, starting it on first use.
func (l *Link) upstream(from *net.UDPAddr) (*net.UDPConn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.upstreams == nil {
		return nil, net.ErrClosed
	}
	if up, ok := l.upstreams[from.String()]; ok {
		return up, nil
	}
	up, err := net.DialUDP("udp", nil, l.target)
	if err != nil {
		return nil, err
	}
	l.upstreams[from.String()] = up
	l.wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			l.later(buf[:n], func(b []byte) { _, _ = l.front.WriteToUDP(b, from) })
		}
	})
	return up, nil
}
