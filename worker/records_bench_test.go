package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// silentTransport fails every call: a lone node never makes one.
type silentTransport struct{}

func (silentTransport) Ping(context.Context, dht.PeerID, *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	return nil, dht.ErrNoResponse
}

func (silentTransport) Store(context.Context, dht.PeerID, *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	return nil, dht.ErrNoResponse
}

func (silentTransport) Find(context.Context, dht.PeerID, *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	return nil, dht.ErrNoResponse
}

// benchRecords opens a record store in a fresh directory, fsyncing every commit or not.
func benchRecords(b *testing.B, noSync bool) *recordStore {
	b.Helper()
	path := filepath.Join(b.TempDir(), recordsFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(recordsBucket)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	return &recordStore{db: db, path: path, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

var syncModes = []struct {
	name   string
	noSync bool
}{{name: "nosync", noSync: true}, {name: "fsync", noSync: false}}

// BenchmarkRecordStorePersist: one Persist call (one bbolt transaction) of 1 or 16 records of 64
// bytes, over 10,000 keys already stored, with and without an fsync per transaction.
func BenchmarkRecordStorePersist(b *testing.B) {
	for _, mode := range syncModes {
		for _, batch := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/%d", mode.name, batch), func(b *testing.B) {
				s := benchRecords(b, mode.noSync)
				value := make([]byte, 64)
				records := make([]dht.PersistedRecord, batch)
				exp := dht.SystemClock{}.Now() + 3600
				for i := range 10_000 / batch {
					for j := range records {
						records[j] = dht.PersistedRecord{Key: dht.HashID(fmt.Append(nil, i*batch+j)), Kind: dht.ValueRegular, Value: value, Expiration: exp}
					}
					if err := s.Persist(records); err != nil {
						b.Fatal(err)
					}
				}
				i := 0
				for b.Loop() {
					i++
					for j := range records {
						records[j].Key = dht.HashID(fmt.Append(nil, (i*batch+j)%10_000))
						records[j].Expiration = exp + float64(i)
					}
					if err := s.Persist(records); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkDurableStoreHandler: the latency of an inbound STORE of one record (rpc_store, the path
// of every replica) on a node without a Persister and on one persisting to bbolt with and without
// fsync: what a peer waits for before the record is acknowledged.
func BenchmarkDurableStoreHandler(b *testing.B) {
	modes := append([]struct {
		name   string
		noSync bool
	}{{name: "memory"}}, syncModes...)
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			cfg := dht.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RefreshInterval: -1}
			if mode.name != "memory" {
				cfg.Persister = benchRecords(b, mode.noSync)
			}
			n, err := dht.New(cfg, "bench", silentTransport{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = n.Close() })
			key := dht.HashID([]byte("k")).Bytes()
			exp := dht.SystemClock{}.Now() + 3600
			req := &dhtpb.StoreRequest{
				Keys: [][]byte{key}, Subkeys: [][]byte{{0xc0}}, Values: [][]byte{{0xa1, 'v'}},
				ExpirationTime: []float64{exp}, InCache: []bool{false}, Peer: &dhtpb.NodeInfo{},
			}
			var worst time.Duration
			for b.Loop() {
				req.ExpirationTime[0] += 1e-3
				t0 := time.Now()
				resp, err := n.HandleStore(context.Background(), "peer", req)
				worst = max(worst, time.Since(t0))
				if err != nil || !resp.GetStoreOk()[0] {
					b.Fatal(resp, err)
				}
			}
			b.ReportMetric(float64(worst.Microseconds()), "max-µs")
		})
	}
}
