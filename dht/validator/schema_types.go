package validator

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SchemaConfig describes a Schema validator as data: hivemind's SchemaValidator built from one or
// more pydantic v1 models (several when validators were merged). It is plain, JSON-serializable data
// so that it can travel to a worker process; its JSON form is the one of the golden vectors'
// schema.json "validators" (fields those vectors add, raw_key and key_id_hex, are derived and ignored).
type SchemaConfig struct {
	// AllowExtraKeys accepts records whose key belongs to no model (hivemind's default: true).
	AllowExtraKeys bool `json:"allow_extra_keys"`
	// Models are tried in order; a record is valid if one of them accepts it.
	Models []Model `json:"schemas"`
}

// Model is one pydantic model given to SchemaValidator. Every field is a DHT key: Prefix + "_" + name
// (just the name when Prefix is empty), hashed like any string key (dht.KeyOf).
type Model struct {
	// Name is informative (the pydantic class name).
	Name string `json:"model"`
	// Prefix is prepended to field names to form keys; empty means none. (hivemind distinguishes
	// prefix None from "", which would give keys "_name"; that form is not expressible here.)
	Prefix string `json:"prefix,omitempty"`
	// Extra is the model's extra-field policy; SchemaValidator forces forbid, which the empty value
	// means.
	Extra Extra `json:"extra,omitempty"`
	// Fields are the model's fields. Top-level fields are never required: a record holds one field.
	Fields []Field `json:"fields"`
}

// RawKey returns the DHT key (before hashing) of the named field: Prefix + "_" + name, or name.
func (m Model) RawKey(field string) string {
	if m.Prefix == "" {
		return field
	}
	return m.Prefix + "_" + field
}

// Field is a named, typed field of a model.
type Field struct {
	Name string `json:"name"`
	// Required applies to fields of nested models; a missing field is refused either way, because
	// pydantic's export would add its default (None) and the comparison with the input would fail.
	Required bool `json:"required"`
	Type     Type `json:"type"`
}

// Kind is the kind of a Type.
type Kind string

// The kinds of types a schema can use.
const (
	KindInt      Kind = "int"      // Python int (never bool when Strict)
	KindFloat    Kind = "float"    // Python float
	KindBool     Kind = "bool"     // Python bool
	KindBytes    Kind = "bytes"    // msgpack bin
	KindStr      Kind = "str"      // msgpack str
	KindMap      Kind = "map"      // Dict[Key, Value]
	KindOptional Kind = "optional" // Optional[Of]: None or an Of
	KindModel    Kind = "model"    // a nested pydantic model
)

// Extra is a pydantic model's policy for fields it does not declare.
type Extra string

// Extra policies. With ignore, pydantic drops the field, the parsed value differs from the input and
// the record is refused, so only allow accepts extra fields.
const (
	ExtraForbid Extra = "forbid"
	ExtraIgnore Extra = "ignore"
	ExtraAllow  Extra = "allow"
)

// RegexPythonMatch is the only regex semantics supported: Python's re.match (anchored at the start
// only; `.` does not match a newline). It is also what an empty RegexMatch means.
const RegexPythonMatch = "python_re_match"

// Type is a pydantic field type.
//
// Scalars (int, float, bool, bytes, str) take Strict — StrictInt, confloat(strict=True), StrictBool,
// … — and numbers take bounds (pydantic's ge, gt, le, lt, multiple_of; bounds compare exactly, as
// Python compares ints and floats). Non-strict numbers accept values Python considers equal after
// conversion (an int field accepts True and 3.0, a float field accepts 3, a bool field 0 and 1), which
// is why hivemind's schemas use strict types. bytes and str take Regex (Go RE2 syntax with re.match
// semantics; for bytes each byte is one character, as in a Python bytes pattern).
// OwnerMarkerRequired (bytes only) demands an "[owner:…]" marker as hivemind's BytesWithPublicKey does;
// with no Regex it applies that type's regex (OwnerMarkerPattern).
//
// map takes Key and Value, optional takes Of, model takes Model (a name), Extra and Fields.
type Type struct {
	Kind       Kind    `json:"type"`
	Strict     bool    `json:"strict,omitempty"`
	Ge         *Number `json:"ge,omitempty"`
	Gt         *Number `json:"gt,omitempty"`
	Le         *Number `json:"le,omitempty"`
	Lt         *Number `json:"lt,omitempty"`
	MultipleOf *Number `json:"multiple_of,omitempty"`

	Regex               string `json:"regex,omitempty"`
	RegexMatch          string `json:"regex_match,omitempty"`
	OwnerMarkerRequired bool   `json:"owner_marker_required,omitempty"`

	Key   *Type `json:"key,omitempty"`
	Value *Type `json:"value,omitempty"`
	Of    *Type `json:"of,omitempty"`

	Model  string  `json:"model,omitempty"`
	Extra  Extra   `json:"extra,omitempty"`
	Fields []Field `json:"fields,omitempty"`
}

// Number is a numeric bound written as the model writes it: an int or a float. Its JSON form is the
// vectors' typed value, {"t":"int","v":"<decimal>"} or {"t":"float","repr":…,"bits":"<16 hex
// digits>"} (bits are authoritative, so -0.0 and NaN survive the trip).
type Number struct {
	IsFloat bool
	Int     int64
	Float   float64
}

// Int returns an int bound.
func Int(v int64) *Number { return &Number{Int: v} }

// Float returns a float bound.
func Float(v float64) *Number { return &Number{IsFloat: true, Float: v} }

// String renders the bound like Python's repr.
func (n Number) String() string {
	if !n.IsFloat {
		return strconv.FormatInt(n.Int, 10)
	}
	switch {
	case math.IsNaN(n.Float):
		return "nan"
	case math.IsInf(n.Float, 1):
		return "inf"
	case math.IsInf(n.Float, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(n.Float, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

type numberJSON struct {
	T    string `json:"t"`
	V    string `json:"v,omitempty"`
	Repr string `json:"repr,omitempty"`
	Bits string `json:"bits,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (n Number) MarshalJSON() ([]byte, error) {
	if !n.IsFloat {
		return json.Marshal(numberJSON{T: "int", V: strconv.FormatInt(n.Int, 10)})
	}
	return json.Marshal(numberJSON{T: "float", Repr: n.String(),
		Bits: hex.EncodeToString(binary.BigEndian.AppendUint64(nil, math.Float64bits(n.Float)))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Number) UnmarshalJSON(b []byte) error {
	var raw numberJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: number: %w", ErrInvalidSchema, err)
	}
	switch raw.T {
	case "int":
		i, err := strconv.ParseInt(raw.V, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: int bound %q: %w", ErrInvalidSchema, raw.V, err)
		}
		*n = Number{Int: i}
	case "float":
		bits, err := hex.DecodeString(raw.Bits)
		if err != nil || len(bits) != 8 {
			return fmt.Errorf("%w: float bound bits %q", ErrInvalidSchema, raw.Bits)
		}
		*n = Number{IsFloat: true, Float: math.Float64frombits(binary.BigEndian.Uint64(bits))}
	default:
		return fmt.Errorf("%w: number of type %q", ErrInvalidSchema, raw.T)
	}
	return nil
}
