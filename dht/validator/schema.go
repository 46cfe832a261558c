package validator

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// SchemaPriority is Schema's priority: it validates after RSASignature has stripped signatures.
const SchemaPriority = 0

// OwnerMarkerPattern is the regex of hivemind's BytesWithPublicKey (used with re.match): the bytes
// contain an owner marker "[owner:…]" on their first line.
const OwnerMarkerPattern = `.*\[owner:(.+?)\].*`

// maxSchemaDepth bounds the nesting of a schema's types.
const maxSchemaDepth = 32

// Schema is hivemind's SchemaValidator. Validate:
//
//  1. A record whose key is no field of any model is valid iff AllowExtraKeys.
//  2. The value (and the subkey, for a dictionary entry) must decode as msgpack. A dictionary entry
//     is checked as the one-entry dictionary {subkey: value} for its field; a regular record as the
//     value itself, except that a msgpack map stored as a regular value is refused (hivemind: an
//     "improperly serialized dictionary").
//  3. The record is valid iff one of the models that have that field accepts it: pydantic parses it
//     and the parsed value equals the input by Python's == (so a conversion that changes the value,
//     str to bytes or 3.5 to 3, is a rejection, while 3 == 3.0 lets a lax int field take 3.0 — hence
//     hivemind's advice to use strict number types).
//
// Like hivemind, a NaN inside a dictionary or model passes a float field without bounds (the parsed
// dictionary holds the same NaN object, vectors quirk schema_nan_equals_itself), a NaN regular value
// does not (NaN != NaN), and -0.0 satisfies ge=0.0. Differences from hivemind: a record whose subkey
// is unhashable in Python (a list or a map), where hivemind raises, is invalid; regexes use Go's RE2
// syntax (see Type).
//
// A Schema is safe for concurrent use; MergeWith may run concurrently with Validate.
type Schema struct {
	mu    sync.RWMutex
	state *schemaState // replaced, never modified, by MergeWith
}

type schemaState struct {
	config SchemaConfig
	models []compiledModel
	// fieldOf maps a key ID (20 bytes, as a string) to a field name; on merges a later model's key
	// wins, as in hivemind's dict.update.
	fieldOf map[string]string
}

type compiledModel struct {
	name   string
	fields map[string]*compiledType
}

// compiledType is a Type checked once, with its regex compiled.
type compiledType struct {
	kind                     Kind
	strict                   bool
	ge, gt, le, lt, multiple *Number
	regexes                  []*regexp.Regexp
	key, value, of           *compiledType
	fields                   map[string]*compiledType
	extra                    Extra
}

// NewSchema builds a Schema from its description. Errors wrap ErrInvalidSchema. The validator keeps
// its own copy of cfg.
func NewSchema(cfg SchemaConfig) (*Schema, error) {
	st := &schemaState{
		config:  cloneConfig(cfg),
		fieldOf: map[string]string{},
	}
	for _, m := range cfg.Models {
		cm, err := compileModel(m)
		if err != nil {
			return nil, err
		}
		st.models = append(st.models, cm)
		for _, f := range m.Fields {
			key, err := dht.KeyOf(m.RawKey(f.Name))
			if err != nil {
				return nil, fmt.Errorf("%w: model %s field %q: %w", ErrInvalidSchema, m.Name, f.Name, err)
			}
			st.fieldOf[string(key.ID().Bytes())] = f.Name
		}
	}
	return &Schema{state: st}, nil
}

func compileModel(m Model) (compiledModel, error) {
	fields, err := compileFields(m.Fields, 1, "model "+m.Name)
	if err != nil {
		return compiledModel{}, err
	}
	if err := checkExtra(m.Extra, "model "+m.Name); err != nil {
		return compiledModel{}, err
	}
	return compiledModel{name: m.Name, fields: fields}, nil
}

func compileFields(fields []Field, depth int, where string) (map[string]*compiledType, error) {
	out := make(map[string]*compiledType, len(fields))
	for _, f := range fields {
		if f.Name == "" {
			return nil, fmt.Errorf("%w: %s: field without a name", ErrInvalidSchema, where)
		}
		if _, dup := out[f.Name]; dup {
			return nil, fmt.Errorf("%w: %s: field %q twice", ErrInvalidSchema, where, f.Name)
		}
		ct, err := compileType(f.Type, depth, where+"."+f.Name)
		if err != nil {
			return nil, err
		}
		out[f.Name] = ct
	}
	return out, nil
}

