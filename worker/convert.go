package worker

import (
	"fmt"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

func keyFromProto(k *ipcpb.Key) dht.Key {
	return dht.Key{Data: k.GetData(), Raw: k.GetRaw()}
}

func getOptionsFromProto(o *ipcpb.GetOptions) dht.GetOptions {
	return dht.GetOptions{Latest: o.GetLatest(), SufficientExpiration: o.GetSufficientExpiration()}
}

// storeItemFromProto converts an item; the value and subkey stay pre-encoded msgpack.
func storeItemFromProto(it *ipcpb.StoreItem) (dht.StoreItem, error) {
	if it == nil || it.GetKey() == nil {
		return dht.StoreItem{}, fmt.Errorf("%w: store item without a key", dht.ErrInvalidArgument)
	}
	if len(it.GetValue()) == 0 {
		return dht.StoreItem{}, fmt.Errorf("%w: empty msgpack value", dht.ErrInvalidValue)
	}
	item := dht.StoreItem{
		Key:        keyFromProto(it.GetKey()),
		Value:      msgpack.Raw(it.GetValue()),
		Expiration: it.GetExpiration(),
	}
	if it.GetHasSubkey() {
		if len(it.GetSubkey()) == 0 {
			return dht.StoreItem{}, fmt.Errorf("%w: empty msgpack subkey", dht.ErrInvalidValue)
		}
		item.Subkey = msgpack.Raw(it.GetSubkey())
	}
	return item, nil
}

func resultToProto(r *dht.Result) *ipcpb.GetResult {
	if r == nil {
		return &ipcpb.GetResult{}
	}
	v := &ipcpb.Value{
		Value:        r.Value,
		Expiration:   r.Expiration,
		IsDictionary: r.IsDictionary,
	}
	for _, e := range r.Dictionary {
		v.Dictionary = append(v.Dictionary, &ipcpb.DictionaryEntry{
			Subkey:     e.Subkey,
			Value:      e.Value,
			Expiration: e.Expiration,
		})
	}
	return &ipcpb.GetResult{Found: true, Value: v}
}

func storeResultToProto(r dht.StoreResult) *ipcpb.StoreResult {
	out := &ipcpb.StoreResult{Stored: r.Stored}
	for _, rep := range r.Replicas {
		pr := &ipcpb.ReplicaResult{
			PeerId:   []byte(rep.Peer),
			NodeId:   rep.Node.Bytes(),
			Accepted: rep.Accepted,
		}
		if rep.Err != nil {
			pr.Error = rep.Err.Error()
		}
		out.Replicas = append(out.Replicas, pr)
	}
	return out
}
