package dht

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// sinkTransport answers every call at once with an empty response (no NodeInfo: the routing table
// is left alone) and counts the items it was asked to store.
type sinkTransport struct{ stored atomic.Int64 }

func (s *sinkTransport) Ping(context.Context, PeerID, *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	return &dhtpb.PingResponse{}, nil
}

func (s *sinkTransport) Store(_ context.Context, _ PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	s.stored.Add(int64(len(req.GetKeys())))
	return &dhtpb.StoreResponse{StoreOk: make([]bool, len(req.GetKeys()))}, nil
}

func (s *sinkTransport) Find(context.Context, PeerID, *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	return &dhtpb.FindResponse{}, nil
}

// handoffNode returns a node holding keys records (one in a hundred a dictionary of 8 subkeys)
// with contacts other nodes in its routing table.
func handoffNode(b *testing.B, keys, contacts int) (*Node, *sinkTransport) {
	b.Helper()
	tr := &sinkTransport{}
	n := newBenchNode(b, Config{NodeID: HashID([]byte("bench")), Logger: quietLogger(), RefreshInterval: -1, MaxStorageEntries: -1, MaxStorageBytes: -1}, tr)
	for i := range contacts {
		id := HashID(fmt.Appendf(nil, "contact-%d", i))
		n.updateRoutingTable(&id, PeerID(fmt.Sprintf("contact-%d", i)), true)
	}
	now := n.now()
	n.mu.Lock()
	for i := range keys {
		key := HashID(fmt.Appendf(nil, "key-%d", i))
		if i%100 == 0 {
			for j := range 8 {
				if _, err := n.storage.StoreSubkey(key, []byte{byte(j)}, []byte{0xa1, 'v'}, now+1e6+float64(j), now); err != nil {
					b.Fatal(err)
				}
			}
			continue
		}
		if _, err := n.storage.Store(key, []byte("0123456789abcdef"), now+1e6, now); err != nil {
			b.Fatal(err)
		}
	}
	n.mu.Unlock()
	return n, tr
}

// BenchmarkHandoff100k: a node holding 100,000 records (one in a hundred a dictionary) and 100
// contacts meets new nodes near its own ID. Each op is one node new to the routing table, until
// everything it triggered has finished (selection and sends; items/op counts the records sent).
// Meanwhile a prober goroutine takes and releases the node's lock in a loop and records how long
// each acquisition waited: "lock-wait-max-µs" and "lock-wait-p99-µs" bound how long the handoff
// held the lock, "locks/s" is what got through.
func BenchmarkHandoff100k(b *testing.B) {
	n, tr := handoffNode(b, 100_000, 100)
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		waits []time.Duration
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			n.mu.Lock()
			waits = append(waits, time.Since(t0))
			n.mu.Unlock()
			time.Sleep(50 * time.Microsecond) // a busy node's handlers, not a spin
		}
	})
	begin := time.Now()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		// A newcomer sharing its first byte with us: one whose share of our records it should hold.
		id := HashID(fmt.Appendf(nil, "newcomer-%d", i))
		id[0] = n.id[0]
		n.updateRoutingTable(&id, PeerID(fmt.Sprintf("newcomer-%d", i)), true)
		n.wg.Wait()
		n.mu.Lock()
		n.table.Delete(id) // the next op meets the same table
		n.mu.Unlock()
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	elapsed := time.Since(begin)
	slices.Sort(waits)
	if len(waits) > 0 {
		b.ReportMetric(float64(waits[len(waits)-1].Microseconds()), "lock-wait-max-µs")
		b.ReportMetric(float64(waits[len(waits)*99/100].Microseconds()), "lock-wait-p99-µs")
		b.ReportMetric(float64(len(waits))/elapsed.Seconds(), "locks/s")
	}
	b.ReportMetric(float64(tr.stored.Load())/float64(b.N), "items/op")
}

// newBenchNode starts a node alone on tr.
func newBenchNode(b *testing.B, cfg Config, tr Transport) *Node {
	b.Helper()
	n, err := New(cfg, "bench", tr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	return n
}
