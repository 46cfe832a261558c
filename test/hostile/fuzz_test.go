package hostile

// Fuzz targets for the decoders that read bytes from the parent, a file or a worker and had none:
// the parent's view of a worker's replies (ipc.Client), the worker's view of the parent's requests
// (worker.Server), the worker's durable state (records.db, node_id) reloaded at start, an RSA key
// file, a schema validator's JSON configuration, and the albert example's records as peers store them. Their seed corpora run in every `go test`;
// scripts/fuzz explores further.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/dhtsim"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/examples/albert"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
	"github.com/hivemind-go/hivemind/worker"
)

// replayConn is a gRPC connection whose every reply is the same bytes, decoded into whatever the
// client expects: a worker that answers garbage.
type replayConn struct{ reply []byte }

func (c replayConn) Invoke(_ context.Context, _ string, _, reply any, _ ...grpc.CallOption) error {
	return proto.Unmarshal(c.reply, reply.(proto.Message))
}

func (replayConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("hostile: no streams")
}

// FuzzClientReplies feeds arbitrary reply bytes to every ipc.Client method: decoding a worker's
// reply must never panic, and a GetMany or StoreMany reply of the wrong length is an error.
func FuzzClientReplies(f *testing.F) {
	for _, m := range []proto.Message{
		&ipcpb.GetResponse{Result: &ipcpb.GetResult{Found: true, Value: &ipcpb.Value{Value: []byte{0x01}, Expiration: 1e9}}},
		&ipcpb.GetResponse{Result: &ipcpb.GetResult{Found: true, Value: &ipcpb.Value{IsDictionary: true, Dictionary: []*ipcpb.DictionaryEntry{{Subkey: []byte{0xa1, 'a'}, Value: []byte{0x02}}}}}},
		&ipcpb.GetManyResponse{Results: []*ipcpb.GetResult{{}, {Found: true}}},
		&ipcpb.StoreResponse{Result: &ipcpb.StoreResult{Stored: true, Replicas: []*ipcpb.ReplicaResult{{PeerId: []byte("p"), NodeId: make([]byte, 20), Accepted: true}}}},
		&ipcpb.StoreResponse{Result: &ipcpb.StoreResult{Replicas: []*ipcpb.ReplicaResult{{NodeId: []byte{1, 2, 3}, Error: "x"}}}},
		&ipcpb.StatsResponse{RoutingTableSize: 3, Rpcs: []*ipcpb.RPCCounter{{Name: "rpc_find", Sent: 1}}},
		&ipcpb.PeerIDResponse{PeerId: []byte("id"), PeerIdB58: "Qm"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0x01})
	key := dht.MustKey("k")
	item := dht.StoreItem{Key: key, Value: 1, Expiration: 1e10}
	f.Fuzz(func(t *testing.T, reply []byte) {
		c := ipc.NewClient(replayConn{reply: reply}, nil)
		ctx := context.Background()
		_, _ = c.Get(ctx, key, dht.GetOptions{})
		if rs, err := c.GetMany(ctx, []dht.Key{key, key}, dht.GetOptions{}); err == nil && len(rs) != 2 {
			t.Fatalf("GetMany of 2 keys returned %d results and no error", len(rs))
		}
		_, _ = c.Store(ctx, item)
		if rs, err := c.StoreMany(ctx, []dht.StoreItem{item, item, item}); err == nil && len(rs) != 3 {
			t.Fatalf("StoreMany of 3 items returned %d results and no error", len(rs))
		}
		_, _ = c.Stats(ctx)
		_, _ = c.PeerID(ctx)
		_, _ = c.VisibleMaddrs(ctx, false)
	})
}

// simNode serves a dht.Node of a one-node dhtsim cluster as a worker.Node: the worker's real
// server code, a real DHT node, no network.
type simNode struct {
	*dht.Node
	cl *dhtsim.Cluster
}

