package dht

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// ---- typed vector values → msgpack ----

// stEncode returns the msgpack encoding of a typed vector value (through the loader's Value.Go).
func stEncode(t testing.TB, v vectors.Value) []byte {
	t.Helper()
	g, err := v.Go()
	if err != nil {
		t.Fatalf("typed value %+v: %v", v, err)
	}
	b, err := msgpack.Marshal(g)
	if err != nil {
		t.Fatalf("encode %+v: %v", v, err)
	}
	return b
}

// stCheckDictionary compares a dictionary's live state at now with a typed dictionary_dht_value.
func stCheckDictionary(t *testing.T, where string, d *DictionaryValue, want *vectors.Dictionary, now float64) {
	t.Helper()
	if d == nil || want == nil {
		t.Fatalf("%s: dictionary %v, want %v", where, d, want)
	}
	switch want.MaxSize.Kind {
	case vectors.KindFloat:
		if !math.IsInf(want.MaxSize.Float.Value(), 1) || d.MaxSize() != 0 {
			t.Errorf("%s: maxsize %d, want %s", where, d.MaxSize(), want.MaxSize.Float.Repr)
		}
	case vectors.KindInt:
		if int64(d.MaxSize()) != want.MaxSize.Int.Int64() {
			t.Errorf("%s: maxsize %d, want %s", where, d.MaxSize(), want.MaxSize.Int)
		}
	}
	if math.Float64bits(d.LatestExpiration()) != want.LatestExpirationTime.Bits() {
		t.Errorf("%s: latest expiration %v, want %s", where, d.LatestExpiration(), want.LatestExpirationTime.Repr)
	}
	stCheckDictItems(t, where, d.Items(now), want.Items)
}

func stCheckDictItems(t *testing.T, where string, got []DictionaryEntry, want []vectors.DictionaryItem) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d subkeys, want %d", where, len(got), len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if !bytes.Equal(g.Subkey, stEncode(t, w.Subkey)) || !bytes.Equal(g.Value, w.Value) || math.Float64bits(g.Expiration) != w.Expiration.Bits() {
			t.Errorf("%s: item %d = (%x, %x, %v), want (%x, %x, %s)", where, i, []byte(g.Subkey), []byte(g.Value), g.Expiration, stEncode(t, w.Subkey), []byte(w.Value), w.Expiration.Repr)
		}
	}
}

// ---- vectors/storage.json ----

type storageOpVec struct {
	Op         string           `json:"op"`
	Now        *vectors.Float   `json:"now"`
	Key        *vectors.Value   `json:"key"`
	KeyID      vectors.HexBytes `json:"key_dhtid_hex"`
	Subkey     *vectors.Value   `json:"subkey"`
	Value      vectors.HexBytes `json:"value_hex"`
	Expiration *vectors.Float   `json:"expiration"`
	Result     json.RawMessage  `json:"result"`
	ResultHex  vectors.HexBytes `json:"result_hex"`
	Error      *vectors.Error   `json:"error"`
}

type storageEntryVec struct {
	Key        *vectors.Value   `json:"key"`
	KeyID      vectors.HexBytes `json:"key_dhtid_hex"`
	Value      vectors.Value    `json:"value"`
	Expiration vectors.Float    `json:"expiration"`
	Wire       vectors.HexBytes `json:"wire_value_hex"`
}

type storageScenarioVec struct {
	Name    string `json:"name"`
	Note    string `json:"note"`
	Storage struct {
		Class   string `json:"class"`
		MaxSize *int   `json:"maxsize"`
	} `json:"storage"`
	Ops           []storageOpVec `json:"ops"`
	Quirk         string         `json:"quirk"`
	PortShould    string         `json:"port_should"`
	ExpectedFixed *struct {
		Ops []storageOpVec `json:"ops"`
	} `json:"expected_fixed"`
}

// stEntry is one record as the three storage classes under test report it.
type stEntry struct {
	key     []byte // the key ID (DHTLocalStorage) or the key's msgpack (the others)
	regular []byte
	dict    *DictionaryValue
	exp     float64
	wire    []byte
}

