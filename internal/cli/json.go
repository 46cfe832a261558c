package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
)

// Object is a JSON object that keeps its keys in the order they were added (encoding/json sorts a
// map's keys). The zero value is an empty object. A key added twice is written twice.
type Object struct {
	keys   []string
	values []any
}

// Add appends a key and its value (anything encoding/json marshals) and returns o.
func (o *Object) Add(key string, value any) *Object {
	o.keys, o.values = append(o.keys, key), append(o.values, value)
	return o
}

// Len returns the number of keys.
func (o Object) Len() int { return len(o.keys) }

// All yields the keys and values in order.
func (o Object) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for i, k := range o.keys {
			if !yield(k, o.values[i]) {
				return
			}
		}
	}
}

// Get returns the value of the first occurrence of key.
func (o Object) Get(key string) (any, bool) {
	for i, k := range o.keys {
		if k == key {
			return o.values[i], true
		}
	}
	return nil, false
}

// MarshalJSON implements json.Marshaler.
func (o Object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// PrintJSON writes v as indented JSON followed by a newline: the output of every command that
// prints JSON.
func PrintJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
