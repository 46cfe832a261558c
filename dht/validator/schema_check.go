package validator

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"math/big"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// This file mirrors pydantic v1's validators for the supported types, fused with hivemind's final
// check (parsed == input): check(v) succeeds iff pydantic accepts v AND the value it produces equals v
// by Python's ==. Decoded msgpack values stand for the Python values hivemind's loads returns.

// dict is a Python dict as the checker sees it: a decoded *msgpack.Map, or the one-entry dictionary
// {subkey: value} that a dictionary entry stands for (its subkey may be of any hashable type).
type dict interface {
	Len() int
	All() iter.Seq2[any, any]
}

type singleEntry struct{ key, value any }

func (e singleEntry) Len() int { return 1 }

func (e singleEntry) All() iter.Seq2[any, any] {
	return func(yield func(any, any) bool) { yield(e.key, e.value) }
}

// hashable reports whether the Python value can be a dict key: lists and dicts cannot, nor tuples
// holding them.
func hashable(v any) bool {
	switch x := v.(type) {
	case []any, *msgpack.Map:
		return false
	case msgpack.Tuple:
		for _, it := range x {
			if !hashable(it) {
				return false
			}
		}
	}
	return true
}

// pyBytes returns the Python bytes a decoded value stands for: a bin, or an ext of a code hivemind
// does not register (its loads returns the bare payload for those).
func pyBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case msgpack.Ext:
		if x.Code != msgpack.ExtDictionary && x.Code != msgpack.ExtTensor {
			return x.Data, true
		}
	}
	return nil, false
}

var errConversion = errors.New("needs a type conversion")

func typeErr(want string, v any) error {
	return fmt.Errorf("%s expected, got %s", want, pyTypeName(v))
}

func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, uint64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case []any:
		return "list"
	case msgpack.Tuple:
		return "tuple"
	case *msgpack.Map, singleEntry:
		return "dict"
	}
	if _, ok := pyBytes(v); ok {
		return "bytes"
	}
	return fmt.Sprintf("%T", v)
}

func (t *compiledType) check(v any) error {
	switch t.kind {
	case KindInt:
		return t.checkInt(v)
	case KindFloat:
		return t.checkFloat(v)
	case KindBool:
		return t.checkBool(v)
	case KindBytes:
		b, ok := pyBytes(v)
		if !ok {
			// Lax bytes converts str and numbers, which then differ from the input.
			return typeErr("bytes", v)
		}
		if len(t.regexes) == 0 {
			return nil
		}
		return t.match(latin1(string(b)))
	case KindStr:
		s, ok := v.(string)
		if !ok {
			return typeErr("str", v)
		}
		return t.match(s)
	case KindOptional:
		if v == nil {
			return nil
		}
		return t.of.check(v)
	case KindMap:
		return t.checkMap(v)
	case KindModel:
		return t.checkModel(v)
	}
	return fmt.Errorf("unknown type %q", t.kind)
}

func (t *compiledType) match(s string) error {
	for _, re := range t.regexes {
		if !re.MatchString(s) {
			return fmt.Errorf("does not match %s", re)
		}
	}
	return nil
}

// checkInt is pydantic's (strict_)int_validator plus the bound validators.
func (t *compiledType) checkInt(v any) error {
	var n *big.Float
	switch x := v.(type) {
	case int64:
		n = new(big.Float).SetInt64(x)
	case uint64:
		n = new(big.Float).SetUint64(x)
	case bool:
		if t.strict {
			return typeErr("strict int", v)
		}
		n = boolNum(x) // int(True) == 1 == True
	case float64:
		if t.strict {
			return typeErr("strict int", v)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%v cannot be an int", x)
		}
		if x != math.Trunc(x) {
			return fmt.Errorf("%v: %w", x, errConversion)
		}
		n = big.NewFloat(x)
	default:
		return typeErr("int", v)
	}
	return t.checkBounds(n, false)
}

// checkFloat is pydantic's (strict_)float_validator plus the bound validators.
func (t *compiledType) checkFloat(v any) error {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) {
			return t.checkBounds(nil, true)
		}
		return t.checkBounds(big.NewFloat(x), false)
	case int64, uint64, bool:
		if t.strict {
			return typeErr("strict float", v)
		}
		var exact *big.Float
		switch x := x.(type) {
		case int64:
			exact = new(big.Float).SetInt64(x)
		case uint64:
			exact = new(big.Float).SetUint64(x)
		case bool:
			exact = boolNum(x)
		}
		f, _ := exact.Float64()
		if big.NewFloat(f).Cmp(exact) != 0 {
			return fmt.Errorf("%v: %w", v, errConversion) // float(2**64-1) != 2**64-1
		}
		return t.checkBounds(big.NewFloat(f), false)
	}
	return typeErr("float", v)
}

