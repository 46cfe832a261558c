package dht

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// Subkeys as hivemind decodes them. hivemind's rpc_store reads a subkey with
// MSGPackSerializer.loads, whose ext hook turns an ext of a code it does not register into its bare
// payload (bytes), turns an ext 0x50 into a DictionaryDHTValue (DictionaryDHTValue.unpackb, which
// raises on a malformed payload), and leaves timestamps (ext −1) to msgpack-python, which raises
// unless the payload is 4, 8 or 12 bytes. Whatever it decoded is the subkey, packed again by
// MSGPackSerializer.dumps whenever the dictionary is sent.

// subkeyTestNow is the DHT time of these tests.
const subkeyTestNow = 1_700_000_000.0

// TestSubkeyUnknownExtIsBin: hivemind packs a subkey sent as an ext of an unknown code (7) as bin,
// the payload its ext hook returned, so an ext-7 subkey and a bin subkey with the same bytes are one
// subkey, wherever the ext sits inside the subkey. Checked through DictionaryValue.Store, an inbound
// STORE (HandleStore, one subkey at a time and as a whole dictionary) and a FIND round trip; values
// pass through untouched.
func TestSubkeyUnknownExtIsBin(t *testing.T) {
	ext7 := dictMarshal(t, msgpack.Ext{Code: 7, Data: []byte("ab")}) // d5 07 61 62
	bin := dictMarshal(t, []byte("ab"))                              // c4 02 61 62
	// A value holding an ext 7, stored as it is (values are never decoded and re-encoded).
	value := dictMarshal(t, []any{msgpack.Ext{Code: 7, Data: []byte("v")}})

	t.Run("DictionaryValue", func(t *testing.T) {
		for _, tc := range []struct {
			name        string
			first, same []byte // two encodings of one subkey
			want        []byte // its canonical encoding
		}{
			{name: "ext7_then_bin", first: ext7, same: bin, want: bin},
			{name: "bin_then_ext7", first: bin, same: ext7, want: bin},
			{
				name:  "inside_a_list",
				first: dictMarshal(t, []any{int64(1), msgpack.Ext{Code: 7, Data: []byte("ab")}}),
				same:  dictMarshal(t, []any{int64(1), []byte("ab")}),
				want:  dictMarshal(t, []any{int64(1), []byte("ab")}),
			},
			{
				name:  "inside_a_map_value",
				first: dictMarshal(t, msgpack.MapOf("k", msgpack.Tuple{msgpack.Ext{Code: 7, Data: []byte("ab")}})),
				same:  dictMarshal(t, msgpack.MapOf("k", msgpack.Tuple{[]byte("ab")})),
				want:  dictMarshal(t, msgpack.MapOf("k", msgpack.Tuple{[]byte("ab")})),
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := NewDictionaryValue(0)
				if ok, err := d.Store(tc.first, value, subkeyTestNow+10, subkeyTestNow); !ok || err != nil {
					t.Fatalf("first store: %v, %v", ok, err)
				}
				// Same subkey, same expiration: refused as not newer; a later one replaces it.
				if ok, err := d.Store(tc.same, []byte("x"), subkeyTestNow+10, subkeyTestNow); ok || err != nil {
					t.Fatalf("the other encoding with an equal expiration: %v, %v; want refused (one subkey)", ok, err)
				}
				if ok, err := d.Store(tc.same, value, subkeyTestNow+20, subkeyTestNow); !ok || err != nil {
					t.Fatalf("the other encoding with a later expiration: %v, %v", ok, err)
				}
				items := d.Items(subkeyTestNow)
				if len(items) != 1 || !bytes.Equal(items[0].Subkey, tc.want) || !bytes.Equal(items[0].Value, value) {
					t.Fatalf("items = %x; want one subkey %x holding %x", items, tc.want, value)
				}
				if _, ok := d.Get(tc.first, subkeyTestNow); !ok {
					t.Errorf("Get by the first encoding found nothing")
				}
			})
		}
	})

	t.Run("HandleStore_and_FIND", func(t *testing.T) {
		s := newTestSwarm(t, 1, nil)
		server := s.nodes[0]
		client := s.add(t, Config{ClientMode: true, Clock: s.clock, Logger: quietLogger(), RefreshInterval: -1})
		one, whole := HashID([]byte("one subkey at a time")), HashID([]byte("a whole dictionary"))
		regular := HashID([]byte("a regular value"))

		// The whole dictionary is packed by hand with an ext-7 subkey, as a peer may send it.
		payload := dictMarshal(t, []any{math.Inf(1), subkeyTestNow + 30, []any{
			[]any{msgpack.Ext{Code: 7, Data: []byte("ab")}, value, subkeyTestNow + 30},
		}})
		packed := dictMarshal(t, msgpack.Ext{Code: msgpack.ExtDictionary, Data: payload})
		oks, err := client.callStore(t.Context(), server.PeerID(), []wireItem{
			{key: one, tag: ext7, value: value, expiration: subkeyTestNow + 10},
			{key: one, tag: bin, value: value, expiration: subkeyTestNow + 20}, // the same subkey, later
			{key: whole, tag: []byte(TagDictionary), value: packed, expiration: subkeyTestNow + 30},
			{key: regular, tag: []byte(TagRegular), value: value, expiration: subkeyTestNow + 40},
		})
		if err != nil || !slices.Equal(oks, []bool{true, true, true, true}) {
			t.Fatalf("store = %v, %v", oks, err)
		}
		answers, err := client.callFind(t.Context(), server.PeerID(), []ID{one, whole, regular})
		if err != nil {
			t.Fatal(err)
		}
		for i, exp := range []float64{subkeyTestNow + 20, subkeyTestNow + 30} {
			v := answers[i].value
			if v == nil || v.dict == nil {
				t.Fatalf("key %d: found %+v, want a dictionary", i, v)
			}
			items := v.dict.Items(subkeyTestNow)
			if len(items) != 1 || !bytes.Equal(items[0].Subkey, bin) || !bytes.Equal(items[0].Value, value) || items[0].Expiration != exp {
				t.Errorf("key %d: subkeys %x; want one bin subkey %x holding %x until %v", i, items, bin, value, exp)
			}
		}
		if v := answers[2].value; v == nil || !bytes.Equal(v.regular, value) {
			t.Errorf("regular value = %+v, want %x untouched", v, value)
		}
	})

	t.Run("Raw_value_untouched", func(t *testing.T) {
		s := newTestSwarm(t, 1, nil)
		n := s.nodes[0]
		key := MustKey("raw")
		if _, err := n.Store(t.Context(), StoreItem{Key: key, Subkey: "s", Value: msgpack.Raw(value), Expiration: subkeyTestNow + 10}); err != nil {
			t.Fatal(err)
		}
		e, ok := n.storage.Get(key.ID(), subkeyTestNow)
		if !ok || e.Dictionary == nil {
			t.Fatalf("stored %+v, %v", e, ok)
		}
		if items := e.Dictionary.Items(subkeyTestNow); len(items) != 1 || !bytes.Equal(items[0].Value, value) {
			t.Fatalf("items %x, want the value %x untouched", items, value)
		}
	})
}