func (n *simNode) PeerID() (dht.PeerID, string)                          { return n.Node.PeerID(), "sim" }
func (n *simNode) VisibleMaddrs(context.Context, bool) ([]string, error) { return nil, nil }
func (n *simNode) Stats() worker.NodeStats {
	s := n.Node.Stats()
	return worker.NodeStats{RoutingTableSize: s.RoutingTable.NodeIDs, StoredKeys: s.StoredKeys}
}
func (n *simNode) Close(context.Context) error { return n.cl.Close() }
func (n *simNode) AddPeers(context.Context, []string) (worker.AddPeersResult, error) {
	return worker.AddPeersResult{}, errors.New("simNode: a one-node simulation has no peers to add")
}

func simNodeFactory(ctx context.Context, spec worker.NodeSpec) (worker.Node, error) {
	net, err := dhtsim.NewNetwork(dhtsim.Config{})
	if err != nil {
		return nil, err
	}
	cl, err := dhtsim.NewCluster(ctx, net, dhtsim.ClusterConfig{Size: 1, Node: dht.Config{NodeID: spec.NodeID, Persister: spec.Persister, Logger: quiet()}})
	if err != nil {
		return nil, err
	}
	return &simNode{Node: cl.Node(0), cl: cl}, nil
}

// newSimServer is a worker.Server configured with a sim node and the given node configuration.
func newSimServer(t testing.TB, cfg *ipcpb.NodeConfig) (*worker.Server, *ipcpb.ConfigureResponse, error) {
	s := worker.NewServer(worker.ServerConfig{NewNode: simNodeFactory, Logger: quiet()})
	resp, err := s.Configure(context.Background(), &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: cfg})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, resp, err
}

// FuzzWorkerRequests feeds arbitrary request bytes from "the parent" to a configured worker.Server
// (Get, GetMany, Store, StoreMany): keys, subkeys and values arrive as msgpack the worker must check;
// nothing may panic, and a bad item is an error or a false result, never a stored garbage record
// that breaks a later Get.
func FuzzWorkerRequests(f *testing.F) {
	seeds := []proto.Message{
		&ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: &ipcpb.Key{Data: []byte{0xa1, 'k'}}, Value: []byte{0x01}, Expiration: 1e10}},
		&ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: &ipcpb.Key{Data: []byte("raw"), Raw: true}, HasSubkey: true, Subkey: []byte{0xc1}, Value: []byte{0x01}, Expiration: 1e10}},
		&ipcpb.StoreManyRequest{Items: []*ipcpb.StoreItem{{Key: &ipcpb.Key{Data: []byte{0xa1, 'k'}}, Value: []byte{0xd7, 0x50, 0, 0, 0, 0, 0, 0, 0, 0}, Expiration: 1e10}}},
		&ipcpb.GetRequest{Key: &ipcpb.Key{Data: []byte{0xa1, 'k'}}, Options: &ipcpb.GetOptions{Latest: true}},
		&ipcpb.GetManyRequest{Keys: []*ipcpb.Key{{Data: []byte{0xa1, 'k'}}, {Raw: true}}},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(i), b)
	}
	srv, _, err := newSimServer(f, &ipcpb.NodeConfig{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		switch kind % 4 {
		case 0:
			var req ipcpb.StoreRequest
			if proto.Unmarshal(data, &req) == nil {
				if resp, err := srv.Store(ctx, &req); err == nil && resp.GetResult().GetStored() {
					if _, err := srv.Get(ctx, &ipcpb.GetRequest{Key: req.GetItem().GetKey()}); err != nil {
						t.Fatalf("a stored item cannot be read back: %v", err)
					}
				}
			}
		case 1:
			var req ipcpb.StoreManyRequest
			if proto.Unmarshal(data, &req) == nil {
				if resp, err := srv.StoreMany(ctx, &req); err == nil && len(resp.GetResults()) != len(req.GetItems()) {
					t.Fatalf("%d results for %d items", len(resp.GetResults()), len(req.GetItems()))
				}
			}
		case 2:
			var req ipcpb.GetRequest
			if proto.Unmarshal(data, &req) == nil {
				_, _ = srv.Get(ctx, &req)
			}
		default:
			var req ipcpb.GetManyRequest
			if proto.Unmarshal(data, &req) == nil {
				_, _ = srv.GetMany(ctx, &req)
			}
		}
	})
}

// storageBucket is the bbolt bucket of a worker's records.db that holds its node's storage.
const storageBucket = "storage"

