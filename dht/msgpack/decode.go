package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Unmarshal decodes exactly one msgpack value from data, as hivemind's MSGPackSerializer.loads does,
// and fails with ErrExtraData if bytes remain after it.
//
// Decoded types: nil; bool; int64 for every integer that fits it, uint64 for integers in
// [2^63, 2^64) (whatever form was on the wire: 0xcc 0x05 and 0x05 both give int64(5)); float64
// (float32 widens); string (str, valid UTF-8 or ErrInvalidUTF8); []byte (bin); []any (array); *Map
// (map; keys must be str or bin, else ErrMapKeyType; a repeated key replaces the earlier value in
// place, like a Python dict); Tuple (ext 0x40); Timestamp (ext −1); Ext for ext 0x50 and 0x51 (0x50
// dictionaries: package dht interprets them); []byte for an ext of any other code. Decoded byte
// strings never alias data.
//
// A tuple is decoded the way hivemind does it, tuple(loads(payload)): the payload must be one
// complete value; an array gives its items, a str its characters, a bin its byte values (int64), a
// map its keys and a nested tuple its items; any other payload is ErrMalformed. A timestamp (ext −1)
// decodes to a Timestamp (ErrInvalidExt unless its payload is 4, 8 or 12 bytes with nanoseconds
// below 10^9), ext 0x50 and 0x51 to an Ext, and an ext of any other code to its payload ([]byte), as
// hivemind's ext hook returns it.
//
// Unmarshal is safe on hostile input: it never allocates for more items or bytes than the remaining
// input could hold (a 5-byte header claiming 2^32 items fails at once with ErrTruncated), and
// nesting deeper than MaxDepth fails with ErrTooDeep.
func Unmarshal(data []byte) (any, error) {
	v, rest, err := UnmarshalPrefix(data)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after a value of %d bytes", ErrExtraData, len(rest), len(data)-len(rest))
	}
	return v, nil
}

// UnmarshalPrefix decodes the first msgpack value in data and returns it with the bytes that follow
// it (a subslice of data), for reading a sequence of concatenated values. Rules as for Unmarshal.
func UnmarshalPrefix(data []byte) (v any, rest []byte, err error) {
	d := decoder{data: data}
	v, err = d.value(1)
	if err != nil {
		return nil, nil, err
	}
	return v, data[d.pos:], nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) remaining() int { return len(d.data) - d.pos }

func (d *decoder) truncated(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrTruncated, what, d.pos)
}

// take returns the next n bytes (aliasing the input) or ErrTruncated.
func (d *decoder) take(n int, what string) ([]byte, error) {
	if n < 0 || n > d.remaining() {
		return nil, d.truncated(what)
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

// length reads a big-endian unsigned length of size bytes.
func (d *decoder) length(size int, what string) (int, error) {
	b, err := d.take(size, what)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return int(b[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), nil
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(math.MaxInt) {
		return 0, d.truncated(what)
	}
	return int(n), nil
}

func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.truncated("value")
	}
	c := d.data[d.pos]
	d.pos++
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c >= 0xa0 && c <= 0xbf:
		return d.str(int(c & 0x1f))
	case c >= 0x90 && c <= 0x9f:
		return d.array(int(c&0x0f), depth)
	case c >= 0x80 && c <= 0x8f:
		return d.mapOf(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.length(1<<(c-0xc4), "bin length")
		if err != nil {
			return nil, err
		}
		b, err := d.take(n, "bin")
		if err != nil {
			return nil, err
		}
		return append([]byte{}, b...), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.length(1<<(c-0xc7), "ext length")
		if err != nil {
			return nil, err
		}
		return d.ext(n, depth)
	case 0xca:
		b, err := d.take(4, "float32")
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(binary.BigEndian.Uint32(b))), nil
	case 0xcb:
		b, err := d.take(8, "float64")
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(b)), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		b, err := d.take(1<<(c-0xcc), "uint")
		if err != nil {
			return nil, err
		}
		u := beUint(b)
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		b, err := d.take(size, "int")
		if err != nil {
			return nil, err
		}
		// Sign-extend from the top bit of the size-byte value.
		shift := uint(64 - 8*size)
		return int64(beUint(b)<<shift) >> shift, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1<<(c-0xd4), depth)
	case 0xd9, 0xda, 0xdb:
		n, err := d.length(1<<(c-0xd9), "str length")
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.length(2<<(c-0xdc), "array length")
		if err != nil {
			return nil, err
		}
		return d.array(n, depth)
	case 0xde, 0xdf:
		n, err := d.length(2<<(c-0xde), "map length")
		if err != nil {
			return nil, err
		}
		return d.mapOf(n, depth)
	}
	return nil, fmt.Errorf("%w: reserved byte 0x%02x at offset %d", ErrMalformed, c, d.pos-1)
}

