package dht

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

func dictMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDictionarySubkeysDistinctByBytes(t *testing.T) {
	// Quirk Q7 (fixed): hivemind merges subkeys equal under Python ==; here 1, True and 1.0 are
	// three subkeys, and 0 and False two.
	d := NewDictionaryValue(0)
	for i, sk := range []any{int64(1), true, 1.0, int64(0), false, "1", []byte("1")} {
		if ok, err := d.Store(dictMarshal(t, sk), []byte{byte(i)}, 20, 10); !ok || err != nil {
			t.Fatalf("Store(%v) = %v, %v", sk, ok, err)
		}
	}
	if n := d.Len(10); n != 7 {
		t.Fatalf("Len = %d, want 7", n)
	}
	if e, ok := d.Get(dictMarshal(t, true), 10); !ok || !bytes.Equal(e.Value, []byte{1}) {
		t.Fatalf("Get(true) = %+v, %v", e, ok)
	}
}

func TestDictionarySubkeyCanonical(t *testing.T) {
	d := NewDictionaryValue(0)
	// 0xcd 0x00 0x01 is a non-minimal encoding of 1: stored as the canonical 0x01.
	if ok, err := d.Store([]byte{0xcd, 0x00, 0x01}, []byte("a"), 20, 10); !ok || err != nil {
		t.Fatalf("Store = %v, %v", ok, err)
	}
	if ok, _ := d.Store([]byte{0x01}, []byte("b"), 20, 10); ok {
		t.Fatal("same subkey with an equal expiration was stored again")
	}
	items := d.Items(10)
	if len(items) != 1 || !bytes.Equal(items[0].Subkey, []byte{0x01}) {
		t.Fatalf("items = %+v", items)
	}
	for _, bad := range [][]byte{nil, {0xc1}, {0x01, 0x02}, {0x92, 0x01}} {
		if ok, err := d.Store(bad, []byte("x"), 30, 10); ok || !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Store(subkey %x) = %v, %v; want ErrInvalidValue", bad, ok, err)
		}
	}
	if d.Delete([]byte{0xc1}) || !d.Delete([]byte{0xcd, 0x00, 0x01}) || d.Len(10) != 0 {
		t.Fatal("Delete by a non-canonical encoding failed")
	}
}

func TestDictionaryLatestExpiration(t *testing.T) {
	d := NewDictionaryValue(0)
	if !math.IsInf(d.LatestExpiration(), -1) {
		t.Fatal("new dictionary: latest is not -inf")
	}
	d.Store(dictMarshal(t, "a"), nil, 15, 10)
	d.Store(dictMarshal(t, "b"), nil, 5, 10) // refused as expired, still counted (kept quirk)
	d.Store(dictMarshal(t, "c"), nil, math.Inf(1), 10)
	if d.LatestExpiration() != 15 {
		t.Fatalf("latest = %v, want 15 (an invalid expiration is not counted)", d.LatestExpiration())
	}
	d.Store(dictMarshal(t, "a"), nil, 12, 10) // not newer: refused
	d.Store(dictMarshal(t, "d"), nil, 30, 10)
	if d.LatestExpiration() != 30 {
		t.Fatalf("latest = %v, want 30", d.LatestExpiration())
	}
}

func TestDictionaryCloneIsIndependent(t *testing.T) {
	d := NewDictionaryValue(3)
	d.Store(dictMarshal(t, "a"), []byte("1"), 20, 10)
	d.Store(dictMarshal(t, "b"), []byte("2"), 15, 10)
	c := d.Clone()
	if !bytes.Equal(c.Pack(10), d.Pack(10)) || c.MaxSize() != 3 {
		t.Fatal("clone packs differently")
	}
	c.Store(dictMarshal(t, "c"), []byte("3"), 25, 10)
	c.Delete(dictMarshal(t, "a"))
	if d.Len(10) != 2 || c.Len(10) != 2 {
		t.Fatalf("lens %d %d", d.Len(10), c.Len(10))
	}
}