// stSubject adapts LocalStorage, TimedStorage and DictionaryValue to the ops of storage.json.
type stSubject interface {
	store(t *testing.T, op storageOpVec, now float64) (bool, error)
	storeSubkey(t *testing.T, op storageOpVec, now float64) (bool, error)
	get(t *testing.T, op storageOpVec, now float64) (stEntry, bool)
	contains(t *testing.T, op storageOpVec, now float64) bool
	len(now float64) int
	items(now float64) []stEntry
	top(now float64) (stEntry, bool)
	del(t *testing.T, op storageOpVec)
	dictionary() *DictionaryValue
}

type stLocal struct{ s *LocalStorage }

func (l stLocal) id(t *testing.T, op storageOpVec) ID { return rtMustID(t, op.KeyID) }
func (l stLocal) store(t *testing.T, op storageOpVec, now float64) (bool, error) {
	return l.s.Store(l.id(t, op), op.Value, op.Expiration.Value(), now)
}
func (l stLocal) storeSubkey(t *testing.T, op storageOpVec, now float64) (bool, error) {
	return l.s.StoreSubkey(l.id(t, op), stEncode(t, *op.Subkey), op.Value, op.Expiration.Value(), now)
}
func (l stLocal) conv(e LocalEntry) stEntry {
	out := stEntry{key: e.Key.Bytes(), dict: e.Dictionary, exp: e.Expiration, wire: e.Value}
	if e.Kind == ValueRegular {
		out.regular = e.Value
	}
	return out
}
func (l stLocal) get(t *testing.T, op storageOpVec, now float64) (stEntry, bool) {
	e, ok := l.s.Get(l.id(t, op), now)
	return l.conv(e), ok
}
func (l stLocal) contains(t *testing.T, op storageOpVec, now float64) bool {
	return l.s.Contains(l.id(t, op), now)
}
func (l stLocal) len(now float64) int { return l.s.Len(now) }
func (l stLocal) items(now float64) []stEntry {
	var out []stEntry
	for _, e := range l.s.Items(now) {
		out = append(out, l.conv(e))
	}
	return out
}
func (l stLocal) top(now float64) (stEntry, bool) {
	e, ok := l.s.Top(now)
	return l.conv(e), ok
}
func (l stLocal) del(t *testing.T, op storageOpVec) { l.s.Delete(l.id(t, op)) }
func (l stLocal) dictionary() *DictionaryValue      { return nil }

type stTimed struct{ s *TimedStorage[string, []byte] }

func (m stTimed) store(t *testing.T, op storageOpVec, now float64) (bool, error) {
	return m.s.Store(string(stEncode(t, *op.Key)), op.Value, op.Expiration.Value(), now)
}
func (m stTimed) storeSubkey(t *testing.T, _ storageOpVec, _ float64) (bool, error) {
	t.Fatal("store_subkey on a TimedStorage")
	return false, nil
}
func (m stTimed) conv(e Entry[string, []byte]) stEntry {
	return stEntry{key: []byte(e.Key), regular: e.Value, exp: e.Expiration, wire: e.Value}
}
func (m stTimed) get(t *testing.T, op storageOpVec, now float64) (stEntry, bool) {
	e, ok := m.s.Get(string(stEncode(t, *op.Key)), now)
	return m.conv(e), ok
}
func (m stTimed) contains(t *testing.T, op storageOpVec, now float64) bool {
	return m.s.Contains(string(stEncode(t, *op.Key)), now)
}
func (m stTimed) len(now float64) int { return m.s.Len(now) }
func (m stTimed) items(now float64) []stEntry {
	var out []stEntry
	for _, e := range m.s.Items(now) {
		out = append(out, m.conv(e))
	}
	return out
}
func (m stTimed) top(now float64) (stEntry, bool) {
	e, ok := m.s.Top(now)
	return m.conv(e), ok
}
func (m stTimed) del(t *testing.T, op storageOpVec) { m.s.Delete(string(stEncode(t, *op.Key))) }
func (m stTimed) dictionary() *DictionaryValue      { return nil }

type stDict struct{ d *DictionaryValue }

