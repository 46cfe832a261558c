package dht

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Benchmarks of local operations on one node, in process (no network): Store and Get of a key the
// node holds, and the handlers. Each reports its ratio to the raw LocalStorage operation measured
// in the same run (metric "x-storage").

func benchNode(b *testing.B) *Node {
	b.Helper()
	net := newLoopNet()
	net.noRecord = true
	n, err := New(Config{Logger: quietLogger(), RefreshInterval: -1}, "bench", net.endpoint("bench"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	return n
}

// storageBaseline measures a raw LocalStorage store+get in ns.
func storageBaseline() float64 {
	s := NewLocalStorage(LocalStorageConfig{})
	const n = 20000
	key := HashID([]byte("k"))
	start := time.Now()
	for i := range n {
		_, _ = s.Store(key, []byte{0x01}, 2e9+float64(i), 1.7e9)
		_, _ = s.Get(key, 1.7e9)
	}
	return float64(time.Since(start).Nanoseconds()) / n
}

func BenchmarkNodeStoreLocal(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	key := MustKey("bench-key")
	exp := n.now() + 1000
	base := storageBaseline()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		exp += 0.001
		if r, err := n.Store(ctx, StoreItem{Key: key, Value: "value", Expiration: exp}); err != nil || !r.Stored {
			b.Fatal(r, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-storage")
}

func BenchmarkNodeGetLocal(b *testing.B) {
	n := benchNode(b)
	ctx := context.Background()
	key := MustKey("bench-key")
	if _, err := n.Store(ctx, StoreItem{Key: key, Value: "value", Expiration: n.now() + 1e6}); err != nil {
		b.Fatal(err)
	}
	base := storageBaseline()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r, err := n.Get(ctx, key, GetOptions{}); err != nil || r == nil {
			b.Fatal(r, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-storage")
}

func BenchmarkNodeGetManyLocal(b *testing.B) {
	for _, size := range []int{16, 256} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			n := benchNode(b)
			ctx := context.Background()
			var keys []Key
			for i := range size {
				k := MustKey(i)
				keys = append(keys, k)
				if _, err := n.Store(ctx, StoreItem{Key: k, Value: i, Expiration: n.now() + 1e6}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := n.GetMany(ctx, keys, GetOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/key")
		})
	}
}