// TestSubkeyHivemindCannotDecodeIsRefused: a subkey holding, anywhere inside it, a dictionary
// (ext 0x50) whose payload is not a valid DictionaryDHTValue or a timestamp (ext −1) of a length
// other than 4, 8 or 12 makes hivemind's rpc_store raise (the whole request fails there). Here
// such an item is refused on its own: store_ok false for it, the other items of the request
// stored; it is never stored, alone or inside a whole dictionary.
func TestSubkeyHivemindCannotDecodeIsRefused(t *testing.T) {
	badDict := msgpack.Ext{Code: msgpack.ExtDictionary, Data: dictMarshal(t, "not [maxsize, latest, items]")}
	badTimestamp := msgpack.Raw{0xc7, 3, 0xff, 1, 2, 3} // Marshal refuses an Ext of these
	goodTimestamp := msgpack.Ext{Code: msgpack.ExtTimestamp, Data: []byte{0, 0, 0, 1}}
	bad := []struct {
		name   string
		subkey any
	}{
		{name: "malformed_dictionary", subkey: badDict},
		{name: "dictionary_with_a_bad_item", subkey: msgpack.Ext{Code: msgpack.ExtDictionary,
			Data: dictMarshal(t, []any{math.Inf(1), 1.0, []any{[]any{"k", "a str value", 1.0}}})}},
		{name: "malformed_dictionary_in_a_list", subkey: []any{"ok", badDict}},
		{name: "malformed_dictionary_in_a_map", subkey: msgpack.MapOf("k", badDict)},
		{name: "malformed_timestamp", subkey: badTimestamp},
		{name: "malformed_timestamp_in_a_tuple", subkey: msgpack.Tuple{int64(1), badTimestamp}},
		{name: "malformed_timestamp_in_a_nested_dictionary", subkey: msgpack.Ext{Code: msgpack.ExtDictionary,
			Data: dictMarshal(t, []any{math.Inf(1), 1.0, []any{[]any{badTimestamp, []byte("v"), 1.0}}})}},
	}
	good := dictMarshal(t, []any{"ok", goodTimestamp})

	t.Run("DictionaryValue_and_LocalStorage", func(t *testing.T) {
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				subkey := dictMarshal(t, tc.subkey)
				d := NewDictionaryValue(0)
				if ok, err := d.Store(subkey, []byte("v"), subkeyTestNow+10, subkeyTestNow); ok || !errors.Is(err, ErrInvalidValue) {
					t.Errorf("DictionaryValue.Store = %v, %v; want ErrInvalidValue", ok, err)
				}
				s := NewLocalStorage(LocalStorageConfig{})
				if ok, err := s.StoreSubkey(HashID(subkey), subkey, []byte("v"), subkeyTestNow+10, subkeyTestNow); ok || !errors.Is(err, ErrInvalidValue) {
					t.Errorf("LocalStorage.StoreSubkey = %v, %v; want ErrInvalidValue", ok, err)
				}
				payload := dictMarshal(t, []any{math.Inf(1), subkeyTestNow + 10, []any{[]any{msgpack.Raw(subkey), []byte("v"), subkeyTestNow + 10}}})
				if _, err := UnpackDictionaryPayload(payload); !errors.Is(err, ErrInvalidValue) {
					t.Errorf("a dictionary holding the subkey: %v; want ErrInvalidValue", err)
				}
				if d.Len(subkeyTestNow) != 0 || s.Len(subkeyTestNow) != 0 {
					t.Errorf("something was stored")
				}
			})
		}
		if ok, err := NewDictionaryValue(0).Store(good, nil, subkeyTestNow+10, subkeyTestNow); !ok || err != nil {
			t.Fatalf("a well-formed timestamp: %v, %v", ok, err)
		}
	})

	t.Run("HandleStore", func(t *testing.T) {
		s := newTestSwarm(t, 1, nil)
		n := s.nodes[0]
		key, other := HashID([]byte("key")), HashID([]byte("other"))
		req := &dhtpb.StoreRequest{}
		add := func(key ID, tag, value []byte) {
			req.Keys = append(req.Keys, key.Bytes())
			req.Subkeys = append(req.Subkeys, tag)
			req.Values = append(req.Values, value)
			req.ExpirationTime = append(req.ExpirationTime, subkeyTestNow+10)
			req.InCache = append(req.InCache, false)
		}
		var want []bool
		for _, tc := range bad {
			subkey := dictMarshal(t, tc.subkey)
			add(key, subkey, []byte("v"))
			whole := dictMarshal(t, msgpack.Ext{Code: msgpack.ExtDictionary, Data: dictMarshal(t, []any{math.Inf(1), subkeyTestNow + 10,
				[]any{[]any{msgpack.Raw(subkey), []byte("v"), subkeyTestNow + 10}}})})
			add(other, []byte(TagDictionary), whole)
			want = append(want, false, false)
		}
		add(key, good, []byte("kept"))
		add(other, []byte(TagRegular), []byte("kept too"))
		want = append(want, true, true)
		resp, err := n.HandleStore(t.Context(), "hivemind-peer", req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetStoreOk(); !slices.Equal(got, want) {
			t.Fatalf("store_ok = %v\n    want %v", got, want)
		}
		e, ok := n.storage.Get(key, subkeyTestNow)
		if !ok || e.Dictionary == nil {
			t.Fatalf("key: %+v, %v", e, ok)
		}
		if items := e.Dictionary.Items(subkeyTestNow); len(items) != 1 || !bytes.Equal(items[0].Subkey, good) {
			t.Errorf("key holds %x; want only the well-formed subkey %x", items, good)
		}
		if e, ok := n.storage.Get(other, subkeyTestNow); !ok || e.Kind != ValueRegular || string(e.Value) != "kept too" {
			t.Errorf("other key: %+v, %v", e, ok)
		}
	})
}

