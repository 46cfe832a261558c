package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strconv"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/internal/cli"
)

// JSON forms of msgpack values JSON has no type for. On output and input alike:
//
//	bytes      {"$bytes": "<base64>"}
//	tuple      {"$tuple": [...]}
//	ext        {"$ext": <code>, "data": "<base64>"} (the codes a peer reads back as an ext: extFromJSON)
//	NaN, ±Inf  {"$float": "NaN"}, {"$float": "+Inf"}, {"$float": "-Inf"} (any float on input)
//	map with a bytes key, a key that is not a string, or a key that is one of these tags:
//	           {"$map": [[key, value], ...]}
//
// A float always prints with a decimal point or an exponent (1.0, -0.0, 1e+21), so it reads back as
// a float, not an integer: what `get` prints, `store` stores unchanged.
const (
	tagBytes = "$bytes"
	tagTuple = "$tuple"
	tagExt   = "$ext"
	tagFloat = "$float"
	tagMap   = "$map"
)

// jsonFloat is a finite float64 that marshals with a decimal point or an exponent.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(float64(f))
	if err != nil {
		return nil, err
	}
	if !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, nil
}

// toJSON converts a decoded msgpack value to a JSON-marshalable value.
func toJSON(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, uint64:
		return x
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return map[string]any{tagFloat: strconv.FormatFloat(x, 'g', -1, 64)}
		}
		return jsonFloat(x)
	case []byte:
		return map[string]any{tagBytes: base64.StdEncoding.EncodeToString(x)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSON(e)
		}
		return out
	case msgpack.Tuple:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toJSON(e)
		}
		return map[string]any{tagTuple: out}
	case msgpack.Ext:
		return map[string]any{tagExt: x.Code, "data": base64.StdEncoding.EncodeToString(x.Data)}
	case *msgpack.Map:
		return mapToJSON(x)
	default:
		return fmt.Sprintf("%v", x)
	}
}

func mapToJSON(m *msgpack.Map) any {
	allStrings := true
	for k := range m.Keys() {
		if s, ok := k.(string); !ok || isTag(s) {
			allStrings = false // an object with a tag key would read back as the tagged value
			break
		}
	}
	if allStrings {
		o := &cli.Object{}
		for k, v := range m.All() {
			o.Add(k.(string), toJSON(v))
		}
		return o
	}
	pairs := []any{}
	for k, v := range m.All() {
		pairs = append(pairs, []any{toJSON(k), toJSON(v)})
	}
	return map[string]any{tagMap: pairs}
}

// fromJSON parses one JSON value into the msgpack value model: integers stay integers (int64, or
// uint64 above its range), objects keep their order, and the tagged forms above become bytes,
// tuples, exts and maps with bytes keys.
func fromJSON(text string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	v, err := decodeJSON(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return v, nil
}

func decodeJSON(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			out := []any{}
			for dec.More() {
				v, err := decodeJSON(dec)
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			_, err := dec.Token()
			return out, err
		case '{':
			m := msgpack.NewMap()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeJSON(dec)
				if err != nil {
					return nil, err
				}
				m.Set(kt.(string), v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return untag(m)
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		return number(t)
	default:
		return t, nil // nil, bool, string
	}
}

func number(n json.Number) (any, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u, nil
	}
	if _, ok := new(big.Int).SetString(string(n), 10); ok {
		return nil, fmt.Errorf("integer %s does not fit in 64 bits", n)
	}
	return strconv.ParseFloat(string(n), 64)
}

func isTag(key string) bool {
	switch key {
	case tagBytes, tagTuple, tagExt, tagFloat, tagMap:
		return true
	}
	return false
}

// untag turns a one-key tagged object into the value it stands for.
func untag(m *msgpack.Map) (any, error) {
	if m.Len() == 0 || m.Len() > 2 {
		return m, nil
	}
	if raw, ok := m.Get(tagBytes); ok && m.Len() == 1 {
		s, ok := raw.(string)
		if !ok {
			return nil, errors.New(`"$bytes" wants a base64 string`)
		}
		return base64.StdEncoding.DecodeString(s)
	}
	if raw, ok := m.Get(tagTuple); ok && m.Len() == 1 {
		items, ok := raw.([]any)
		if !ok {
			return nil, errors.New(`"$tuple" wants an array`)
		}
		return msgpack.Tuple(items), nil
	}
	if raw, ok := m.Get(tagExt); ok && m.Len() == 2 {
		code, ok := raw.(int64)
		data, ok2 := m.Get("data")
		s, ok3 := data.(string)
		if !ok || !ok2 || !ok3 || code < math.MinInt8 || code > math.MaxInt8 {
			return nil, errors.New(`"$ext" wants a code in -128..127 and base64 "data"`)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf(`"$ext" data: %w`, err)
		}
		return extFromJSON(int8(code), b)
	}
	if raw, ok := m.Get(tagFloat); ok && m.Len() == 1 {
		s, ok := raw.(string)
		if !ok {
			return nil, errors.New(`"$float" wants a string such as "NaN", "+Inf" or "-Inf"`)
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf(`"$float": %w`, err)
		}
		return f, nil
	}
	if raw, ok := m.Get(tagMap); ok && m.Len() == 1 {
		pairs, ok := raw.([]any)
		if !ok {
			return nil, errors.New(`"$map" wants an array of [key, value] pairs`)
		}
		out := msgpack.NewMap()
		for _, p := range pairs {
			kv, ok := p.([]any)
			if !ok || len(kv) != 2 {
				return nil, errors.New(`"$map" wants an array of [key, value] pairs`)
			}
			switch kv[0].(type) {
			case string, []byte:
				out.Set(kv[0], kv[1])
			default:
				return nil, errors.New(`"$map" keys must be strings or {"$bytes": ...}`)
			}
		}
		return out, nil
	}
	return m, nil
}

// extFromJSON is the value of {"$ext": code, "data": data}: an ext that a peer decodes as the same
// ext, so that what `get` prints, `store` stores unchanged. An ext that decodes as something else is
// refused, saying what: a timestamp (ext −1; one whose payload msgpack-python refuses too), a tuple
// (ext 0x40), or the payload's bytes (every code hivemind has no type for). --value-hex stores such
// bytes as given.
func extFromJSON(code int8, data []byte) (msgpack.Ext, error) {
	ext := msgpack.Ext{Code: code, Data: data}
	packed, err := msgpack.Marshal(ext)
	if err != nil {
		return ext, fmt.Errorf(`"$ext": %w`, err)
	}
	back, err := msgpack.Unmarshal(packed)
	if err != nil {
		return ext, fmt.Errorf(`"$ext" %d: %w`, code, err)
	}
	if _, ok := back.(msgpack.Ext); !ok {
		return ext, fmt.Errorf(`"$ext" %d is read back as %T, not as an ext: write that form instead (or use --value-hex)`, code, back)
	}
	return ext, nil
}