func checkExtra(e Extra, where string) error {
	switch e {
	case "", ExtraForbid, ExtraIgnore, ExtraAllow:
		return nil
	}
	return fmt.Errorf("%w: %s: extra policy %q", ErrInvalidSchema, where, e)
}

func compileType(t Type, depth int, where string) (*compiledType, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidSchema, where, fmt.Sprintf(format, args...))
	}
	if depth > maxSchemaDepth {
		return nil, bad("types nested deeper than %d", maxSchemaDepth)
	}
	ct := &compiledType{kind: t.Kind, strict: t.Strict, ge: t.Ge, gt: t.Gt, le: t.Le, lt: t.Lt, multiple: t.MultipleOf}
	numeric := t.Kind == KindInt || t.Kind == KindFloat
	stringy := t.Kind == KindBytes || t.Kind == KindStr
	switch {
	case !numeric && (t.Ge != nil || t.Gt != nil || t.Le != nil || t.Lt != nil || t.MultipleOf != nil):
		return nil, bad("bounds on a %q", t.Kind)
	case t.Gt != nil && t.Ge != nil, t.Lt != nil && t.Le != nil:
		return nil, bad("gt with ge, or lt with le (pydantic refuses both)")
	case t.MultipleOf != nil && t.MultipleOf.IsFloat && t.MultipleOf.Float == 0,
		t.MultipleOf != nil && !t.MultipleOf.IsFloat && t.MultipleOf.Int == 0:
		return nil, bad("multiple_of 0")
	case !stringy && (t.Regex != "" || t.RegexMatch != ""):
		return nil, bad("regex on a %q", t.Kind)
	case t.RegexMatch != "" && t.RegexMatch != RegexPythonMatch:
		return nil, bad("regex_match %q (only %q is supported)", t.RegexMatch, RegexPythonMatch)
	case t.OwnerMarkerRequired && t.Kind != KindBytes:
		return nil, bad("owner_marker_required on a %q", t.Kind)
	case t.Kind != KindMap && (t.Key != nil || t.Value != nil),
		t.Kind != KindOptional && t.Of != nil,
		t.Kind != KindModel && (t.Model != "" || t.Extra != "" || len(t.Fields) != 0):
		return nil, bad("element types or fields on a %q", t.Kind)
	}
	patterns := []string{}
	if t.Regex != "" {
		patterns = append(patterns, t.Regex)
	}
	if t.OwnerMarkerRequired && t.Regex != OwnerMarkerPattern {
		patterns = append(patterns, OwnerMarkerPattern)
	}
	for _, p := range patterns {
		if t.Kind == KindBytes {
			p = latin1(p) // a bytes pattern: each byte of it is one character
		}
		re, err := regexp.Compile(`^(?:` + p + `)`)
		if err != nil {
			return nil, bad("regex %q: %v", p, err)
		}
		ct.regexes = append(ct.regexes, re)
	}
	var err error
	switch t.Kind {
	case KindInt, KindFloat, KindBool, KindBytes, KindStr:
	case KindMap:
		if t.Key == nil || t.Value == nil {
			return nil, bad("map without key or value type")
		}
		if ct.key, err = compileType(*t.Key, depth+1, where+"[key]"); err != nil {
			return nil, err
		}
		if ct.value, err = compileType(*t.Value, depth+1, where+"[value]"); err != nil {
			return nil, err
		}
	case KindOptional:
		if t.Of == nil {
			return nil, bad("optional without a type")
		}
		if ct.of, err = compileType(*t.Of, depth+1, where); err != nil {
			return nil, err
		}
	case KindModel:
		if err := checkExtra(t.Extra, where); err != nil {
			return nil, err
		}
		ct.extra = t.Extra
		if ct.fields, err = compileFields(t.Fields, depth+1, where); err != nil {
			return nil, err
		}
	default:
		return nil, bad("unknown type %q", t.Kind)
	}
	return ct, nil
}

// latin1 maps every byte of s to the character of the same number, so that a Go regexp sees a byte
// string the way a Python bytes pattern does (one character per byte).
func latin1(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 2)
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}

func (s *Schema) load() *schemaState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.state
}

// Config returns the description of the validator, merged models included (a copy).
func (s *Schema) Config() SchemaConfig { return cloneConfig(s.load().config) }

