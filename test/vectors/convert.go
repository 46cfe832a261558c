package vectors

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Go converts a typed value into the Go value of the msgpack value model that Marshal encodes as
// hivemind would (and that Unmarshal returns for the recorded `loads`):
//
//   - nil → nil, bool → bool, float → float64 (exact bits), str → string, bytes → []byte;
//   - int → int64 when it fits, else uint64 when it fits (Unmarshal's rule), else the *big.Int
//     itself, so that encoding it reports msgpack.ErrIntOutOfRange as hivemind does;
//   - list → []any, tuple → msgpack.Tuple, map → *msgpack.Map in insertion order;
//   - dictionary_dht_value → msgpack.Ext 0x50 holding hivemind's packb payload
//     [maxsize, latest_expiration_time, [[subkey, value, expiration], ...]] (each subkey as its msgpack,
//     each value as bin), which is what package dht's DictionaryValue.Pack writes for it;
//   - the compact forms repeat and counting_map → the large str, bytes, list or map they stand for.
//
// A map key that is not str or bytes is an error wrapping msgpack.ErrMapKeyType (hivemind can encode
// such a map but not read it back; the Go value model cannot hold it).
func (v Value) Go() (any, error) {
	switch v.Kind {
	case KindNil:
		return nil, nil
	case KindBool:
		return v.Bool, nil
	case KindInt:
		switch {
		case v.Int.IsInt64():
			return v.Int.Int64(), nil
		case v.Int.IsUint64():
			return v.Int.Uint64(), nil
		}
		return new(big.Int).Set(v.Int), nil
	case KindFloat:
		return v.Float.Value(), nil
	case KindStr:
		return v.Str, nil
	case KindBytes:
		return append([]byte{}, v.Bytes...), nil
	case KindList, KindTuple:
		items, err := goItems(v.Items)
		if err != nil {
			return nil, err
		}
		if v.Kind == KindTuple {
			return msgpack.Tuple(items), nil
		}
		return items, nil
	case KindMap:
		m := msgpack.NewMap()
		for _, e := range v.Entries {
			if e.Key.Kind != KindStr && e.Key.Kind != KindBytes {
				return nil, fmt.Errorf("vectors: %s map key: %w", e.Key.Kind, msgpack.ErrMapKeyType)
			}
			k, _ := e.Key.Go()
			val, err := e.Value.Go()
			if err != nil {
				return nil, err
			}
			m.Set(k, val)
		}
		return m, nil
	case KindDictionary:
		return v.Dict.ext()
	case KindRepeat:
		return v.Repeat.expand()
	case KindCountingMap:
		return v.CountingMap.expand()
	}
	return nil, fmt.Errorf("vectors: no Go value for a %q typed value", v.Kind)
}

// Msgpack returns hivemind's encoding of the typed value (Go, then msgpack.Marshal).
func (v Value) Msgpack() ([]byte, error) {
	g, err := v.Go()
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal(g)
}

func goItems(vs []Value) ([]any, error) {
	items := make([]any, len(vs))
	for i, it := range vs {
		g, err := it.Go()
		if err != nil {
			return nil, err
		}
		items[i] = g
	}
	return items, nil
}

// ext packs the dictionary as hivemind's DictionaryDHTValue.packb does.
func (d *Dictionary) ext() (any, error) {
	var maxSize any
	switch d.MaxSize.Kind {
	case KindFloat:
		if !math.IsInf(d.MaxSize.Float.Value(), 1) {
			return nil, fmt.Errorf("vectors: dictionary maxsize %s: want an int or +inf", d.MaxSize.Float.Repr)
		}
		maxSize = d.MaxSize.Float.Value()
	case KindInt:
		maxSize, _ = d.MaxSize.Go()
	default:
		return nil, fmt.Errorf("vectors: dictionary maxsize of kind %s", d.MaxSize.Kind)
	}
	items := make([]any, len(d.Items))
	for i, it := range d.Items {
		subkey, err := it.Subkey.Msgpack()
		if err != nil {
			return nil, fmt.Errorf("vectors: dictionary item %d subkey: %w", i, err)
		}
		items[i] = []any{msgpack.Raw(subkey), []byte(it.Value), it.Expiration.Value()}
	}
	payload, err := msgpack.Marshal([]any{maxSize, d.LatestExpirationTime.Value(), items})
	if err != nil {
		return nil, fmt.Errorf("vectors: dictionary payload: %w", err)
	}
	return msgpack.Ext{Code: msgpack.ExtDictionary, Data: payload}, nil
}

func (r *Repeat) expand() (any, error) {
	unit, err := r.Unit.Go()
	if err != nil {
		return nil, err
	}
	switch r.As {
	case KindStr:
		s, ok := unit.(string)
		if !ok {
			return nil, fmt.Errorf("vectors: repeat as str of a %s unit", r.Unit.Kind)
		}
		return strings.Repeat(s, r.Count), nil
	case KindBytes:
		b, ok := unit.([]byte)
		if !ok {
			return nil, fmt.Errorf("vectors: repeat as bytes of a %s unit", r.Unit.Kind)
		}
		return bytes.Repeat(b, r.Count), nil
	case KindList:
		items := make([]any, r.Count)
		for i := range items {
			if items[i], err = r.Unit.Go(); err != nil { // a fresh copy each: items never alias
				return nil, err
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("vectors: repeat as %q", r.As)
}

func (c *CountingMap) expand() (any, error) {
	m := msgpack.NewMap()
	var full [8]byte
	for i := range c.Count {
		binary.BigEndian.PutUint64(full[:], uint64(i))
		v, err := c.Value.Go()
		if err != nil {
			return nil, err
		}
		m.Set(append([]byte{}, full[8-c.KeyLen:]...), v)
	}
	return m, nil
}
