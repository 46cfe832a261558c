package dht_test

import (
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/dht/validator"
)

// TestSignatures is test_dht_crypto.py::test_dhtnode_signatures (spec §12.6): a subkey carrying
// bob's owner marker can be written only with bob's signature; mallory's overwrites are refused
// before and after bob leaves, and every node returns the value without the signature.
func TestSignatures(t *testing.T) {
	validators := make([]*validator.RSASignature, 3) // alice, bob, mallory
	cfgs := make([]dht.Config, 3)
	for i := range validators {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if validators[i], err = validator.NewRSASignature(key, nil); err != nil {
			t.Fatal(err)
		}
		cfgs[i] = dht.Config{Validator: validator.NewComposite(validators[i])}
	}
	swarm := dht.NewTestSwarm(t, cfgs)
	alice, bob, mallory := swarm.Node(0), swarm.Node(1), swarm.Node(2)
	ctx := t.Context()
	key := dht.MustKey("key")
	subkey := append([]byte("protected_subkey"), validators[1].OwnerMarker()...)

	store := func(n *dht.Node, value string, exp float64) bool {
		t.Helper()
		r, err := n.Store(ctx, dht.StoreItem{Key: key, Subkey: subkey, Value: value, Expiration: exp})
		if err != nil {
			t.Fatal(err)
		}
		return r.Stored
	}
	check := func(n *dht.Node, want string) {
		t.Helper()
		r, err := n.Get(ctx, key, dht.GetOptions{Latest: true})
		if err != nil || r == nil || !r.IsDictionary || len(r.Dictionary) != 1 {
			t.Fatalf("get: %+v, %v", r, err)
		}
		wantSub, _ := msgpack.Marshal(subkey)
		e := r.Dictionary[0]
		got, err := msgpack.Unmarshal(e.Value)
		if string(e.Subkey) != string(wantSub) || err != nil || got != want {
			t.Errorf("subkey %x = %v (%v), want %q", []byte(e.Subkey), got, err, want)
		}
	}

	if !store(bob, "true_value", swarm.Now()+10) {
		t.Fatal("bob's store was refused")
	}
	check(alice, "true_value")
	if store(mallory, "fake_value", swarm.Now()+20) {
		t.Error("mallory overwrote bob's subkey")
	}
	check(alice, "true_value")
	if !store(bob, "updated_true_value", swarm.Now()+30) {
		t.Fatal("bob's update was refused")
	}
	check(alice, "updated_true_value")

	swarm.Stop(1)
	if store(mallory, "updated_fake_value", swarm.Now()+40) {
		t.Error("mallory overwrote bob's subkey after bob left")
	}
	check(alice, "updated_true_value")
}
