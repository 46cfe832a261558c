package main

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/internal/cli"
)

// Fuzz targets for the JSON forms of msgpack values: what `store` reads from its VALUE and --subkey
// arguments, and what `get` prints of the bytes a peer returned. `get` then `store` of the printed
// value must store the value that was read.

// FuzzStoreValueJSON feeds arbitrary text as store's VALUE: fromJSON returns an error or a value
// that encodes to msgpack, and printing that value back as `get` would (toJSON) gives text that
// parses to the same msgpack bytes.
func FuzzStoreValueJSON(f *testing.F) {
	for _, s := range []string{
		`"hello"`, `42`, `-7`, `18446744073709551615`, `-9223372036854775808`, `1.5`, `1.0`, `-0.0`,
		`1e20`, `1e400`, `1e-400`, `null`, `true`, `[1,"a",[true]]`, `{"z":1,"a":{"$bytes":"AAE="}}`,
		`{"$bytes":"3q2+7w=="}`, `{"$tuple":[1,2]}`, `{"$ext":81,"data":"AQI="}`,
		`{"$map":[[{"$bytes":"YQ=="},1],["b",2]]}`, `{"$map":[["$bytes","AAAA"]]}`,
		`{"$map":[["$tuple",[1]],["$ext",1]]}`, `{"$float":"NaN"}`, `{"$float":"-Inf"}`,
		`{"a":1,"a":2}`, `{}`, `[]`, `"\ud800"`, `123456789012345678901234567890`, `{"$bytes": 5}`,
		`{"$ext": 1000, "data": ""}`, `[1,`, `1 2`, ``, `{"$tuple":{"$tuple":[]}}`,
		`{"$ext":0,"data":""}`, `{"$ext":-1,"data":"AAAAAQ=="}`, `{"$ext":64,"data":"kQE="}`, // read back as bytes, a timestamp, a tuple
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, err := fromJSON(text)
		if err != nil {
			return
		}
		packed, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("fromJSON(%q) gave %#v, which does not encode: %v", text, v, err)
		}
		back, err := msgpack.Unmarshal(packed)
		if err != nil {
			t.Fatalf("fromJSON(%q) encoded to %x, which does not decode: %v", text, packed, err)
		}
		printed, err := json.Marshal(toJSON(back))
		if err != nil {
			t.Fatalf("value of %q does not print as JSON: %v", text, err)
		}
		again, err := fromJSON(string(printed))
		if err != nil {
			t.Fatalf("%q stored, printed as %s, which store rejects: %v", text, printed, err)
		}
		repacked, err := msgpack.Marshal(again)
		if err != nil {
			t.Fatalf("%q printed as %s, which parses to %#v that does not encode: %v", text, printed, again, err)
		}
		if !bytes.Equal(packed, repacked) {
			t.Fatalf("%q stores %x, but its printed form %s stores %x", text, packed, printed, repacked)
		}
	})
}

