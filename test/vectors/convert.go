package vectors

import (
	"fmt"
	"math/big"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Go converts a typed value into the Go value of the msgpack value model that Marshal encodes as
// hivemind would (and that Unmarshal returns for the recorded `loads`):
//
//   - nil → nil, bool → bool, float → float64 (exact bits), str → string, bytes → []byte;
//   - int → int64 when it fits, else uint64 when it fits (Unmarshal's rule), else the *big.Int
//     itself, so that encoding it reports msgpack.ErrIntOutOfRange as hivemind does;
//   - list → []any, tuple → msgpack.Tuple, map → *msgpack.Map in insertion order.
//
// A map key that is not str or bytes is an error wrapping msgpack.ErrMapKeyType (hivemind can encode
// such a map but not read it back; the Go value model cannot hold it). dictionary_dht_value has no
// generic form: package dht's storage builds it.
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
		items := make([]any, len(v.Items))
		for i, it := range v.Items {
			g, err := it.Go()
			if err != nil {
				return nil, err
			}
			items[i] = g
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
	}
	return nil, fmt.Errorf("vectors: no generic Go value for a %s", v.Kind)
}
