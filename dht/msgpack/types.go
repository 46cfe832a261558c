// Package msgpack is a msgpack codec byte-compatible with hivemind's MSGPackSerializer
// (msgpack-python with use_bin_type=True, strict_types=True, tuples as ext 0x40).
//
// The value model:
//
//	nil, bool, int64, uint64 (other Go integer kinds are accepted on encode), float64 (float32 widens),
//	string (msgpack str), []byte (msgpack bin), []any (msgpack array), Tuple (ext 0x40),
//	*Map (insertion-ordered, str or bin keys only), Ext (any other ext code, kept as it is),
//	Raw (pre-encoded msgpack, written through untouched).
//
// Encoding always picks the smallest form, and floats are always float64, exactly as hivemind writes
// them. Decoding accepts every valid form (non-minimal ints, float32, ...) and rejects trailing data.
// Decoded integers are int64 whenever they fit, uint64 only in [2^63, 2^64): switch on both.
//
// Errors wrap the sentinels of errors.go. The package holds no state: every function is safe for
// concurrent use (a *Map value is not: see Map).
package msgpack

// Tuple is hivemind's tuple: msgpack ext type 0x40 wrapping an array. It decodes back to a Tuple, so a
// tuple and a list of the same items stay distinguishable.
type Tuple []any

// Ext is an ext type other than 0x40 (tuple), kept as its code and payload. hivemind's dictionary
// values (DictionaryDHTValue) are ext 0x50; package dht interprets them.
type Ext struct {
	Code int8
	Data []byte
}

// Raw is a complete msgpack encoding of one value, written through untouched by the encoder (signed
// values are never re-encoded). The decoder never produces Raw.
type Raw []byte

// Ext type codes used by hivemind.
const (
	ExtTuple      int8 = 0x40
	ExtDictionary int8 = 0x50
	ExtTensor     int8 = 0x51
)