// FuzzGetJSON feeds arbitrary value and subkey bytes, as a peer returns them, to get's rendering:
// bad msgpack is an error, the rendering is valid JSON, and every value printed parses (as store's
// VALUE) to the value the peer sent, NaN payloads aside. A canonically encoded subkey is found.
func FuzzGetJSON(f *testing.F) {
	pack := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	seeds := []struct {
		value, sub1, val1, sub2, val2 []byte
		dict                          bool
	}{
		{value: pack("v")},
		{value: pack(1.0)},
		{value: pack(math.Copysign(0, -1))},
		{value: pack(1e20)},
		{value: pack(math.NaN())},
		{value: pack(math.Inf(-1))},
		{value: []byte{0xca, 0x7f, 0xc0, 0x00, 0x01}}, // float32 NaN with a payload
		{value: []byte{0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 1}},
		{value: pack(msgpack.MapOf("$bytes", "AAAA"))},
		{value: pack(msgpack.MapOf("$ext", int64(1), "data", ""))},
		{value: pack(msgpack.MapOf("$float", "NaN"))},
		{value: pack(msgpack.MapOf([]byte("k"), msgpack.Tuple{int64(1), []byte{2}}))},
		{value: pack(msgpack.Ext{Code: 0x51, Data: []byte{1, 2}})},
		{value: []byte{0xd4, 0x40, 0xa1}}, // tuple of a str payload
		{value: []byte{0xc1}},
		{value: []byte{0x01, 0x02}},
		{dict: true, sub1: pack("alice"), val1: pack(int64(1)), sub2: pack(int64(7)), val2: pack([]byte{1})},
		{dict: true, sub1: pack("1"), val1: pack(2.0), sub2: pack(int64(1)), val2: pack(3.0)},
		{dict: true, sub1: pack("a"), val1: pack("x"), sub2: pack("a"), val2: pack("y")},
		{dict: true, sub1: []byte{0xd0, 0x01}, val1: pack(true), sub2: pack(msgpack.Tuple{"a"}), val2: pack(nil)},
		{dict: true, sub1: pack("a"), val1: []byte{0xc1}},
	}
	for _, s := range seeds {
		f.Add(s.value, s.sub1, s.val1, s.sub2, s.val2, s.dict)
	}
	f.Fuzz(func(t *testing.T, value, sub1, val1, sub2, val2 []byte, dict bool) {
		printedValue := func(subkey, value []byte) []byte { // the bytes get decodes: without signatures when protected
			return checkSigned(dht.Record{Key: dht.MustKey("k").ID().Bytes(), Subkey: subkey, Value: value}).Value
		}
		if !dict {
			res := &dht.Result{Value: value, Expiration: 5}
			out, err := getJSON("k", res, false, nil)
			want, derr := msgpack.Unmarshal(printedValue([]byte(dht.TagRegular), value))
			if (err != nil) != (derr != nil) {
				t.Fatalf("value %x: getJSON error %v, msgpack error %v", value, err, derr)
			}
			if err != nil {
				return
			}
			checkPrinted(t, out)
			checkRoundTrip(t, "value", want, field(t, out, "value"))
			return
		}
		entries := []dht.DictionaryEntry{{Subkey: sub1, Value: val1, Expiration: 10}, {Subkey: sub2, Value: val2, Expiration: 20}}
		res := &dht.Result{IsDictionary: true, Dictionary: entries, Expiration: 20}
		out, err := getJSON("k", res, false, nil)
		var decodeErr error
		for _, b := range [][]byte{sub1, printedValue(sub1, val1), sub2, printedValue(sub2, val2)} {
			if _, err := msgpack.Unmarshal(b); err != nil {
				decodeErr = err
			}
		}
		if (err != nil) != (decodeErr != nil) {
			t.Fatalf("dictionary %x: getJSON error %v, msgpack error %v", [][]byte{sub1, val1, sub2, val2}, err, decodeErr)
		}
		if err != nil {
			return
		}
		checkPrinted(t, out)
		printed := printedEntries(t, field(t, out, "value"), len(entries))
		for i, e := range entries {
			want, _ := msgpack.Unmarshal(printedValue(e.Subkey, e.Value))
			checkRoundTrip(t, "entry value", want, field(t, printed[i], "value"))
		}
		// --subkey S, with S the printed subkey: found, with the first entry's value.
		sub, _ := msgpack.Unmarshal(sub1)
		if canon, err := msgpack.Marshal(sub); err != nil || !bytes.Equal(canon, sub1) {
			return // a non-canonical encoding is matched by its bytes only
		}
		out, err = getJSON("k", res, true, sub)
		if err != nil {
			t.Fatalf("subkey %x: %v", sub1, err)
		}
		checkPrinted(t, out)
		if found, _ := field(t, out, "found").(bool); !found {
			t.Fatalf("subkey %x not found in %x", sub1, [][]byte{sub1, sub2})
		}
		want, _ := msgpack.Unmarshal(printedValue(sub1, val1))
		checkRoundTrip(t, "subkey value", want, field(t, out, "value"))
	})
}

