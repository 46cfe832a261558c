package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting of arrays, maps and tuples that Marshal writes and Unmarshal reads
// (the top-level value is depth 1). msgpack-python's unpacker stops at a similar depth, so deeper
// values could not be read by hivemind peers anyway; the cap also makes a cyclic Go value an error
// instead of a stack overflow.
const MaxDepth = 1024

// Marshal returns the msgpack encoding of v, byte for byte what hivemind's MSGPackSerializer.dumps
// writes for the equivalent Python value.
//
// Supported inputs: nil; bool; every Go int and uint kind (smallest encoding, unsigned forms for
// non-negative values, like msgpack-python); *big.Int within [-2^63, 2^64) (ErrIntOutOfRange
// otherwise); float32 (widened) and float64, always written as float64; string (str, must be valid
// UTF-8); []byte (bin, nil included); []any (array); Tuple (ext 0x40 around the array); *Map (map, in
// insertion order); Timestamp (ext −1, smallest form); Ext (ext with its own code; one of code
// ExtTimestamp whose payload is not a valid timestamp is ErrInvalidExt); Raw (written as is). A nil
// []any, Tuple or *Map
// writes an empty container. Named types, Go maps, structs and pointers other than *Map and *big.Int
// are refused with ErrUnsupportedType: the encoding of a value is never a guess.
func Marshal(v any) ([]byte, error) {
	return AppendMarshal(make([]byte, 0, 64), v)
}

// AppendMarshal appends the encoding of v to dst and returns the extended slice. On error it returns
// dst with its original length (its spare capacity may have been written to).
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	out, err := appendValue(dst, v, 1)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if x {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int8:
		return appendInt(b, int64(x)), nil
	case int16:
		return appendInt(b, int64(x)), nil
	case int32:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case uint:
		return appendUint(b, uint64(x)), nil
	case uint8:
		return appendUint(b, uint64(x)), nil
	case uint16:
		return appendUint(b, uint64(x)), nil
	case uint32:
		return appendUint(b, uint64(x)), nil
	case uint64:
		return appendUint(b, x), nil
	case *big.Int:
		return appendBig(b, x)
	case float32:
		return appendFloat(b, float64(x)), nil
	case float64:
		return appendFloat(b, x), nil
	case string:
		if !utf8.ValidString(x) {
			return b, fmt.Errorf("%w: Go string %q", ErrInvalidUTF8, x)
		}
		return append(appendStrHeader(b, len(x)), x...), nil
	case []byte:
		return append(appendBinHeader(b, len(x)), x...), nil
	case Raw:
		if len(x) == 0 {
			return b, fmt.Errorf("%w: empty Raw", ErrMalformed)
		}
		return append(b, x...), nil
	case Ext:
		if x.Code == ExtTimestamp {
			if _, err := timestampFrom(x.Data); err != nil {
				return b, err // what Unmarshal (and msgpack-python) would refuse to read back
			}
		}
		return append(appendExtHeader(b, len(x.Data), x.Code), x.Data...), nil
	case Timestamp:
		return appendTimestamp(b, x)
	case []any:
		return appendArray(b, x, depth)
	case Tuple:
		return appendTuple(b, x, depth)
	case *Map:
		return appendMap(b, x, depth)
	}
	return b, fmt.Errorf("%w: %T", ErrUnsupportedType, v)
}

