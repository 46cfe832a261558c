package vectors

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// HexBytes is a byte string written as lowercase, even-length hex. JSON null decodes to nil.
type HexBytes []byte

// UnmarshalJSON implements json.Unmarshaler; a malformed string is an error (a broken vector file),
// and so is the large form of a byte string (see Blob), which has no exact bytes to give.
func (h *HexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	if len(b) > 0 && b[0] == '{' {
		return fmt.Errorf("a byte string given in the large form (length and digest only) where the test reads exact bytes: read it as a vectors.Blob")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("hex field: %w", err)
	}
	if s != strings.ToLower(s) {
		return fmt.Errorf("hex field %q is not lowercase", s)
	}
	out, err := hex.DecodeString(s)
	if err != nil {
		return fmt.Errorf("hex field %q: %w", s, err)
	}
	if out == nil {
		out = []byte{}
	}
	*h = out
	return nil
}

// Float is {repr, bits}: bits (16 hex digits, big-endian IEEE-754 binary64) are authoritative.
type Float struct {
	Repr string
	bits uint64
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	var raw struct {
		Repr string `json:"repr"`
		Bits string `json:"bits"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("float: %w", err)
	}
	bb, err := hex.DecodeString(raw.Bits)
	if err != nil || len(bb) != 8 {
		return fmt.Errorf("float bits %q: want 16 hex digits", raw.Bits)
	}
	f.Repr = raw.Repr
	f.bits = binary.BigEndian.Uint64(bb)
	return nil
}

// Value returns the float64 with exactly the recorded bits.
func (f Float) Value() float64 { return math.Float64frombits(f.bits) }

// Bits returns the IEEE-754 bit pattern; compare floats with it, never with ==.
func (f Float) Bits() uint64 { return f.bits }

// Error is a failed call's outcome. Compare Kind only; the texts are informative.
type Error struct {
	Kind   string `json:"kind"`
	Python string `json:"python,omitempty"`
	Go     string `json:"go,omitempty"`
}

// Kind tags a typed [Value].
type Kind string

// The kinds of typed values used by the vector files.
const (
	KindNil        Kind = "nil"
	KindBool       Kind = "bool"
	KindInt        Kind = "int"
	KindFloat      Kind = "float"
	KindStr        Kind = "str"
	KindBytes      Kind = "bytes"
	KindList       Kind = "list"
	KindTuple      Kind = "tuple"
	KindMap        Kind = "map"
	KindDictionary Kind = "dictionary_dht_value"
	// KindRepeat and KindCountingMap are compact forms of large values; they occur only inside
	// value_recipe_typed, and Go expands them.
	KindRepeat      Kind = "repeat"
	KindCountingMap Kind = "counting_map"
)

// Value is a typed Python value from the vectors, decoded recursively. Exactly the members that belong
// to Kind are set.
type Value struct {
	Kind Kind
	// Bool for KindBool.
	Bool bool
	// Int for KindInt (arbitrary size; msgpack's range is [-2^63, 2^64)).
	Int *big.Int
	// Float for KindFloat.
	Float Float
	// Str holds the UTF-8 bytes of a KindStr value (utf8_hex is authoritative; may be invalid UTF-8).
	Str string
	// Bytes for KindBytes.
	Bytes []byte
	// Items for KindList and KindTuple.
	Items []Value
	// Entries for KindMap, in insertion order.
	Entries []MapEntry
	// Dict for KindDictionary.
	Dict *Dictionary
	// Repeat for KindRepeat.
	Repeat *Repeat
	// CountingMap for KindCountingMap.
	CountingMap *CountingMap
}

// Repeat is the compact form of a large str, bytes or list: Unit repeated Count times, concatenated
// (As str or bytes) or as list items (As list).
type Repeat struct {
	As    Kind  `json:"as"`
	Unit  Value `json:"unit"`
	Count int   `json:"count"`
}

// CountingMap is the compact form of a large map: the keys are the bytes i.to_bytes(KeyLen, "big")
// for i = 0 … Count−1 in that order, each mapped to Value.
type CountingMap struct {
	KeyLen int   `json:"key_len"`
	Count  int   `json:"count"`
	Value  Value `json:"value"`
}

// MapEntry is one key/value pair of a typed map.
type MapEntry struct {
	Key, Value Value
}

// Dictionary is hivemind's DictionaryDHTValue (msgpack ext 0x50).
type Dictionary struct {
	// MaxSize is a typed int, or the float +inf.
	MaxSize              Value
	LatestExpirationTime Float
	Items                []DictionaryItem
}

// DictionaryItem is one subkey entry of a Dictionary, in insertion order.
type DictionaryItem struct {
	Subkey     Value    `json:"subkey"`
	Value      HexBytes `json:"value_hex"`
	Expiration Float    `json:"expiration"`
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *Value) UnmarshalJSON(b []byte) error {
	var head struct {
		T       Kind            `json:"t"`
		V       json.RawMessage `json:"v"`
		UTF8    *HexBytes       `json:"utf8_hex"`
		Hex     *HexBytes       `json:"hex"`
		Items   json.RawMessage `json:"items"`
		Entries [][2]Value      `json:"entries"`
		MaxSize *Value          `json:"maxsize"`
		Latest  *Float          `json:"latest_expiration_time"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("typed value: %w", err)
	}
	*v = Value{Kind: head.T}
	switch head.T {
	case KindNil:
	case KindBool:
		return json.Unmarshal(head.V, &v.Bool)
	case KindInt:
		var s string
		if err := json.Unmarshal(head.V, &s); err != nil {
			return fmt.Errorf("typed int: %w", err)
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return fmt.Errorf("typed int %q is not a decimal integer", s)
		}
		v.Int = n
	case KindFloat:
		return json.Unmarshal(b, &v.Float)
	case KindStr:
		if head.UTF8 == nil {
			return fmt.Errorf("typed str without utf8_hex")
		}
		v.Str = string(*head.UTF8)
	case KindBytes:
		if head.Hex == nil {
			return fmt.Errorf("typed bytes without hex")
		}
		v.Bytes = []byte(*head.Hex)
	case KindList, KindTuple:
		v.Items = []Value{}
		if err := json.Unmarshal(head.Items, &v.Items); err != nil {
			return fmt.Errorf("typed %s items: %w", head.T, err)
		}
	case KindMap:
		v.Entries = make([]MapEntry, len(head.Entries))
		for i, e := range head.Entries {
			v.Entries[i] = MapEntry{Key: e[0], Value: e[1]}
		}
	case KindDictionary:
		if head.MaxSize == nil || head.Latest == nil {
			return fmt.Errorf("dictionary_dht_value without maxsize or latest_expiration_time")
		}
		d := &Dictionary{MaxSize: *head.MaxSize, LatestExpirationTime: *head.Latest, Items: []DictionaryItem{}}
		if err := json.Unmarshal(head.Items, &d.Items); err != nil {
			return fmt.Errorf("dictionary items: %w", err)
		}
		v.Dict = d
	case KindRepeat:
		v.Repeat = &Repeat{}
		if err := json.Unmarshal(b, v.Repeat); err != nil {
			return fmt.Errorf("repeat: %w", err)
		}
		switch v.Repeat.As {
		case KindStr, KindBytes, KindList:
		default:
			return fmt.Errorf("repeat as %q: want str, bytes or list", v.Repeat.As)
		}
		if v.Repeat.Count < 0 {
			return fmt.Errorf("repeat count %d", v.Repeat.Count)
		}
	case KindCountingMap:
		v.CountingMap = &CountingMap{}
		if err := json.Unmarshal(b, v.CountingMap); err != nil {
			return fmt.Errorf("counting_map: %w", err)
		}
		if c := v.CountingMap; c.Count < 0 || c.KeyLen < 1 || c.KeyLen > 8 || (c.KeyLen < 8 && uint64(c.Count) > 1<<(8*c.KeyLen)) {
			return fmt.Errorf("counting_map of %d keys of %d bytes", c.Count, c.KeyLen)
		}
	default:
		return fmt.Errorf("unknown typed value tag %q", head.T)
	}
	return nil
}