func TestDictionaryPackMaxSize(t *testing.T) {
	d := NewDictionaryValue(2)
	d.Store(dictMarshal(t, "a"), []byte{1}, 20, 10)
	packed := d.Pack(10)
	// [2, 20.0, [["a", b"\x01", 20.0]]] inside ext 0x50.
	want := "c71b50" + "93" + "02" + "cb4034000000000000" + "91" + "93a161c40101cb4034000000000000"
	if hex.EncodeToString(packed) != want {
		t.Fatalf("Pack = %x\nwant   %s", packed, want)
	}
	back, err := UnpackDictionary(packed)
	if err != nil || back.MaxSize() != 2 || !bytes.Equal(back.Pack(10), packed) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestUnpackDictionaryHostile(t *testing.T) {
	inf := math.Inf(1)
	item := []any{"k", []byte("v"), 20.0}
	cases := []struct {
		name    string
		payload any // encoded with msgpack.Marshal; a []byte is used as is
	}{
		{name: "garbage", payload: []byte{0xc1}},
		{name: "truncated", payload: []byte{0x93, 0xcb}},
		{name: "not_a_list", payload: "x"},
		{name: "two_fields", payload: []any{inf, 1.0}},
		{name: "float_maxsize", payload: []any{5.0, 1.0, []any{}}},
		{name: "negative_maxsize", payload: []any{-1, 1.0, []any{}}},
		{name: "huge_maxsize", payload: []any{uint64(1) << 63, 1.0, []any{}}},
		{name: "str_maxsize", payload: []any{"inf", 1.0, []any{}}},
		{name: "nan_latest", payload: []any{inf, math.NaN(), []any{}}},
		{name: "inf_latest", payload: []any{inf, inf, []any{}}},
		{name: "str_latest", payload: []any{inf, "1", []any{}}},
		{name: "items_not_list", payload: []any{inf, 1.0, "items"}},
		{name: "short_item", payload: []any{inf, 1.0, []any{[]any{"k", []byte("v")}}}},
		{name: "str_value", payload: []any{inf, 1.0, []any{[]any{"k", "v", 20.0}}}},
		{name: "str_expiration", payload: []any{inf, 1.0, []any{[]any{"k", []byte("v"), "20"}}}},
		{name: "item_not_list", payload: []any{inf, 1.0, []any{item, 7}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			payload, ok := tc.payload.([]byte)
			if !ok {
				payload = dictMarshal(t, tc.payload)
			}
			if d, err := UnpackDictionaryPayload(payload); err == nil || !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("UnpackDictionaryPayload(%x) = %v, %v; want ErrInvalidValue", payload, d, err)
			}
		})
	}
	if _, err := UnpackDictionary(dictMarshal(t, msgpack.Ext{Code: 0x51, Data: []byte{0x90}})); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("wrong ext code: %v", err)
	}
}

func TestUnpackDictionaryLenient(t *testing.T) {
	inf := math.Inf(1)
	payload := dictMarshal(t, msgpack.Tuple{int64(0), int64(30), []any{
		msgpack.Tuple{"a", []byte("1"), int64(20)}, // tuple items and integer expirations are accepted
		[]any{"nan", []byte("2"), math.NaN()},      // dropped: a store would refuse it
		[]any{"b", []byte("3"), 5.0},               // kept while decoding, expired at the next access
		[]any{"a", []byte("4"), 10.0},              // repeated subkey, older: refused
		[]any{[]any{int64(1), "x"}, []byte("5"), inf},
	}})
	d, err := UnpackDictionaryPayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	if d.MaxSize() != 0 || d.LatestExpiration() != 30 {
		t.Fatalf("maxsize %d latest %v", d.MaxSize(), d.LatestExpiration())
	}
	d.SetFrozen(true)
	if n := d.Len(10); n != 2 {
		t.Fatalf("frozen Len = %d, want 2 (a, b)", n)
	}
	d.SetFrozen(false)
	items := d.Items(10)
	if len(items) != 1 || !bytes.Equal(items[0].Value, []byte("1")) || items[0].Expiration != 20 {
		t.Fatalf("items = %+v", items)
	}
}

