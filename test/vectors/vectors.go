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
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
// Unknown JSON fields are allowed so that a test may decode only the sections it checks.
func Load(tb testing.TB, name string, out any) {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(tb), name))
	if err != nil {
		tb.Fatalf("read vectors: %v", err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		tb.Fatalf("decode vectors %s: %v", name, err)
	}
}

// Path returns the full path of a vector file (for fuzz seeds and similar raw uses).
func Path(tb testing.TB, name string) string {
	tb.Helper()
	return filepath.Join(Dir(tb), name)
}