func beUint(b []byte) uint64 {
	var u uint64
	for _, x := range b {
		u = u<<8 | uint64(x)
	}
	return u
}

func (d *decoder) str(n int) (any, error) {
	start := d.pos
	b, err := d.take(n, "str")
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: str at offset %d", ErrInvalidUTF8, start)
	}
	return string(b), nil
}

func (d *decoder) array(n, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w: at offset %d", ErrTooDeep, d.pos)
	}
	// Every item takes at least one byte: a longer claim cannot be honest.
	if n > d.remaining() {
		return nil, d.truncated(fmt.Sprintf("array of %d items", n))
	}
	items := make([]any, n)
	for i := range items {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items[i] = v
	}
	return items, nil
}

func (d *decoder) mapOf(n, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%w: at offset %d", ErrTooDeep, d.pos)
	}
	// Every entry takes at least two bytes.
	if n > d.remaining()/2 {
		return nil, d.truncated(fmt.Sprintf("map of %d entries", n))
	}
	m := &Map{keys: make([]any, 0, n), values: make([]any, 0, n)}
	for range n {
		keyPos := d.pos
		key, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		k, ok := keyOf(key)
		if !ok {
			return nil, fmt.Errorf("%w: %T key at offset %d", ErrMapKeyType, key, keyPos)
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if i := m.find(k); i >= 0 {
			m.values[i] = v
		} else {
			m.appendNew(k, key, v)
		}
	}
	return m, nil
}

func (d *decoder) ext(n, depth int) (any, error) {
	codeByte, err := d.take(1, "ext type")
	if err != nil {
		return nil, err
	}
	code := int8(codeByte[0])
	payloadPos := d.pos
	payload, err := d.take(n, "ext payload")
	if err != nil {
		return nil, err
	}
	switch code {
	case ExtTuple:
	case ExtTimestamp:
		ts, err := timestampFrom(payload)
		if err != nil {
			return nil, fmt.Errorf("%w at offset %d", err, payloadPos)
		}
		return ts, nil
	case ExtDictionary, ExtTensor:
		return Ext{Code: code, Data: append([]byte{}, payload...)}, nil
	default:
		// hivemind's ext hook: "Unknown ExtType code: ..., leaving it as is" returns the payload.
		return append([]byte{}, payload...), nil
	}
	// The tuple is one level and the sequence inside it the next, as Marshal counts them.
	if depth+1 > MaxDepth {
		return nil, fmt.Errorf("%w: at offset %d", ErrTooDeep, payloadPos)
	}
	inner := decoder{data: payload}
	v, err := inner.value(depth + 1)
	if err != nil {
		return nil, fmt.Errorf("tuple payload at offset %d: %w", payloadPos, err)
	}
	if inner.pos != len(payload) {
		return nil, fmt.Errorf("%w: %d bytes after the tuple payload at offset %d", ErrExtraData, len(payload)-inner.pos, payloadPos)
	}
	return toTuple(v, payloadPos)
}

// toTuple is Python's tuple(x) for a decoded payload x.
func toTuple(v any, pos int) (Tuple, error) {
	switch x := v.(type) {
	case []any:
		return Tuple(x), nil
	case Tuple:
		return x, nil
	case string:
		t := make(Tuple, 0, utf8.RuneCountInString(x))
		for _, r := range x {
			t = append(t, string(r))
		}
		return t, nil
	case []byte:
		t := make(Tuple, len(x))
		for i, c := range x {
			t[i] = int64(c)
		}
		return t, nil
	case *Map:
		return Tuple(append([]any{}, x.keys...)), nil
	}
	return nil, fmt.Errorf("%w: tuple payload at offset %d is a %T, not a sequence", ErrMalformed, pos, v)
}

// timestampFrom is msgpack-python's Timestamp.from_bytes followed by its constructor's check.
func timestampFrom(b []byte) (Timestamp, error) {
	var ts Timestamp
	switch len(b) {
	case 4:
		ts.Seconds = int64(binary.BigEndian.Uint32(b))
	case 8:
		data64 := binary.BigEndian.Uint64(b)
		ts.Seconds, ts.Nanoseconds = int64(data64&(1<<34-1)), uint32(data64>>34)
	case 12:
		ts.Nanoseconds, ts.Seconds = binary.BigEndian.Uint32(b), int64(binary.BigEndian.Uint64(b[4:]))
	default:
		return Timestamp{}, fmt.Errorf("%w: a timestamp of %d bytes (want 4, 8 or 12)", ErrInvalidExt, len(b))
	}
	if ts.Nanoseconds >= 1e9 {
		return Timestamp{}, fmt.Errorf("%w: timestamp nanoseconds %d", ErrInvalidExt, ts.Nanoseconds)
	}
	return ts, nil
}