// TestSubkeyDictionaryIsCanonical: a well-formed dictionary inside a subkey is what hivemind's ext
// hook turns into a DictionaryDHTValue; it is validated and kept in its canonical packing (the
// dictionary packed whole, while frozen: see canonicalValue), so encodings of one dictionary that
// differ on the wire (a non-minimal header, an ext-7 inner subkey) are one subkey, and an inner entry
// that expires later still does not change the subkey.
func TestSubkeyDictionaryIsCanonical(t *testing.T) {
	inner := NewDictionaryValue(0)
	if ok, err := inner.Store(dictMarshal(t, []byte("ab")), []byte("v"), subkeyTestNow+5, subkeyTestNow); !ok || err != nil {
		t.Fatal(ok, err)
	}
	canonical := inner.Pack(subkeyTestNow)
	// The same dictionary as a peer may write it: an ext-7 inner subkey and an ext32 header.
	payload := dictMarshal(t, []any{math.Inf(1), subkeyTestNow + 5, []any{
		[]any{msgpack.Ext{Code: 7, Data: []byte("ab")}, []byte("v"), subkeyTestNow + 5},
	}})
	loose := append([]byte{0xc9, 0, 0, 0, byte(len(payload)), byte(msgpack.ExtDictionary)}, payload...)
	if bytes.Equal(loose, canonical) {
		t.Fatal("the test's two encodings are equal")
	}

	d := NewDictionaryValue(0)
	if ok, err := d.Store(loose, []byte("1"), subkeyTestNow+10, subkeyTestNow); !ok || err != nil {
		t.Fatalf("store by the loose encoding: %v, %v", ok, err)
	}
	// Later than the inner entry's expiration: the subkey is still the same one.
	later := subkeyTestNow + 7
	if ok, err := d.Store(canonical, []byte("2"), subkeyTestNow+20, later); !ok || err != nil {
		t.Fatalf("store by the canonical encoding: %v, %v", ok, err)
	}
	items := d.Items(later)
	if len(items) != 1 || !bytes.Equal(items[0].Subkey, canonical) || string(items[0].Value) != "2" {
		t.Fatalf("items = %x; want one subkey %x", items, canonical)
	}
	// The packed outer dictionary decodes again to the same subkey.
	back, err := UnpackDictionary(d.Pack(later))
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Items(later); len(got) != 1 || !bytes.Equal(got[0].Subkey, canonical) {
		t.Fatalf("decoded again: %x", got)
	}
	// Nesting is bounded: a subkey chain deeper than maxDictionaryNesting is refused.
	deep := dictMarshal(t, "leaf")
	for range maxDictionaryNesting + 1 {
		deep = dictMarshal(t, msgpack.Ext{Code: msgpack.ExtDictionary, Data: dictMarshal(t, []any{math.Inf(1), 1.0,
			[]any{[]any{msgpack.Raw(deep), []byte{}, 1.0}}})})
	}
	if ok, err := NewDictionaryValue(0).Store(deep, nil, subkeyTestNow+10, subkeyTestNow); ok || !errors.Is(err, ErrInvalidValue) || !errors.Is(err, msgpack.ErrTooDeep) {
		t.Fatalf("dictionaries nested %d deep: %v, %v; want ErrInvalidValue, ErrTooDeep", maxDictionaryNesting+1, ok, err)
	}
}