func (x stDict) store(t *testing.T, op storageOpVec, now float64) (bool, error) {
	return x.d.Store(stEncode(t, *op.Key), op.Value, op.Expiration.Value(), now)
}
func (x stDict) storeSubkey(t *testing.T, _ storageOpVec, _ float64) (bool, error) {
	t.Fatal("store_subkey on a DictionaryDHTValue")
	return false, nil
}
func (x stDict) conv(e DictionaryEntry) stEntry {
	return stEntry{key: e.Subkey, regular: e.Value, exp: e.Expiration, wire: e.Value}
}
func (x stDict) get(t *testing.T, op storageOpVec, now float64) (stEntry, bool) {
	e, ok := x.d.Get(stEncode(t, *op.Key), now)
	return x.conv(e), ok
}
func (x stDict) contains(t *testing.T, op storageOpVec, now float64) bool {
	_, ok := x.d.Get(stEncode(t, *op.Key), now)
	return ok
}
func (x stDict) len(now float64) int { return x.d.Len(now) }
func (x stDict) items(now float64) []stEntry {
	var out []stEntry
	for _, e := range x.d.Items(now) {
		out = append(out, x.conv(e))
	}
	return out
}
func (x stDict) top(now float64) (stEntry, bool) {
	e, ok := x.d.entries.Top(now)
	return x.conv(dictionaryEntry(e)), ok
}
func (x stDict) del(t *testing.T, op storageOpVec) { x.d.Delete(stEncode(t, *op.Key)) }
func (x stDict) dictionary() *DictionaryValue      { return x.d }

func TestStorageVectors(t *testing.T) {
	var file struct {
		Meta struct {
			InitialNow vectors.Float `json:"initial_now"`
		} `json:"meta"`
		Scenarios []storageScenarioVec `json:"scenarios"`
	}
	vectors.Load(t, "storage.json", &file)
	if len(file.Scenarios) == 0 {
		t.Fatal("no storage scenarios")
	}
	for _, sc := range file.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			ops := sc.Ops
			if sc.PortShould == "fix" {
				// These cases record hivemind bugs the port fixes (README quirk table): a refused
				// store changes nothing (Q1), NaN and infinite expirations are refused, stores never
				// fail on subkeys of different types, and subkeys are distinct by their msgpack bytes
				// (Q7). The expected outcome is hivemind's with those fixes applied.
				if sc.ExpectedFixed == nil {
					t.Fatalf("quirk %q marked fix without expected_fixed", sc.Quirk)
				}
				ops = sc.ExpectedFixed.Ops
			}
			var subject stSubject
			maxSize := 0
			if sc.Storage.MaxSize != nil {
				maxSize = *sc.Storage.MaxSize
			}
			switch sc.Storage.Class {
			case "DHTLocalStorage":
				cfg := LocalStorageConfig{MaxEntries: -1, MaxBytes: -1}
				if maxSize > 0 {
					cfg.MaxEntries = maxSize
				}
				subject = stLocal{s: NewLocalStorage(cfg)}
			case "TimedStorage":
				subject = stTimed{s: NewTimedStorage(TimedStorageConfig[string, []byte]{MaxEntries: maxSize, Compare: strings.Compare})}
			case "DictionaryDHTValue":
				subject = stDict{d: NewDictionaryValue(maxSize)}
			default:
				t.Fatalf("unknown class %q", sc.Storage.Class)
			}
			now := file.Meta.InitialNow.Value()
			for i, op := range ops {
				runStorageOp(t, subject, fmt.Sprintf("op %d (%s)", i, op.Op), op, &now)
			}
		})
	}
}

