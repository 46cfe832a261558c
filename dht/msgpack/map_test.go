package msgpack_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

func keysOf(m *msgpack.Map) []string {
	var out []string
	for k := range m.Keys() {
		switch k := k.(type) {
		case string:
			out = append(out, k)
		case []byte:
			out = append(out, "b:"+string(k))
		}
	}
	return out
}

func TestMapOrder(t *testing.T) {
	// Sizes on both sides of the switch from linear scans to an index.
	for _, n := range []int{3, 8, 9, 40} {
		t.Run(fmt.Sprintf("%d entries", n), func(t *testing.T) {
			m := msgpack.NewMap()
			var want []string
			for i := range n {
				k := fmt.Sprintf("k%02d", i)
				m.Set(k, i)
				want = append(want, k)
			}
			require.Equal(t, n, m.Len())
			require.Equal(t, want, keysOf(m))

			// An update keeps the position.
			m.Set("k01", "updated")
			require.Equal(t, want, keysOf(m))
			v, ok := m.Get("k01")
			require.True(t, ok)
			require.Equal(t, "updated", v)

			// Delete then set again moves the key to the end, like a Python dict.
			require.True(t, m.Delete("k00"))
			require.False(t, m.Delete("k00"))
			m.Set("k00", "back")
			want = append(slices.Clone(want[1:]), "k00")
			require.Equal(t, want, keysOf(m))
			for i, k := range want {
				_, ok := m.Get(k)
				require.True(t, ok, "entry %d %s", i, k)
			}
			// Removing entries down past the index threshold keeps lookups right.
			for _, k := range want[:len(want)-1] {
				require.True(t, m.Delete(k))
			}
			require.Equal(t, []string{"k00"}, keysOf(m))
			v, ok = m.Get("k00")
			require.True(t, ok)
			require.Equal(t, "back", v)
		})
	}
}

func TestMapKeys(t *testing.T) {
	m := msgpack.NewMap()
	key := []byte("a")
	m.Set(key, 1)
	m.Set("a", 2)
	key[0] = 'z' // the map owns a copy of a []byte key
	require.Equal(t, 2, m.Len())
	v, ok := m.Get([]byte("a"))
	require.True(t, ok)
	require.Equal(t, 1, v)
	v, ok = m.Get("a")
	require.True(t, ok)
	require.Equal(t, 2, v)
	_, ok = m.Get(1)
	require.False(t, ok, "keys other than string and []byte are never present")
	require.False(t, m.Delete(1))
	require.Equal(t, []string{"b:a", "a"}, keysOf(m))

	require.PanicsWithValue(t, "msgpack: map key must be string or []byte, not int", func() { m.Set(1, 2) })
	require.Panics(t, func() { msgpack.MapOf("odd") })

	var nilMap *msgpack.Map
	require.Equal(t, 0, nilMap.Len())
	_, ok = nilMap.Get("a")
	require.False(t, ok)
	for range nilMap.All() {
		t.Fatal("a nil map has no entries")
	}
	var zero msgpack.Map
	zero.Set("x", nil)
	require.Equal(t, 1, zero.Len())
}

func TestMapAllStopsEarly(t *testing.T) {
	m := msgpack.MapOf("a", 1, "b", 2, "c", 3)
	var seen []any
	for k, v := range m.All() {
		seen = append(seen, k, v)
		if k == "b" {
			break
		}
	}
	require.Equal(t, []any{"a", 1, "b", 2}, seen)
}
