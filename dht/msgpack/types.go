// Package msgpack is a msgpack codec byte-compatible with hivemind's MSGPackSerializer
// (msgpack-python with use_bin_type=True, strict_types=True, tuples as ext 0x40).
//
// The value model:
//
//	nil, bool, int64, uint64 (other Go integer kinds are accepted on encode), float64 (float32 widens),
//	string (msgpack str), []byte (msgpack bin), []any (msgpack array), Tuple (ext 0x40),
//	*Map (insertion-ordered, str or bin keys only), Timestamp (ext −1), Ext (the ext codes hivemind
//	registers, 0x50 and 0x51, kept as they are for the packages that interpret them), Raw
//	(pre-encoded msgpack, written through untouched).
//
// Like hivemind's ext hook, Unmarshal turns an ext of any other code into its bare payload ([]byte),
// so a value decoded and encoded again carries it as bin.
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

// Ext is an ext value kept as its code and payload. Unmarshal produces it only for the codes
// hivemind registers besides the tuple (ExtDictionary, ExtTensor): hivemind's dictionary values
// (DictionaryDHTValue) are ext 0x50, and package dht interprets them. Marshal writes any Ext as
// given, except one of code ExtTimestamp whose payload Unmarshal would refuse (ErrInvalidExt).
type Ext struct {
	Code int8
	Data []byte
}

// Raw is a complete msgpack encoding of one value, written through untouched by the encoder (signed
// values are never re-encoded). The decoder never produces Raw.
type Raw []byte

// Timestamp is msgpack's timestamp extension (ext −1), which msgpack-python decodes itself, before
// any ext hook, into its Timestamp type: seconds since the epoch (may be negative) and nanoseconds
// in [0, 10^9). Unmarshal accepts the 4-, 8- and 12-byte forms only (else ErrInvalidExt), and
// Marshal writes the smallest form, as msgpack-python does.
type Timestamp struct {
	Seconds     int64
	Nanoseconds uint32
}

// Ext type codes used by hivemind (ExtTimestamp is msgpack's own).
const (
	ExtTuple      int8 = 0x40
	ExtDictionary int8 = 0x50
	ExtTensor     int8 = 0x51
	ExtTimestamp  int8 = -1
)