func runStorageOp(t *testing.T, s stSubject, where string, op storageOpVec, now *float64) {
	t.Helper()
	wantBool := func() bool {
		var b bool
		if err := json.Unmarshal(op.Result, &b); err != nil {
			t.Fatalf("%s: result: %v", where, err)
		}
		return b
	}
	switch op.Op {
	case "set_now":
		*now = op.Now.Value()
	case "store", "store_subkey":
		if op.Error != nil {
			t.Fatalf("%s: the vector expects an error (%s); fixed ports never fail here", where, op.Error.Kind)
		}
		var got bool
		var err error
		if op.Op == "store" {
			got, err = s.store(t, op, *now)
		} else {
			got, err = s.storeSubkey(t, op, *now)
		}
		if want := wantBool(); got != want {
			t.Errorf("%s: stored = %v (err %v), want %v", where, got, err, want)
		}
		exp := op.Expiration.Value()
		if math.IsNaN(exp) || math.IsInf(exp, 0) {
			// Fixed quirks nan_expiration / infinite_expiration: refused, and the caller learns why.
			if !errors.Is(err, ErrInvalidExpiration) {
				t.Errorf("%s: err = %v, want ErrInvalidExpiration", where, err)
			}
		} else if err != nil {
			t.Errorf("%s: unexpected error %v", where, err)
		}
	case "get":
		got, ok := s.get(t, op, *now)
		stCheckEntry(t, where, got, ok, op.Result, *now)
	case "top":
		got, ok := s.top(*now)
		stCheckEntry(t, where, got, ok, op.Result, *now)
	case "contains":
		if got, want := s.contains(t, op, *now), wantBool(); got != want {
			t.Errorf("%s: contains = %v, want %v", where, got, want)
		}
	case "len":
		var want int
		if err := json.Unmarshal(op.Result, &want); err != nil {
			t.Fatalf("%s: result: %v", where, err)
		}
		if got := s.len(*now); got != want {
			t.Errorf("%s: len = %d, want %d", where, got, want)
		}
	case "items":
		var want []json.RawMessage
		if err := json.Unmarshal(op.Result, &want); err != nil {
			t.Fatalf("%s: result: %v", where, err)
		}
		got := s.items(*now)
		if len(got) != len(want) {
			t.Fatalf("%s: %d items, want %d", where, len(got), len(want))
		}
		for i := range want {
			stCheckEntry(t, fmt.Sprintf("%s item %d", where, i), got[i], true, want[i], *now)
		}
	case "delete":
		s.del(t, op)
	case "latest_expiration_time":
		var want vectors.Float
		if err := json.Unmarshal(op.Result, &want); err != nil {
			t.Fatalf("%s: result: %v", where, err)
		}
		if got := s.dictionary().LatestExpiration(); math.Float64bits(got) != want.Bits() {
			t.Errorf("%s: latest = %v, want %s", where, got, want.Repr)
		}
	case "pack":
		if got := s.dictionary().Pack(*now); !bytes.Equal(got, op.ResultHex) {
			t.Errorf("%s: pack = %x, want %x", where, got, []byte(op.ResultHex))
		}
	default:
		t.Fatalf("%s: unknown op", where)
	}
}

// stCheckEntry compares a record with a vector entry (JSON null: no record).
func stCheckEntry(t *testing.T, where string, got stEntry, ok bool, raw json.RawMessage, now float64) {
	t.Helper()
	var want *storageEntryVec
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("%s: entry: %v", where, err)
	}
	if want == nil {
		if ok {
			t.Errorf("%s: got a record (%x), want none", where, got.key)
		}
		return
	}
	if !ok {
		t.Fatalf("%s: no record, want one", where)
	}
	switch {
	case want.KeyID != nil:
		if !bytes.Equal(got.key, want.KeyID) {
			t.Errorf("%s: key %x, want %x", where, got.key, []byte(want.KeyID))
		}
	case want.Key != nil:
		if k := stEncode(t, *want.Key); !bytes.Equal(got.key, k) {
			t.Errorf("%s: key %x, want %x", where, got.key, k)
		}
	}
	if math.Float64bits(got.exp) != want.Expiration.Bits() {
		t.Errorf("%s: expiration %v, want %s", where, got.exp, want.Expiration.Repr)
	}
	if !bytes.Equal(got.wire, want.Wire) {
		t.Errorf("%s: wire value %x, want %x", where, got.wire, []byte(want.Wire))
	}
	switch want.Value.Kind {
	case vectors.KindBytes:
		if got.dict != nil || !bytes.Equal(got.regular, want.Value.Bytes) {
			t.Errorf("%s: value %x (dictionary %v), want bytes %x", where, got.regular, got.dict != nil, want.Value.Bytes)
		}
	case vectors.KindDictionary:
		stCheckDictionary(t, where, got.dict, want.Value.Dict, now)
	default:
		t.Fatalf("%s: value kind %q", where, want.Value.Kind)
	}
}

// ---- vectors/msgpack.json dictionary_dht_value ----

type dictStoreVec struct {
	Subkey     vectors.Value    `json:"subkey"`
	Value      vectors.HexBytes `json:"value_hex"`
	Expiration vectors.Float    `json:"expiration"`
	Result     *bool            `json:"result"`
	Error      *vectors.Error   `json:"error"`
}

