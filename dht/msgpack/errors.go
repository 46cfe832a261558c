package msgpack

import "errors"

// Sentinel errors of the msgpack package. Every error returned by Marshal, AppendMarshal, Unmarshal
// and UnmarshalPrefix wraps exactly one of them (check with errors.Is); the wrapping text adds the Go
// type or the input offset. The names follow the error kinds of the golden vectors (int_out_of_range,
// unsupported_type, map_key_type, invalid_utf8, truncated, extra_data, invalid_ext).
var (
	// ErrIntOutOfRange: an integer outside msgpack's range [-2^63, 2^64) (a *big.Int on encode).
	ErrIntOutOfRange = errors.New("msgpack: integer out of range")
	// ErrUnsupportedType: a Go value outside the value model (see the package documentation).
	ErrUnsupportedType = errors.New("msgpack: unsupported type")
	// ErrMapKeyType: a map key that is neither str nor bin. hivemind's decoder (msgpack-python with
	// strict_map_key) refuses such maps, so this package neither decodes nor produces them.
	ErrMapKeyType = errors.New("msgpack: map key must be str or bytes")
	// ErrInvalidUTF8: a str (on the wire) or a Go string (on encode) that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("msgpack: invalid UTF-8 in str")
	// ErrTruncated: the input ends inside a value, or declares more items or bytes than remain.
	ErrTruncated = errors.New("msgpack: truncated input")
	// ErrExtraData: bytes remain after the one value Unmarshal expects.
	ErrExtraData = errors.New("msgpack: extra data after the value")
	// ErrTooDeep: containers (arrays, maps, tuples) nested deeper than MaxDepth.
	ErrTooDeep = errors.New("msgpack: nesting too deep")
	// ErrInvalidExt: an ext payload that msgpack-python refuses: a timestamp (ext −1) that is not 4, 8
	// or 12 bytes long or whose nanoseconds are not below 10^9 (also on encode).
	ErrInvalidExt = errors.New("msgpack: invalid ext payload")
	// ErrMalformed: bytes that are not msgpack (the reserved byte 0xc1, a tuple payload that is not
	// a sequence, an empty Raw on encode).
	ErrMalformed = errors.New("msgpack: malformed input")
)
