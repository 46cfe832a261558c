package msgpack_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/test/vectors"
)

// FuzzUnmarshal checks that decoding arbitrary bytes never panics and that whatever decodes
// re-encodes and decodes again to the same value. Seeds: every msgpack byte string of the golden
// vectors plus a few hostile headers.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := msgpack.Unmarshal(data)
		if err != nil {
			return
		}
		enc, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("decoded %x but cannot re-encode %#v: %v", data, v, err)
		}
		again, err := msgpack.Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-encoding %x gave %x which does not decode: %v", data, enc, err)
		}
		if d := modelDiff(v, again, "value"); d != "" {
			t.Fatalf("round trip of %x changed the value: %s", data, d)
		}
	})
}

func fuzzSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{
		{}, {0xc1}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xc9, 0xff, 0xff, 0xff, 0xff, 0x40},
		{0xd4, 0x40, 0x90}, {0xc7, 0x03, 0x40, 0xa2, 0x61, 0x62}, {0x81, 0xa1, 0x61, 0xd4, 0x50, 0x01},
	}
	var msgpackFile struct {
		Values     []valueCase  `json:"values"`
		DecodeOnly []decodeCase `json:"decode_only"`
	}
	vectors.Load(f, "msgpack.json", &msgpackFile)
	for _, c := range msgpackFile.Values {
		if c.Packed != nil {
			seeds = append(seeds, c.Packed)
		}
	}
	for _, c := range msgpackFile.DecodeOnly {
		seeds = append(seeds, c.Input)
	}
	// Every *_hex field of the files that carry msgpack (values, subkeys, signed values).
	for _, name := range []string{"dhtid.json", "schema.json", "rsa_validator.json"} {
		data, err := os.ReadFile(vectors.Path(f, name))
		if err != nil {
			f.Fatal(err)
		}
		var root any
		if err := json.Unmarshal(data, &root); err != nil {
			f.Fatal(err)
		}
		collectHex(root, "", &seeds)
	}
	return seeds
}

func collectHex(node any, field string, out *[][]byte) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			collectHex(v, k, out)
		}
	case []any:
		for _, v := range n {
			collectHex(v, field, out)
		}
	case string:
		if strings.HasSuffix(field, "_hex") && len(n) < 4096 {
			var h vectors.HexBytes
			if json.Unmarshal([]byte(`"`+n+`"`), &h) == nil {
				*out = append(*out, h)
			}
		}
	}
}
