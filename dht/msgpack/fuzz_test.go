package msgpack_test

import (
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
		{0xd4, 0x40, 0x90}, {0xc7, 0x03, 0x40, 0xa2, 0x61, 0x62}, {0x81, 0xa1, 0x61, 0xd4, 0x50, 0x01}, {0xd6, 0xff, 0, 0, 0, 1}, {0xd5, 0xff, 0, 1}, {0xd4, 0x07, 0x01},
	}
	// Every byte string of the files that carry msgpack (values, subkeys, signed values).
	for _, name := range []string{"msgpack.json", "dhtid.json", "schema.json", "rsa_validator.json"} {
		seeds = append(seeds, vectors.ByteStrings(f, name)...)
	}
	return seeds
}