// printedEntries returns the entries of a printed dictionary, in order: an object keyed by distinct
// subkey strings, or a {"$map": [[subkey, entry], ...]} when the subkeys are not distinct strings.
func printedEntries(t *testing.T, printed any, n int) []*cli.Object {
	t.Helper()
	d, ok := printed.(*cli.Object)
	if !ok {
		t.Fatalf("dictionary printed as %#v", printed)
	}
	var out []*cli.Object
	if pairs, ok := d.Get(tagMap); ok && d.Len() == 1 {
		pairs, ok := pairs.([][]any)
		if !ok {
			t.Fatalf("dictionary printed as %#v", printed)
		}
		for _, p := range pairs {
			e, ok := p[1].(*cli.Object)
			if len(p) != 2 || !ok {
				t.Fatalf("dictionary pair printed as %#v", p)
			}
			out = append(out, e)
		}
	} else {
		seen := map[string]bool{}
		for k, v := range d.All() {
			if seen[k] {
				t.Fatalf("dictionary printed with the subkey %q twice: %#v", k, d)
			}
			seen[k] = true
			e, ok := v.(*cli.Object)
			if !ok {
				t.Fatalf("entry %q printed as %#v", k, v)
			}
			out = append(out, e)
		}
	}
	if len(out) != n {
		t.Fatalf("dictionary printed as %#v, want %d entries", d, n)
	}
	return out
}

// checkPrinted marshals a rendering as get prints it.
func checkPrinted(t *testing.T, out *cli.Object) {
	t.Helper()
	var buf bytes.Buffer
	if err := cli.PrintJSON(&buf, out); err != nil {
		t.Fatalf("rendering %#v does not print: %v", out, err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Fatalf("printed invalid JSON: %s", buf.Bytes())
	}
}

// field returns the value of name in a rendering, which must have it.
func field(t *testing.T, o *cli.Object, name string) any {
	t.Helper()
	v, ok := o.Get(name)
	if !ok {
		t.Fatalf("no %q in %#v", name, o)
	}
	return v
}

// getJSON renders res as get prints it for KEY key (with --subkey subkey when hasSubkey).
func getJSON(key string, res *dht.Result, hasSubkey bool, subkey any) (*cli.Object, error) {
	v := getView{name: key, keyID: dht.MustKey(key).ID().Bytes()}
	if hasSubkey {
		want, err := msgpack.Marshal(subkey)
		if err != nil {
			return nil, err
		}
		v.subkey, v.wantSubkey = subkey, want
	}
	return v.render(res)
}

// checkRoundTrip checks that printed, a toJSON rendering of want, parses as store's VALUE to want.
func checkRoundTrip(t *testing.T, what string, want, printed any) {
	t.Helper()
	text, err := json.Marshal(printed)
	if err != nil {
		t.Fatalf("%s %#v does not print: %v", what, want, err)
	}
	got, err := fromJSON(string(text))
	if err != nil {
		t.Fatalf("%s %#v printed as %s, which store rejects: %v", what, want, text, err)
	}
	if !sameValue(want, got) {
		wb, _ := msgpack.Marshal(want)
		gb, _ := msgpack.Marshal(got)
		t.Fatalf("%s %x printed as %s, which stores %x", what, wb, text, gb)
	}
}

// sameValue is msgpack.Equal, except that every NaN equals every NaN: JSON prints NaN without its
// payload.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok && math.IsNaN(x) && math.IsNaN(y) {
			return true
		}
	case []any:
		y, ok := b.([]any)
		return ok && sameItems(x, y)
	case msgpack.Tuple:
		y, ok := b.(msgpack.Tuple)
		return ok && sameItems(x, y)
	case *msgpack.Map:
		y, ok := b.(*msgpack.Map)
		if !ok || x.Len() != y.Len() {
			return false
		}
		var xs, ys []any
		for k, v := range x.All() {
			xs = append(xs, k, v)
		}
		for k, v := range y.All() {
			ys = append(ys, k, v)
		}
		return sameItems(xs, ys)
	}
	return msgpack.Equal(a, b)
}

func sameItems(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameValue(a[i], b[i]) {
			return false
		}
	}
	return true
}