// checkBool is pydantic's (strict_)bool_validator: lax bool takes the numbers equal to 0 or 1.
func (t *compiledType) checkBool(v any) error {
	if _, ok := v.(bool); ok {
		return nil
	}
	if t.strict {
		return typeErr("strict bool", v)
	}
	switch x := v.(type) {
	case int64:
		if x == 0 || x == 1 {
			return nil
		}
	case uint64:
		// Unmarshal gives uint64 only above the int64 range.
	case float64:
		if x == 0 || x == 1 {
			return nil
		}
	}
	return typeErr("bool", v)
}

func boolNum(b bool) *big.Float {
	if b {
		return big.NewFloat(1)
	}
	return big.NewFloat(0)
}

// checkBounds is pydantic's number_size_validator then number_multiple_validator. n is nil for NaN,
// which fails every comparison.
func (t *compiledType) checkBounds(n *big.Float, isNaN bool) error {
	// Python: `if gt is not None and not v > gt ... elif ge ...`, then the same for lt/le (a schema
	// never sets both gt and ge, nor lt and le).
	if t.gt != nil {
		if isNaN || !cmpOK(n, t.gt, func(c int) bool { return c > 0 }) {
			return fmt.Errorf("not > %s", t.gt)
		}
	} else if t.ge != nil {
		if isNaN || !cmpOK(n, t.ge, func(c int) bool { return c >= 0 }) {
			return fmt.Errorf("not >= %s", t.ge)
		}
	}
	if t.lt != nil {
		if isNaN || !cmpOK(n, t.lt, func(c int) bool { return c < 0 }) {
			return fmt.Errorf("not < %s", t.lt)
		}
	} else if t.le != nil {
		if isNaN || !cmpOK(n, t.le, func(c int) bool { return c <= 0 }) {
			return fmt.Errorf("not <= %s", t.le)
		}
	}
	if t.multiple != nil {
		// pydantic: mod = float(v) / float(multiple_of) % 1; fails unless mod is within one
		// epsilon of 0.0 or 1.0.
		x := math.NaN()
		if !isNaN {
			x, _ = n.Float64()
		}
		mod := pyMod1(x / numFloat(t.multiple))
		const eps = 2.220446049250313e-16
		if !(math.Abs(mod) <= eps) && !(math.Abs(mod-1) <= eps) {
			return fmt.Errorf("not a multiple of %s", t.multiple)
		}
	}
	return nil
}

// cmpOK compares n with a bound exactly (Python compares ints and floats by value); a NaN bound
// fails every comparison.
func cmpOK(n *big.Float, bound *Number, ok func(int) bool) bool {
	var b *big.Float
	if bound.IsFloat {
		if math.IsNaN(bound.Float) {
			return false
		}
		b = big.NewFloat(bound.Float)
	} else {
		b = new(big.Float).SetInt64(bound.Int)
	}
	return ok(n.Cmp(b))
}

func numFloat(n *Number) float64 {
	if n.IsFloat {
		return n.Float
	}
	return float64(n.Int)
}

// pyMod1 is Python's x % 1.0: the result has the sign of the divisor.
func pyMod1(x float64) float64 {
	m := math.Mod(x, 1)
	if m < 0 {
		m++
	}
	if m == 0 {
		return 0
	}
	return m
}

// checkMap is pydantic's Dict[K, V]: only a dict is equal to its parsed self.
func (t *compiledType) checkMap(v any) error {
	d, ok := v.(dict)
	if !ok {
		return typeErr("dict", v)
	}
	for k, val := range d.All() {
		if err := t.key.check(k); err != nil {
			return fmt.Errorf("key %s: %w", shortRepr(k), err)
		}
		if err := t.value.check(val); err != nil {
			return fmt.Errorf("[%s]: %w", shortRepr(k), err)
		}
	}
	return nil
}

// checkModel is a nested pydantic model built from a dict (Model(**value)), then exported with
// .dict() and compared with the input.
func (t *compiledType) checkModel(v any) error {
	d, ok := v.(dict)
	if !ok {
		return typeErr("dict", v)
	}
	seen := 0
	for k, val := range d.All() {
		name, ok := k.(string)
		if !ok {
			return fmt.Errorf("field name of type %s", pyTypeName(k)) // Model(**d): keywords must be strings
		}
		ft, known := t.fields[name]
		if !known {
			if t.extra == ExtraAllow {
				continue
			}
			return fmt.Errorf("extra field %q", name)
		}
		seen++
		if err := ft.check(val); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if seen != len(t.fields) {
		for name := range t.fields {
			if _, present := lookup(d, name); !present {
				// Required: an error; optional: pydantic exports the default, which the input lacks.
				return fmt.Errorf("field %q missing", name)
			}
		}
	}
	return nil
}

func lookup(d dict, name string) (any, bool) {
	for k, v := range d.All() {
		if s, ok := k.(string); ok && s == name {
			return v, true
		}
	}
	return nil, false
}

func shortRepr(v any) string {
	s := fmt.Sprintf("%q", v)
	if b, ok := pyBytes(v); ok {
		s = fmt.Sprintf("b%q", b)
	}
	if len(s) > 48 {
		s = s[:45] + "..."
	}
	return s
}
