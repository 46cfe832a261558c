// Package vectors locates and decodes the golden test vectors captured from real hivemind and p2pd
// (../shared/vectors beside the module root; see that folder's README for every file's layout).
//
// Every package's tests read the vectors through this one helper so that hex, floats, typed values
// and error outcomes are decoded the same way everywhere:
//
//   - fields ending in _hex decode with [HexBytes] (lowercase, even length; anything else fails loudly);
//   - floats decode with [Float] ({repr, bits}; bits are authoritative, compare with [Float.Bits]);
//   - typed Python values decode with [Value] (tagged by "t", recursively);
//   - failed calls decode with [Error] (compare Kind only).
//
// Location: the directory named by $HIVEMIND_VECTORS if set, otherwise ../shared/vectors relative to the
// folder holding go.mod, found by walking up from the test's working directory. When the folder is
// missing the test fails if $CI is set and is skipped with a loud message otherwise.
package vectors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// EnvDir names the environment variable that overrides the vectors directory.
const EnvDir = "HIVEMIND_VECTORS"

// Dir returns the vectors directory, or fails/skips the test as the package doc describes.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := find()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("golden vectors not found (CI is set, so this is a failure): %v", err)
		}
		tb.Skipf("SKIPPING: golden vectors not found: %v (set %s to their folder)", err, EnvDir)
	}
	return dir
}

func find() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", fmt.Errorf("$%s=%q is not a directory", EnvDir, d)
		}
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			v := filepath.Join(dir, "..", "shared", "vectors")
			if st, err := os.Stat(v); err == nil && st.IsDir() {
				return filepath.Clean(v), nil
			}
			return "", fmt.Errorf("no ../shared/vectors beside the module root %s", dir)
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

// Load decodes the vector file name (e.g. "msgpack.json") into out, failing the test on any error.
// Unknown JSON fields are allowed so that a test may decode only the sections it checks. Large forms
// of byte strings are folded for Blob (see foldLargeForms). Tests that check cases should prefer Run
// or Cases, which decode each case on its own and report an unreadable one by its name.
func Load(tb testing.TB, name string, out any) {
	tb.Helper()
	if err := load(Dir(tb), name, out); err != nil {
		tb.Fatal(err)
	}
}

func load(dir, name string, out any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("read vectors: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers pass through the fold unchanged
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("decode vectors %s: %w", name, err)
	}
	foldLargeForms(tree)
	folded, err := json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("decode vectors %s: %w", name, err)
	}
	if err := json.Unmarshal(folded, out); err != nil {
		return fmt.Errorf("decode vectors %s: %w", name, err)
	}
	return nil
}

// Path returns the full path of a vector file (for fuzz seeds and similar raw uses).
func Path(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(Dir(tb), name)
}

// ByteStrings returns every exact byte string of the vector file (each `*_hex` string field and
// typed bytes value, in a fixed order), for fuzz seeds. Large forms have no bytes and are left out.
func ByteStrings(tb testing.TB, name string) [][]byte {
	tb.Helper()
	var root any
	Load(tb, name, &root)
	var out [][]byte
	var walk func(node any, field string)
	walk = func(node any, field string) {
		switch n := node.(type) {
		case map[string]any:
			keys := make([]string, 0, len(n))
			for k := range n {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(n[k], k)
			}
		case []any:
			for _, v := range n {
				walk(v, field)
			}
		case string:
			if strings.HasSuffix(field, "_hex") || field == "hex" {
				b, err := hex.DecodeString(n)
				if err != nil {
					tb.Fatalf("%s: field %s: %v", name, field, err)
				}
				out = append(out, b)
			}
		}
	}
	walk(root, "")
	return out
}
