package dht

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"math/bits"
)

// IDLen is the length of a serialized ID: 160 bits, big-endian.
const IDLen = 20

// ID is a 160-bit DHT identifier (hivemind's DHTID), stored big-endian. Node IDs are random; key IDs
// are the SHA-1 of the key's msgpack encoding (or of the raw bytes of a raw key). The zero value is the
// ID 0. IDs compare as unsigned integers.
type ID [IDLen]byte

// IDFromBytes reads b as a big-endian integer, like hivemind's DHTID.from_bytes: any length is accepted
// (empty is 0) as long as the value is below 2^160; otherwise it returns ErrIDOutOfRange.
func IDFromBytes(b []byte) (ID, error) {
	var id ID
	if len(b) > IDLen {
		extra := b[:len(b)-IDLen]
		if len(bytes.TrimLeft(extra, "\x00")) != 0 {
			return id, fmt.Errorf("%w: %d-byte value", ErrIDOutOfRange, len(b))
		}
		b = b[len(b)-IDLen:]
	}
	copy(id[IDLen-len(b):], b)
	return id, nil
}

// HashID is the ID of an already-encoded key: SHA-1 of data, read big-endian.
func HashID(data []byte) ID { return ID(sha1.Sum(data)) }

// RandomID returns a uniformly random ID (hivemind hashes random bits; only uniformity matters).
func RandomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic("dht: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return id
}

// Bytes returns the 20-byte big-endian serialization (a fresh slice).
func (id ID) Bytes() []byte { return append([]byte(nil), id[:]...) }

// String returns the 40-digit lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Big returns the ID as an integer.
func (id ID) Big() *big.Int { return new(big.Int).SetBytes(id[:]) }

// Xor returns the XOR distance between two IDs, itself an ID-sized integer.
func (id ID) Xor(other ID) ID {
	var d ID
	be := binary.BigEndian
	be.PutUint64(d[0:8], be.Uint64(id[0:8])^be.Uint64(other[0:8]))
	be.PutUint64(d[8:16], be.Uint64(id[8:16])^be.Uint64(other[8:16]))
	be.PutUint32(d[16:20], be.Uint32(id[16:20])^be.Uint32(other[16:20]))
	return d
}

// Cmp compares two IDs as unsigned integers: -1, 0 or +1. (Word by word: the traversal compares
// distances in its innermost loops, where bytes.Compare's call cost showed.)
func (id ID) Cmp(other ID) int {
	be := binary.BigEndian
	if c := cmp.Compare(be.Uint64(id[0:8]), be.Uint64(other[0:8])); c != 0 {
		return c
	}
	if c := cmp.Compare(be.Uint64(id[8:16]), be.Uint64(other[8:16])); c != 0 {
		return c
	}
	return cmp.Compare(be.Uint32(id[16:20]), be.Uint32(other[16:20]))
}

// Less reports whether id < other as unsigned integers.
func (id ID) Less(other ID) bool { return id.Cmp(other) < 0 }

// CloserTo reports whether a is strictly closer to target than b by XOR distance.
func CloserTo(target, a, b ID) bool { return a.Xor(target).Less(b.Xor(target)) }

// CommonPrefixLen returns the number of leading bits that all the given IDs share (160 for one ID or
// identical IDs), like hivemind's DHTID.longest_common_prefix_length.
func CommonPrefixLen(ids ...ID) int {
	if len(ids) == 0 {
		return 0
	}
	n := IDLen * 8
	for _, other := range ids[1:] {
		d := ids[0].Xor(other)
		for i, b := range d {
			if b != 0 {
				n = min(n, i*8+bits.LeadingZeros8(b))
				break
			}
		}
	}
	return n
}
