package msgpack_test

import (
	"testing"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// metricsValue is a typical record value: albert's LocalMetrics as a trainer publishes it.
func metricsValue() *msgpack.Map {
	return msgpack.MapOf(
		"step", int64(1234),
		"samples_per_second", 57.25,
		"samples_accumulated", int64(4096),
		"loss", 2.3125,
		"mini_steps", int64(16),
	)
}

func BenchmarkMarshalMetrics(b *testing.B) {
	v := metricsValue()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = msgpack.AppendMarshal(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkUnmarshalMetrics(b *testing.B) {
	data, err := msgpack.Marshal(metricsValue())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := msgpack.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
