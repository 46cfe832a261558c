package albert

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// fakeDHT is an in-memory DHT for unit tests: one storage shared by every peer's client, dictionary
// values only (what albert stores), hivemind's conflict rule (strictly later expiration wins, expired
// writes refused), and each client signing, validating and stripping with its own record validator
// exactly as a worker's node does. Time is the wall clock, so inside a synctest bubble it is virtual.
type fakeDHT struct {
	mu      sync.Mutex
	records map[dht.ID]map[string]fakeEntry // key ID → msgpack(subkey) → entry
	stores  int
}

type fakeEntry struct {
	subkey, value []byte // value as stored: signed
	expiration    float64
}

func newFakeDHT() *fakeDHT { return &fakeDHT{records: make(map[dht.ID]map[string]fakeEntry)} }

// client returns a peer's view of the DHT, validating with v (nil: accept everything).
func (f *fakeDHT) client(v dht.RecordValidator) *fakeClient { return &fakeClient{dht: f, v: v} }

// storeCount returns how many stores were accepted.
func (f *fakeDHT) storeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stores
}

type fakeClient struct {
	dht *fakeDHT
	v   dht.RecordValidator
}

var _ dht.Client = (*fakeClient)(nil)

func encodeFake(v any) ([]byte, error) {
	if raw, ok := v.(msgpack.Raw); ok {
		return raw, nil
	}
	return msgpack.Marshal(v)
}

func (c *fakeClient) Store(ctx context.Context, item dht.StoreItem) (dht.StoreResult, error) {
	if err := ctx.Err(); err != nil {
		return dht.StoreResult{}, err
	}
	if item.Subkey == nil {
		return dht.StoreResult{}, fmt.Errorf("%w: the fake DHT stores dictionary entries only", dht.ErrInvalidArgument)
	}
	value, err := encodeFake(item.Value)
	if err != nil {
		return dht.StoreResult{}, fmt.Errorf("%w: %w", dht.ErrInvalidValue, err)
	}
	subkey, err := encodeFake(item.Subkey)
	if err != nil {
		return dht.StoreResult{}, fmt.Errorf("%w: %w", dht.ErrInvalidValue, err)
	}
	id := item.Key.ID()
	if c.v != nil {
		r := dht.Record{Key: id.Bytes(), Subkey: subkey, Value: value, Expiration: item.Expiration}
		r.Value = c.v.SignValue(r)
		if ok, _ := c.v.Validate(r); !ok {
			return dht.StoreResult{}, nil
		}
		value = r.Value
	}
	now := dht.SystemClock{}.Now()
	f := c.dht
	f.mu.Lock()
	defer f.mu.Unlock()
	entries := f.records[id]
	if entries == nil {
		entries = make(map[string]fakeEntry)
		f.records[id] = entries
	}
	if old, ok := entries[string(subkey)]; item.Expiration < now || ok && old.expiration >= item.Expiration {
		return dht.StoreResult{}, nil
	}
	entries[string(subkey)] = fakeEntry{subkey: subkey, value: value, expiration: item.Expiration}
	f.stores++
	return dht.StoreResult{Stored: true}, nil
}

func (c *fakeClient) StoreMany(ctx context.Context, items []dht.StoreItem) ([]dht.StoreResult, error) {
	out := make([]dht.StoreResult, len(items))
	for i, it := range items {
		r, err := c.Store(ctx, it)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func (c *fakeClient) Get(ctx context.Context, key dht.Key, _ dht.GetOptions) (*dht.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := dht.SystemClock{}.Now()
	f := c.dht
	f.mu.Lock()
	defer f.mu.Unlock()
	res := &dht.Result{IsDictionary: true}
	for _, e := range f.records[key.ID()] {
		if e.expiration < now {
			continue
		}
		value := e.value
		if c.v != nil {
			value = c.v.StripValue(dht.Record{Key: key.ID().Bytes(), Subkey: e.subkey, Value: value, Expiration: e.expiration})
		}
		res.Dictionary = append(res.Dictionary, dht.DictionaryEntry{
			Subkey: msgpack.Raw(e.subkey), Value: msgpack.Raw(value), Expiration: e.expiration,
		})
		res.Expiration = max(res.Expiration, e.expiration)
	}
	if len(res.Dictionary) == 0 {
		return nil, nil
	}
	return res, nil
}

func (c *fakeClient) GetMany(ctx context.Context, keys []dht.Key, opts dht.GetOptions) ([]*dht.Result, error) {
	out := make([]*dht.Result, len(keys))
	for i, k := range keys {
		r, err := c.Get(ctx, k, opts)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// testKeys are RSA keys generated once for the package's tests (2048-bit generation is slow under
// -race).
var testKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	keys := make([]*rsa.PrivateKey, 4)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
})

func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	keys, err := testKeys()
	require.NoError(t, err)
	return keys[i]
}

// runValidator builds what a worker configured by Validators(runID, …) runs: both schemas (through
// their JSON form, as they travel) merged, and an RSA signature validator with key.
func runValidator(t testing.TB, runID string, key *rsa.PrivateKey) *validator.Composite {
	t.Helper()
	specs, err := Validators(runID, "unused.pem")
	require.NoError(t, err)
	var vs []dht.RecordValidator
	for _, s := range specs {
		if s.Schema == nil {
			continue
		}
		var cfg validator.SchemaConfig
		require.NoError(t, json.Unmarshal(s.Schema.ConfigJSON, &cfg))
		sv, err := validator.NewSchema(cfg)
		require.NoError(t, err)
		vs = append(vs, sv)
	}
	rv, err := validator.NewRSASignature(key, nil)
	require.NoError(t, err)
	return validator.NewComposite(append(vs, rv)...)
}

// testIdentity is peer i's identity for key i.
func testIdentity(t testing.TB, i int) Identity {
	return Identity{
		PeerID:      []byte(fmt.Sprintf("peer-%d", i)),
		OwnerMarker: validator.OwnerMarkerFor(&testKey(t, i).PublicKey),
	}
}

// dhtNow is the DHT time of the fake (and of the trackers under test).
func dhtNow() float64 { return dht.SystemClock{}.Now() }

// decodeBytes decodes a msgpack bin (a subkey).
func decodeBytes(raw []byte) ([]byte, error) {
	v, err := msgpack.Unmarshal(raw)
	if err != nil {
		return nil, err
	}
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("a %T, not bytes", v)
	}
	return b, nil
}
