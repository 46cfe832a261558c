package dhtsim

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/hivemind-go/hivemind/dht"
)

// Stateless, seeded pseudo-randomness: every value is a pure function of its inputs, so results do not
// depend on the order in which goroutines ask.

// mix is splitmix64's finalizer: a bijective, well-mixing function of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// stream is a splitmix64 sequence.
type stream struct{ state uint64 }

func (s *stream) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	return mix(s.state)
}

// float returns a uniform float64 in [0, 1).
func (s *stream) float() float64 { return float64(s.next()>>11) / (1 << 53) }

// hashPeer is FNV-1a of a peer ID.
func hashPeer(p dht.PeerID) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(p); i++ {
		h ^= uint64(p[i])
		h *= 1099511628211
	}
	return h
}

// Domain separators so that IDs, peer IDs and call fates never share a stream.
const (
	domainPeerID uint64 = 0x7065657269640000 + iota
	domainNodeID
	domainCall
	domainUser
)

func seeded(seed int64, domain uint64, parts ...uint64) stream {
	x := mix(uint64(seed) ^ domain)
	for _, p := range parts {
		x = mix(x ^ p)
	}
	return stream{state: x}
}

// fill fills b from s.
func (s *stream) fill(b []byte) {
	var buf [8]byte
	for len(b) > 0 {
		binary.LittleEndian.PutUint64(buf[:], s.next())
		b = b[copy(b, buf[:]):]
	}
}

// PeerIDFor returns the i-th simulated peer ID of a seed: a 38-byte identity multihash of a fake
// Ed25519 public key, the size and shape of a real libp2p peer ID.
func PeerIDFor(seed int64, i int) dht.PeerID {
	b := make([]byte, 38)
	copy(b, []byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20})
	s := seeded(seed, domainPeerID, uint64(i))
	s.fill(b[6:])
	return dht.PeerID(b)
}

// NodeIDFor returns the i-th simulated node ID of a seed, uniform in the 160-bit space.
func NodeIDFor(seed int64, i int) dht.ID {
	var id dht.ID
	s := seeded(seed, domainNodeID, uint64(i))
	s.fill(id[:])
	return id
}

// Rand returns a deterministic pseudo-random uint64 for (seed, parts...), for tests and simulations
// that need their own seeded choices (which keys, which nodes to kill) independent of the network's.
func Rand(seed int64, parts ...uint64) uint64 {
	s := seeded(seed, domainUser, parts...)
	return s.next()
}

// jitter draws one jitter value.
func (l Latency) draw(s *stream) time.Duration {
	d := l.Base
	if l.Jitter <= 0 {
		return d
	}
	switch l.Dist {
	case Exponential:
		u := s.float()
		j := -math.Log1p(-u) * float64(l.Jitter)
		d += time.Duration(min(j, 10*float64(l.Jitter)))
	default:
		d += time.Duration(s.float() * float64(l.Jitter))
	}
	return d
}
