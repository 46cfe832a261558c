package vectors

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
)

// Blob is a byte string that a vector file gives either exactly (`<name>_hex`) or, when it is longer
// than 4096 bytes, in the large form (`<name>_len`, `<name>_sha256_hex`, `<name>_head_hex`,
// `<name>_tail_hex`). Load folds a large form into the `<name>_hex` member, so a field declared as
// Blob under `json:"<name>_hex"` reads either form. JSON null (or an absent field) is an absent Blob.
type Blob struct {
	exact   []byte // the bytes, in the exact form
	present bool
	large   *largeForm
}

type largeForm struct {
	Len    int      `json:"len"`
	SHA256 HexBytes `json:"sha256_hex"`
	Head   HexBytes `json:"head_hex"`
	Tail   HexBytes `json:"tail_hex"`
}

// UnmarshalJSON implements json.Unmarshaler.
func (b *Blob) UnmarshalJSON(data []byte) error {
	*b = Blob{}
	switch {
	case string(data) == "null":
		return nil
	case len(data) > 0 && data[0] == '{':
		var l largeForm
		if err := json.Unmarshal(data, &l); err != nil {
			return fmt.Errorf("large byte string: %w", err)
		}
		if len(l.SHA256) != sha256.Size || l.Len < len(l.Head) || l.Len < len(l.Tail) {
			return fmt.Errorf("large byte string: %d bytes, sha256 of %d bytes, head %d, tail %d", l.Len, len(l.SHA256), len(l.Head), len(l.Tail))
		}
		b.large, b.present = &l, true
		return nil
	}
	var h HexBytes
	if err := json.Unmarshal(data, &h); err != nil {
		return err
	}
	b.exact, b.present = h, true
	return nil
}

// Present reports whether the field was in the file (in either form).
func (b Blob) Present() bool { return b.present }

// Large reports whether the file gives only the large form (length, digest, head and tail).
func (b Blob) Large() bool { return b.large != nil }

// Exact returns the bytes of the exact form (nil for the large form or an absent field).
func (b Blob) Exact() []byte { return b.exact }

// Len returns the length of the byte string in either form.
func (b Blob) Len() int {
	if b.large != nil {
		return b.large.Len
	}
	return len(b.exact)
}

// Head returns the first bytes the file gives: all of them in the exact form, the recorded head in the
// large form.
func (b Blob) Head() []byte {
	if b.large != nil {
		return b.large.Head
	}
	return b.exact
}

// Tail returns the last bytes the file gives: all of them in the exact form, the recorded tail in the
// large form.
func (b Blob) Tail() []byte {
	if b.large != nil {
		return b.large.Tail
	}
	return b.exact
}

// Match returns nil if got is the recorded byte string, compared byte for byte in the exact form and
// by length, SHA-256, head and tail in the large form. Empty and absent compare equal.
func (b Blob) Match(got []byte) error {
	if b.large == nil {
		if !bytes.Equal(b.exact, got) {
			return fmt.Errorf("bytes\n got %x\nwant %x", got, b.exact)
		}
		return nil
	}
	l := b.large
	sum := sha256.Sum256(got)
	switch {
	case len(got) != l.Len:
		return fmt.Errorf("%d bytes, want %d", len(got), l.Len)
	case !bytes.HasPrefix(got, l.Head):
		return fmt.Errorf("head %x, want %x", got[:len(l.Head)], []byte(l.Head))
	case !bytes.HasSuffix(got, l.Tail):
		return fmt.Errorf("tail %x, want %x", got[len(got)-len(l.Tail):], []byte(l.Tail))
	case !bytes.Equal(sum[:], l.SHA256):
		return fmt.Errorf("sha256 %x, want %x (length, head and tail match)", sum[:], []byte(l.SHA256))
	}
	return nil
}

// foldLargeForms rewrites the decoded JSON tree so that every large form (an object holding
// `<name>_sha256_hex` but no `<name>_hex`) also has a `<name>_hex` member holding
// {len, sha256_hex, head_hex, tail_hex}, which Blob decodes. Nothing is removed.
func foldLargeForms(node any) {
	switch n := node.(type) {
	case map[string]any:
		var large []string
		for k := range n {
			if name, ok := strings.CutSuffix(k, "_sha256_hex"); ok {
				if _, exact := n[name+"_hex"]; !exact {
					large = append(large, name)
				}
			}
		}
		for _, name := range large {
			n[name+"_hex"] = map[string]any{
				"len": n[name+"_len"], "sha256_hex": n[name+"_sha256_hex"], "head_hex": n[name+"_head_hex"], "tail_hex": n[name+"_tail_hex"],
			}
		}
		for _, v := range n {
			foldLargeForms(v)
		}
	case []any:
		for _, v := range n {
			foldLargeForms(v)
		}
	}
}