// writeState makes a state directory whose records.db holds the given raw records in the storage
// bucket and whose node_id file holds nodeID (nil: none).
func writeState(t testing.TB, dir string, records map[string][]byte, nodeID []byte) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "records.db"), 0o600, &bolt.Options{Timeout: time.Second, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(storageBucket))
		if err != nil {
			return err
		}
		for k, v := range records {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if nodeID != nil {
		if err := os.WriteFile(filepath.Join(dir, "node_id"), nodeID, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readState returns the raw records of dir's records.db storage bucket.
func readState(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "records.db"), 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	out := map[string][]byte{}
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(storageBucket))
		if b == nil {
			return errors.New("no storage bucket: the worker's state layout changed")
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// durableState stores one record through a worker.Server on a fresh state directory, stops it and
// returns the directory and the record's key.
func durableState(t testing.TB) (string, *ipcpb.Key) {
	t.Helper()
	dir := t.TempDir()
	cfg := &ipcpb.NodeConfig{StateDir: dir, IdentityPath: filepath.Join(dir, "identity.key")}
	s := worker.NewServer(worker.ServerConfig{NewNode: simNodeFactory, Logger: quiet()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Configure(ctx, &ipcpb.ConfigureRequest{Version: ipcpb.ConfigVersion, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	key := &ipcpb.Key{Data: []byte{0xa1, 'k'}}
	resp, err := s.Store(ctx, &ipcpb.StoreRequest{Item: &ipcpb.StoreItem{Key: key, Value: []byte{0x2a}, Expiration: dht.SystemClock{}.Now() + 3600}})
	if err != nil || !resp.GetResult().GetStored() {
		t.Fatalf("store: %v %v", resp, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, key
}

// TestStateSurvivesRestart keeps FuzzWorkerStateReload honest: a record stored through one
// worker.Server is reloaded by the next one on the same state directory (if the layout the fuzz
// target writes changes, this fails first).
func TestStateSurvivesRestart(t *testing.T) {
	dir, key := durableState(t)
	if len(readState(t, dir)) == 0 {
		t.Fatal("the worker persisted nothing in its storage bucket")
	}
	s, resp, err := newSimServer(t, &ipcpb.NodeConfig{StateDir: dir, IdentityPath: filepath.Join(dir, "identity.key")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetReloadedRecords() != 1 {
		t.Fatalf("reloaded %d records, want 1", resp.GetReloadedRecords())
	}
	got, err := s.Get(context.Background(), &ipcpb.GetRequest{Key: key})
	if err != nil || !got.GetResult().GetFound() {
		t.Fatalf("the reloaded record is not served: %v %v", got, err)
	}
}

// FuzzWorkerStateReload starts a worker.Server on a state directory whose records.db holds an
// arbitrary record and whose node_id file holds arbitrary bytes, as a restarted worker reads them
// at Configure: nothing may panic, and a start that succeeds reloads at most that one record.
// Seeds: a record a worker really persisted.
func FuzzWorkerStateReload(f *testing.F) {
	dir, _ := durableState(f)
	for k, v := range readState(f, dir) {
		f.Add([]byte(k), v, []byte("0123456789abcdef0123456789abcdef01234567\n"))
		f.Add([]byte(k), v[:len(v)/2], []byte("zz"))
	}
	f.Add([]byte("k"), []byte{0xff}, []byte{})
	f.Fuzz(func(t *testing.T, key, record, nodeID []byte) {
		if len(key) == 0 || len(key) > bolt.MaxKeySize {
			key = []byte("k")
		}
		dir := t.TempDir()
		writeState(t, dir, map[string][]byte{string(key): record}, nodeID)
		_, resp, err := newSimServer(t, &ipcpb.NodeConfig{StateDir: dir, IdentityPath: filepath.Join(dir, "identity.key")})
		if err == nil && resp.GetReloadedRecords() > 1 {
			t.Fatalf("reloaded %d records from one", resp.GetReloadedRecords())
		}
	})
}

// FuzzRSAKeyFile feeds arbitrary bytes as the RSA key file a worker's validator loads: parsing must
// never panic, and a key it accepts must make a working signer.
func FuzzRSAKeyFile(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(key)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkcs1)
	f.Add(pkcs8)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := validator.ParseRSAPrivateKey(data)
		if err != nil {
			if !errors.Is(err, validator.ErrInvalidKey) {
				t.Fatalf("error %v does not wrap ErrInvalidKey", err)
			}
			return
		}
		if k.N.BitLen() > 4096 {
			return // signing with a huge fuzzed key is slow, not interesting
		}
		if v, err := validator.NewRSASignature(k, quiet()); err == nil {
			rec := dht.Record{Key: []byte("k"), Subkey: v.OwnerMarker(), Value: []byte{0x01}, Expiration: 1e10}
			rec.Value = v.SignValue(rec)
			if ok, reason := v.Validate(rec); !ok {
				t.Fatalf("a record signed with an accepted key does not validate: %s", reason)
			}
		}
	})
}

// FuzzSchemaConfig feeds arbitrary JSON as the schema validator configuration a worker receives
// from its parent: decoding and building must never panic, and a built schema validates arbitrary
// records without panicking.
func FuzzSchemaConfig(f *testing.F) {
	for _, cfg := range []validator.SchemaConfig{validator.AlbertMetricsSchema("run"), validator.ProgressSchema("p")} {
		b, err := json.Marshal(cfg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte("run_metrics"), []byte{0xa1, 'x'}, []byte{0x81, 0xa4, 'l', 'o', 's', 's', 0x01})
	}
	f.Add([]byte(`{"schemas":[{"model":"m","fields":[{"name":"x","type":"nope"}]}]}`), []byte("x"), []byte{0xc0}, []byte{0xc1})
	f.Fuzz(func(t *testing.T, config, key, subkey, value []byte) {
		var cfg validator.SchemaConfig
		if json.Unmarshal(config, &cfg) != nil {
			return
		}
		v, err := validator.NewSchema(cfg)
		if err != nil {
			return
		}
		k, err := dht.KeyOf(string(key))
		if err != nil {
			return
		}
		id := k.ID()
		if _, err := msgpack.Unmarshal(value); err != nil {
			value = []byte{0xc0}
		}
		_, _ = v.Validate(dht.Record{Key: id[:], Subkey: subkey, Value: value, Expiration: 1e10})
	})
}

// FuzzAlbertRecords feeds arbitrary values, as a peer may store them, to the albert example's
// record decoders (a trainer's metrics and progress, the monitor's metrics dictionary): never a
// panic, and every entry ParseMetrics does not return is counted as skipped.
func FuzzAlbertRecords(f *testing.F) {
	metrics, err := msgpack.Marshal(albert.LocalMetrics{Step: 3, SamplesPerSecond: 1.5, SamplesAccumulated: 64, Loss: 2.5, MiniSteps: 4}.Value())
	if err != nil {
		f.Fatal(err)
	}
	progress, err := msgpack.Marshal(albert.LocalProgress{PeerID: []byte("peer"), Epoch: 2, SamplesAccumulated: 10, SamplesPerSecond: 3, Time: 1e9}.Value())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(metrics, []byte{0xc4, 0x02, 'p', '1'})
	f.Add(progress, []byte{0xa2, 'p', '1'})
	f.Add([]byte{0xc0}, []byte{0xc1})
	f.Add([]byte{0x85, 0xa4, 's', 't', 'e', 'p', 0xcb, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, []byte{0xc4, 0x00})
	f.Fuzz(func(t *testing.T, value, subkey []byte) {
		_, _ = albert.ParseLocalMetrics(value)
		_, _ = albert.ParseLocalProgress(value)
		res := &dht.Result{IsDictionary: true, Dictionary: []dht.DictionaryEntry{
			{Subkey: subkey, Value: value, Expiration: 1e10},
			{Subkey: []byte{0xc4, 0x01, 'x'}, Value: metrics, Expiration: 1e10},
		}}
		peers, skipped := albert.ParseMetrics(res)
		if len(peers)+skipped != len(res.Dictionary) {
			t.Fatalf("%d entries parsed and %d skipped out of %d", len(peers), skipped, len(res.Dictionary))
		}
	})
}