// Priority implements dht.RecordValidator.
func (s *Schema) Priority() int { return SchemaPriority }

// SignValue implements dht.RecordValidator: a schema signs nothing.
func (s *Schema) SignValue(r dht.Record) []byte { return r.Value }

// StripValue implements dht.RecordValidator: a schema strips nothing.
func (s *Schema) StripValue(r dht.Record) []byte { return r.Value }

// MergeWith implements dht.RecordValidator like hivemind: another Schema's models are appended to
// this one's (a record then passes if any model accepts it), its keys added, and AllowExtraKeys
// becomes the OR of both. other is not modified. Anything but a *Schema is refused.
func (s *Schema) MergeWith(other dht.RecordValidator) bool {
	o, ok := other.(*Schema)
	if !ok || o == nil {
		return false
	}
	theirs := o.load()
	s.mu.Lock()
	defer s.mu.Unlock()
	ours := s.state
	merged := &schemaState{
		config: SchemaConfig{
			AllowExtraKeys: ours.config.AllowExtraKeys || theirs.config.AllowExtraKeys,
			Models:         append(slices.Clone(ours.config.Models), cloneConfig(theirs.config).Models...),
		},
		models:  append(slices.Clone(ours.models), theirs.models...),
		fieldOf: maps.Clone(ours.fieldOf),
	}
	maps.Copy(merged.fieldOf, theirs.fieldOf)
	s.state = merged
	return true
}

// Validate implements dht.RecordValidator (rules in the type's documentation).
func (s *Schema) Validate(r dht.Record) (bool, string) {
	st := s.load()
	field, ok := st.fieldOf[string(r.Key)]
	if !ok {
		if st.config.AllowExtraKeys {
			return true, ""
		}
		return false, "key is not a field of any schema"
	}
	value, err := msgpack.Unmarshal(r.Value)
	if err != nil {
		return false, "value: " + err.Error()
	}
	var candidate any
	if string(r.Subkey) != dht.TagRegular && string(r.Subkey) != dht.TagDictionary {
		subkey, err := msgpack.Unmarshal(r.Subkey)
		if err != nil {
			return false, "subkey: " + err.Error()
		}
		if !hashable(subkey) {
			return false, fmt.Sprintf("subkey of type %T cannot be a dictionary key", subkey)
		}
		candidate = singleEntry{key: subkey, value: value}
	} else {
		if _, isMap := value.(*msgpack.Map); isMap {
			return false, "a dictionary stored as a regular value (use subkeys)"
		}
		if f, isFloat := value.(float64); isFloat && math.IsNaN(f) {
			// hivemind compares the parsed value with the input using !=, and NaN != NaN (inside a
			// dictionary or model the same NaN object compares equal, so NaN passes there).
			return false, "a NaN regular value never equals itself"
		}
		candidate = value
	}
	var reasons []string
	for _, m := range st.models {
		t, ok := m.fields[field]
		if !ok {
			continue // hivemind: an "extra field" error for this model, not counted
		}
		err := t.check(candidate)
		if err == nil {
			return true, ""
		}
		reasons = append(reasons, fmt.Sprintf("%s.%s: %v", m.name, field, err))
	}
	if len(reasons) == 0 {
		return false, fmt.Sprintf("no schema defines field %q", field)
	}
	return false, strings.Join(reasons, "; ")
}

func cloneConfig(c SchemaConfig) SchemaConfig {
	out := SchemaConfig{AllowExtraKeys: c.AllowExtraKeys, Models: make([]Model, len(c.Models))}
	for i, m := range c.Models {
		m.Fields = cloneFields(m.Fields)
		out.Models[i] = m
	}
	return out
}

func cloneFields(fs []Field) []Field {
	if fs == nil {
		return nil
	}
	out := make([]Field, len(fs))
	for i, f := range fs {
		f.Type = cloneType(f.Type)
		out[i] = f
	}
	return out
}

func cloneType(t Type) Type {
	for _, n := range []**Number{&t.Ge, &t.Gt, &t.Le, &t.Lt, &t.MultipleOf} {
		if *n != nil {
			c := **n
			*n = &c
		}
	}
	for _, p := range []**Type{&t.Key, &t.Value, &t.Of} {
		if *p != nil {
			c := cloneType(**p)
			*p = &c
		}
	}
	t.Fields = cloneFields(t.Fields)
	return t
}