// FuzzUnpackDictionary: decoding arbitrary bytes never panics, and a successful decode packs to
// bytes that decode again to the same dictionary.
func FuzzUnpackDictionary(f *testing.F) {
	for _, b := range vectors.ByteStrings(f, "msgpack.json") { // dictionary payloads among them
		f.Add(b)
	}
	inf := math.Inf(1)
	for _, v := range []any{
		[]any{int64(3), 10.0, []any{[]any{"a", []byte{1}, 5.0}, []any{"b", []byte{2}, 15.0}, []any{"c", []byte{}, 1.0}, []any{"d", []byte{}, 2.0}}},
		[]any{inf, math.Inf(-1), []any{}},
		msgpack.Tuple{inf, 1.0, msgpack.Tuple{msgpack.Tuple{msgpack.Tuple{true, nil}, []byte("x"), 2.0}}},
		// An ext-7 subkey (read as bin) and a dictionary subkey (kept in its canonical packing).
		[]any{inf, 3.0, []any{
			[]any{msgpack.Ext{Code: 7, Data: []byte("x")}, []byte{1}, 2.0},
			[]any{msgpack.Ext{Code: msgpack.ExtDictionary, Data: dictMarshal(f, []any{int64(2), 5.0, []any{[]any{"a", []byte{}, 5.0}}})}, []byte{2}, 3.0},
		}},
	} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x93, 0xcb})
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := UnpackDictionaryPayload(payload)
		if err != nil {
			if !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("error %v does not wrap ErrInvalidValue", err)
			}
			return
		}
		d.SetFrozen(true) // compare everything decoded, expired and over-maxsize entries included
		packed := d.Pack(0)
		again, err := UnpackDictionary(packed)
		if err != nil {
			t.Fatalf("re-decoding %x: %v", packed, err)
		}
		again.SetFrozen(true)
		if again.MaxSize() != d.MaxSize() || math.Float64bits(again.LatestExpiration()) != math.Float64bits(d.LatestExpiration()) {
			t.Fatalf("header changed: %d/%v vs %d/%v", again.MaxSize(), again.LatestExpiration(), d.MaxSize(), d.LatestExpiration())
		}
		if repacked := again.Pack(0); !bytes.Equal(repacked, packed) {
			t.Fatalf("repacked %x\nwant     %x", repacked, packed)
		}
		d.SetFrozen(false)
		again.SetFrozen(false)
		if !bytes.Equal(d.Pack(1e9), again.Pack(1e9)) {
			t.Fatal("the decoded copies diverge once expiry runs")
		}
	})
}

// TestDictionarySerializeInList is hivemind's test_localstorage_serialize: two dictionaries and an
// int inside a list survive a msgpack round trip.
func TestDictionarySerializeInList(t *testing.T) {
	d1, d2 := NewDictionaryValue(0), NewDictionaryValue(0)
	d1.Store(dictMarshal(t, "a"), dictMarshal(t, int64(1)), 20, 10)
	d2.Store(dictMarshal(t, msgpack.Tuple{int64(1), "b"}), dictMarshal(t, []any{"x"}), 30, 10)
	d2.Store(dictMarshal(t, int64(7)), nil, 25, 10)
	packed := dictMarshal(t, []any{msgpack.Raw(d1.Pack(10)), msgpack.Raw(d2.Pack(10)), int64(777)})
	v, err := msgpack.Unmarshal(packed)
	list, ok := v.([]any)
	if err != nil || !ok || len(list) != 3 || list[2] != int64(777) {
		t.Fatalf("Unmarshal = %#v, %v", v, err)
	}
	for i, d := range []*DictionaryValue{d1, d2} {
		back, err := UnpackDictionary(dictMarshal(t, list[i]))
		if err != nil || !bytes.Equal(back.Pack(10), d.Pack(10)) || back.LatestExpiration() != d.LatestExpiration() {
			t.Fatalf("dictionary %d: %v", i, err)
		}
	}
}
