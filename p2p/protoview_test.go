package p2p

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/hivemind-go/hivemind/test/vectors"

	// The message types the vectors name (hivemind's dht.proto and p2pd.proto) are looked up by name.
	_ "github.com/hivemind-go/hivemind/proto/dhtpb"
	_ "github.com/hivemind-go/hivemind/proto/p2pdpb"
)

// Helpers that read the vectors' protobuf views and large byte strings from their fields alone
// (vectors/README.md, "protobuf message" and "large bytes"), shared by every p2p vector test.

// protoView compares a protobuf view of the vectors with a decoded message.
type protoView struct {
	// derived lists the keys that stand beside the protobuf view (the envelope's framing and derived
	// fields); any other key that names no field of the message is a difference.
	derived map[string]bool
	// standIn: large byte strings are compared by length, head and tail only, because the message was
	// rebuilt around stand-in bytes (see standIn).
	standIn bool
}

// diff returns the differences between the view raw (a JSON object) and m, each prefixed by path:
// every field of m's type must be in the view (bytes as <field>_hex, or its large form), with
// <field>_present for every field with presence and <oneof>_which for every oneof; the values must be
// equal (floats by bits, enums by number and name, messages recursively, lists item by item).
func (pv protoView) diff(path string, raw json.RawMessage, m protoreflect.Message) []string {
	var view map[string]json.RawMessage
	if err := json.Unmarshal(raw, &view); err != nil {
		return []string{fmt.Sprintf("%s: not a protobuf view: %v", path, err)}
	}
	var diffs []string
	bad := func(format string, args ...any) {
		diffs = append(diffs, path+": "+fmt.Sprintf(format, args...))
	}
	seen := map[string]bool{}
	get := func(key string) (json.RawMessage, bool) {
		seen[key] = true
		v, ok := view[key]
		return v, ok
	}
	d := m.Descriptor()
	for i := range d.Oneofs().Len() {
		o := d.Oneofs().Get(i)
		if o.IsSynthetic() {
			continue
		}
		raw, ok := get(string(o.Name()) + "_which")
		var want *string
		if !ok || json.Unmarshal(raw, &want) != nil {
			bad("no %s_which (a field name or null)", o.Name())
			continue
		}
		got := m.WhichOneof(o)
		if (want == nil) != (got == nil) || (got != nil && string(got.Name()) != *want) {
			bad("%s_which: got %v, want %v", o.Name(), fieldName(got), deref(want))
		}
	}
	for i := range d.Fields().Len() {
		fd := d.Fields().Get(i)
		name := string(fd.Name())
		if fd.HasPresence() {
			raw, ok := get(name + "_present")
			var want bool
			if !ok || json.Unmarshal(raw, &want) != nil {
				bad("no boolean %s_present", name)
			} else if m.Has(fd) != want {
				bad("%s present: got %v, want %v", name, m.Has(fd), want)
			}
		}
		key := name
		if fd.Kind() == protoreflect.BytesKind {
			key = name + "_hex"
			for _, large := range []string{"_len", "_sha256_hex", "_head_hex", "_tail_hex"} {
				seen[name+large] = true
			}
		}
		raw, ok := get(key)
		if !ok {
			bad("no %s", key)
			continue
		}
		fpath := path + "." + name
		switch {
		case fd.IsMap():
			bad("map field %s has no protobuf view in the vectors", name)
		case fd.IsList():
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				bad("%s is not a list: %v", key, err)
				continue
			}
			list := m.Get(fd).List()
			if len(items) != list.Len() {
				bad("%s: %d items, want %d", name, list.Len(), len(items))
				continue
			}
			for j, item := range items {
				diffs = append(diffs, pv.value(fmt.Sprintf("%s[%d]", fpath, j), fd, item, list.Get(j))...)
			}
		default:
			diffs = append(diffs, pv.value(fpath, fd, raw, m.Get(fd))...)
		}
	}
	var unknown []string
	for k := range view {
		if !seen[k] && !pv.derived[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		bad("keys that name no field of %s: %s", d.FullName(), strings.Join(unknown, ", "))
	}
	return diffs
}

// value compares one value of field fd (a list item or a singular field) with its view raw.
func (pv protoView) value(path string, fd protoreflect.FieldDescriptor, raw json.RawMessage, v protoreflect.Value) []string {
	fail := func(format string, args ...any) []string {
		return []string{path + ": " + fmt.Sprintf(format, args...)}
	}
	var err error
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if string(raw) == "null" {
			return nil // an absent message: its presence flag says so
		}
		return pv.diff(path, raw, v.Message())
	case protoreflect.BytesKind:
		var want vectors.Blob
		if err = json.Unmarshal(raw, &want); err == nil {
			err = matchBlob(want, v.Bytes(), pv.standIn)
		}
	case protoreflect.StringKind:
		var want string
		if err = json.Unmarshal(raw, &want); err == nil && want != v.String() {
			err = fmt.Errorf("got %q, want %q", v.String(), want)
		}
	case protoreflect.BoolKind:
		var want bool
		if err = json.Unmarshal(raw, &want); err == nil && want != v.Bool() {
			err = fmt.Errorf("got %v, want %v", v.Bool(), want)
		}
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		var want vectors.Float
		if err = json.Unmarshal(raw, &want); err == nil && want.Bits() != math.Float64bits(v.Float()) {
			err = fmt.Errorf("got %v (bits %016x), want %s (bits %016x)", v.Float(), math.Float64bits(v.Float()), want.Repr, want.Bits())
		}
	case protoreflect.EnumKind:
		var want struct {
			Enum   *string `json:"enum"`
			Number *int32  `json:"number"`
		}
		if err = json.Unmarshal(raw, &want); err == nil {
			var name *string
			if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
				s := string(ev.Name())
				name = &s
			}
			if want.Number == nil || protoreflect.EnumNumber(*want.Number) != v.Enum() || deref(want.Enum) != deref(name) {
				err = fmt.Errorf("got %v (%d), want %s", deref(name), v.Enum(), raw)
			}
		}
	default: // integers: a JSON number, or a decimal string for large ones
		var want json.Number
		if err = json.Unmarshal(bytes.Trim(raw, `"`), &want); err == nil && want.String() != fmt.Sprint(v.Interface()) {
			err = fmt.Errorf("got %v, want %s", v.Interface(), want)
		}
	}
	if err != nil {
		return fail("%v", err)
	}
	return nil
}