type dictCaseVec struct {
	Name          string           `json:"name"`
	Note          string           `json:"note"`
	Quirk         string           `json:"quirk"`
	PortShould    string           `json:"port_should"`
	Now           vectors.Float    `json:"now"`
	Stores        []dictStoreVec   `json:"stores"`
	Packed        vectors.HexBytes `json:"packed_hex"`
	ExtPayload    vectors.HexBytes `json:"ext_payload_hex"`
	Decoded       vectors.Value    `json:"decoded"`
	RepackedEqual bool             `json:"repacked_equal"`
	ExpectedFixed *struct {
		Stores     []dictStoreVec           `json:"stores"`
		Items      []vectors.DictionaryItem `json:"items"`
		Packed     vectors.HexBytes         `json:"packed_hex"`
		ExtPayload vectors.HexBytes         `json:"ext_payload_hex"`
	} `json:"expected_fixed"`
}

// dictStoreNow is the clock of the stores of msgpack.json's dictionary cases, which the file does not
// record: they ran before `now`, and this instant (storage.json's initial_now) precedes every
// expiration they use.
const dictStoreNow = 1700000000.0

func loadDictionaryCases(t testing.TB) []dictCaseVec {
	var file struct {
		Cases []dictCaseVec `json:"dictionary_dht_value"`
	}
	vectors.Load(t, "msgpack.json", &file)
	if len(file.Cases) == 0 {
		t.Fatal("no dictionary_dht_value cases")
	}
	return file.Cases
}

func TestDictionaryValueVectors(t *testing.T) {
	for _, c := range loadDictionaryCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			stores, packed, payload := c.Stores, c.Packed, c.ExtPayload
			var fixedItems []vectors.DictionaryItem
			if c.PortShould == "fix" {
				// Quirk Q7 (python_dict_key_equality): hivemind merges subkeys that compare equal in
				// Python (2.0 == 2); we key subkeys by their msgpack bytes, so they stay distinct.
				if c.ExpectedFixed == nil {
					t.Fatalf("quirk %q marked fix without expected_fixed", c.Quirk)
				}
				stores, packed, payload = c.ExpectedFixed.Stores, c.ExpectedFixed.Packed, c.ExpectedFixed.ExtPayload
				fixedItems = c.ExpectedFixed.Items
			}
			now := c.Now.Value()
			d := NewDictionaryValue(0)
			for i, s := range stores {
				if s.Error != nil || s.Result == nil {
					t.Fatalf("store %d: vector error %+v; fixed ports never fail here", i, s.Error)
				}
				got, err := d.Store(stEncode(t, s.Subkey), s.Value, s.Expiration.Value(), dictStoreNow)
				if err != nil || got != *s.Result {
					t.Errorf("store %d = %v, %v; want %v", i, got, err, *s.Result)
				}
			}
			if fixedItems != nil {
				stCheckDictItems(t, "fixed items", d.Items(now), fixedItems)
			}
			got := d.Pack(now)
			if !bytes.Equal(got, packed) {
				t.Errorf("Pack = %x\nwant   %x", got, []byte(packed))
			}
			v, err := msgpack.Unmarshal(got)
			if ext, ok := v.(msgpack.Ext); err != nil || !ok || ext.Code != msgpack.ExtDictionary || !bytes.Equal(ext.Data, payload) {
				t.Errorf("packed payload = %#v (%v), want ext 0x50 %x", v, err, []byte(payload))
			}
			// Decoding: hivemind's own bytes, recorded before any fix, decode to its view.
			dec, err := UnpackDictionary(c.Packed)
			if err != nil {
				t.Fatalf("UnpackDictionary: %v", err)
			}
			if c.Decoded.Kind != vectors.KindDictionary {
				t.Fatalf("decoded is a %q", c.Decoded.Kind)
			}
			stCheckDictionary(t, "decoded", dec, c.Decoded.Dict, now)
			if repacked := dec.Pack(now); bytes.Equal(repacked, c.Packed) != c.RepackedEqual {
				t.Errorf("repacked equal = %v, want %v (%x)", !c.RepackedEqual, c.RepackedEqual, repacked)
			}
		})
	}
}