func appendInt(b []byte, i int64) []byte {
	if i >= 0 {
		return appendUint(b, uint64(i))
	}
	switch {
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, 0xd0, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
}

func appendUint(b []byte, u uint64) []byte {
	switch {
	case u <= 0x7f:
		return append(b, byte(u))
	case u <= math.MaxUint8:
		return append(b, 0xcc, byte(u))
	case u <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
}

func appendBig(b []byte, x *big.Int) ([]byte, error) {
	if x == nil {
		return b, fmt.Errorf("%w: nil *big.Int", ErrUnsupportedType)
	}
	switch {
	case x.IsInt64():
		return appendInt(b, x.Int64()), nil
	case x.IsUint64():
		return appendUint(b, x.Uint64()), nil
	}
	return b, fmt.Errorf("%w: %s", ErrIntOutOfRange, x)
}

func appendFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
}

func appendBinHeader(b []byte, n int) []byte {
	switch {
	case n <= math.MaxUint8:
		return append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// appendExtHeader writes msgpack-python's choice of header: fixext for payloads of 1, 2, 4, 8 or 16
// bytes, else the smallest of ext8/16/32 (so an empty payload is ext8 with length 0).
func appendExtHeader(b []byte, n int, code int8) []byte {
	switch n {
	case 1:
		return append(b, 0xd4, byte(code))
	case 2:
		return append(b, 0xd5, byte(code))
	case 4:
		return append(b, 0xd6, byte(code))
	case 8:
		return append(b, 0xd7, byte(code))
	case 16:
		return append(b, 0xd8, byte(code))
	}
	switch {
	case n <= math.MaxUint8:
		return append(b, 0xc7, byte(n), byte(code))
	case n <= math.MaxUint16:
		return append(binary.BigEndian.AppendUint16(append(b, 0xc8), uint16(n)), byte(code))
	}
	return append(binary.BigEndian.AppendUint32(append(b, 0xc9), uint32(n)), byte(code))
}

// appendTimestamp writes ts as msgpack-python's msgpack_pack_timestamp does (0xff is the type byte
// of ext −1): 4 bytes when there are no nanoseconds and the seconds fit 32 unsigned bits, 8 bytes
// when the seconds fit 34 unsigned bits, else 12 bytes.
func appendTimestamp(b []byte, ts Timestamp) ([]byte, error) {
	if ts.Nanoseconds >= 1e9 {
		return b, fmt.Errorf("%w: timestamp nanoseconds %d", ErrInvalidExt, ts.Nanoseconds)
	}
	if ts.Seconds>>34 == 0 {
		data64 := uint64(ts.Nanoseconds)<<34 | uint64(ts.Seconds)
		if data64>>32 == 0 {
			return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(data64)), nil
		}
		return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), data64), nil
	}
	b = binary.BigEndian.AppendUint32(append(b, 0xc7, 12, 0xff), ts.Nanoseconds)
	return binary.BigEndian.AppendUint64(b, uint64(ts.Seconds)), nil
}

func appendArray(b []byte, items []any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, ErrTooDeep
	}
	b = appendArrayHeader(b, len(items))
	for _, it := range items {
		var err error
		if b, err = appendValue(b, it, depth+1); err != nil {
			return b, err
		}
	}
	return b, nil
}

// maxExtHeader is the longest ext header: c9, a 4-byte length and the type byte.
const maxExtHeader = 6

// appendTuple writes ext 0x40 around the array encoding of t. The payload is encoded in place after
// room for the longest header, then moved left once its length (hence the header size) is known.
func appendTuple(b []byte, t Tuple, depth int) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, maxExtHeader)...)
	b, err := appendArray(b, t, depth+1)
	if err != nil {
		return b, err
	}
	n := len(b) - start - maxExtHeader
	var hdr [maxExtHeader]byte
	h := appendExtHeader(hdr[:0], n, ExtTuple)
	copy(b[start+len(h):], b[start+maxExtHeader:])
	copy(b[start:], h)
	return b[:start+len(h)+n], nil
}

func appendMap(b []byte, m *Map, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, ErrTooDeep
	}
	b = appendMapHeader(b, m.Len())
	for k, v := range m.All() {
		var err error
		if b, err = appendValue(b, k, depth+1); err != nil {
			return b, err
		}
		if b, err = appendValue(b, v, depth+1); err != nil {
			return b, err
		}
	}
	return b, nil
}

// Equal reports whether a and b have the same msgpack encoding: same types on the wire, integers of
// any Go kind by value, floats by bit pattern (NaN equals itself, -0.0 differs from 0.0), maps in
// the same order. A value that cannot be encoded equals nothing.
func Equal(a, b any) bool {
	ea, err := Marshal(a)
	if err != nil {
		return false
	}
	eb, err := Marshal(b)
	if err != nil {
		return false
	}
	return string(ea) == string(eb)
}