func fieldName(fd protoreflect.FieldDescriptor) string {
	if fd == nil {
		return "none"
	}
	return string(fd.Name())
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// missingRequired lists the proto2 required fields absent from m, at every depth, as dotted paths
// ("callUnary.data"), the form of the vectors' missing_required_fields.
func missingRequired(m protoreflect.Message) []string {
	out := []string{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Cardinality() == protoreflect.Required && !m.Has(fd) {
			out = append(out, string(fd.Name()))
		}
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && m.Has(fd) {
			for _, sub := range missingRequired(m.Get(fd).Message()) {
				out = append(out, string(fd.Name())+"."+sub)
			}
		}
	}
	return out
}

// messageType finds a hivemind message type by the short name the vectors use (the proto package is
// not on the wire).
func messageType(t testing.TB, name string) protoreflect.MessageType {
	t.Helper()
	for _, pkg := range []string{"hivemind.dht", "hivemind.p2pd"} {
		if mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(pkg + "." + name)); err == nil {
			return mt
		}
	}
	t.Fatalf("the vectors name a message type %q that neither dht.proto nor p2pd.proto defines", name)
	return nil
}

// decodedView is a message as the vectors show it after parsing: {type, fields} or {type, error}
// (data_decoded, response_decoded), or with its frame marker and size (stream_framing, stream_decode).
type decodedView struct {
	Marker        string          `json:"marker"`
	Type          string          `json:"type"`
	Fields        json.RawMessage `json:"fields"`
	Error         *vectors.Error  `json:"error"`
	SerializedLen *int            `json:"serialized_len"`
}

// decodeKinds maps the error kinds of a message that does not parse.
var decodeKinds = vectors.Kinds{"protobuf_decode_error": ErrDecode}

// checkDecoded parses payload as the view's type, as our handlers and callers decode a message, and
// compares it with the view: the recorded decode error kind, or the fields (when the view gives them:
// large messages have none) and the size. It returns the parsed message (nil after an error).
func checkDecoded(t *testing.T, v decodedView, payload []byte) proto.Message {
	t.Helper()
	m := messageType(t, v.Type).New().Interface()
	err := unmarshalInto(payload, m)
	if v.Error != nil {
		decodeKinds.Require(t, *v.Error, err)
		return nil
	}
	if err != nil {
		t.Fatalf("%s does not decode: %v", v.Type, err)
	}
	if v.SerializedLen != nil && *v.SerializedLen != len(payload) {
		t.Errorf("%s of %d bytes, want %d", v.Type, len(payload), *v.SerializedLen)
	}
	if len(v.Fields) > 0 && string(v.Fields) != "null" {
		for _, d := range (protoView{}).diff(v.Type, v.Fields, m.ProtoReflect()) {
			t.Error(d)
		}
	}
	return m
}

// matchBlob compares got with a recorded byte string. When got was rebuilt around stand-in bytes
// (standIn) and the recording gives only the large form, only the length, head and tail are compared;
// otherwise every byte (Blob.Match: the digest too, for the large form).
func matchBlob(want vectors.Blob, got []byte, standIn bool) error {
	if !standIn || !want.Large() {
		return want.Match(got)
	}
	switch {
	case len(got) != want.Len():
		return fmt.Errorf("%d bytes, want %d", len(got), want.Len())
	case !bytes.HasPrefix(got, want.Head()):
		return fmt.Errorf("head differs from the recorded %x", want.Head())
	case !bytes.HasSuffix(got, want.Tail()):
		return fmt.Errorf("tail differs from the recorded %x", want.Tail())
	}
	return nil
}

// standIn returns bytes for a recorded byte string: the bytes themselves in the exact form; in the large
// form, the recorded head and tail around a filled middle (see fillBetween) at the recorded length.
// exact reports whether that is the recorded byte string (its SHA-256 matches), i.e. the real bytes.
func standIn(b vectors.Blob) (data []byte, exact bool) {
	if !b.Large() {
		return b.Exact(), true
	}
	out := fillBetween(b.Head(), b.Tail(), b.Len())
	return out, b.Match(out) == nil
}

// fillBetween returns n bytes that start with head and end with tail; the middle repeats the byte that
// ends the head when the tail starts with it (a run of one byte, as in a long repeated value), and is
// zero otherwise.
func fillBetween(head, tail []byte, n int) []byte {
	out := make([]byte, n)
	if len(head) > 0 && len(tail) > 0 && head[len(head)-1] == tail[0] {
		for i := range out {
			out[i] = tail[0]
		}
	}
	copy(out, head)
	copy(out[n-len(tail):], tail)
	return out
}
