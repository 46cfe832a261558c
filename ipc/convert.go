package ipc

import (
	"fmt"
	"math"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/proto/ipcpb"
)

func keyToProto(k dht.Key) *ipcpb.Key { return &ipcpb.Key{Data: k.Data, Raw: k.Raw} }

// getOptionsToProto leaves the default options out (nil reads as zero on the worker's side).
func getOptionsToProto(o dht.GetOptions) *ipcpb.GetOptions {
	if o == (dht.GetOptions{}) {
		return nil
	}
	return &ipcpb.GetOptions{Latest: o.Latest, SufficientExpiration: o.SufficientExpiration}
}

// encode returns the msgpack of v: msgpack.Raw passes through, anything else is encoded.
func encode(v any) ([]byte, error) {
	if raw, ok := v.(msgpack.Raw); ok {
		return raw, nil
	}
	return msgpack.Marshal(v)
}

// storeItemToProto encodes an item's value and subkey; errors wrap dht.ErrInvalidValue or
// dht.ErrInvalidExpiration, so a bad item fails before it reaches the worker.
func storeItemToProto(it dht.StoreItem) (*ipcpb.StoreItem, error) {
	if math.IsNaN(it.Expiration) || math.IsInf(it.Expiration, 0) {
		return nil, fmt.Errorf("%w: %v", dht.ErrInvalidExpiration, it.Expiration)
	}
	value, err := encode(it.Value)
	if err != nil {
		return nil, fmt.Errorf("%w: value: %w", dht.ErrInvalidValue, err)
	}
	out := &ipcpb.StoreItem{Key: keyToProto(it.Key), Value: value, Expiration: it.Expiration}
	if it.Subkey != nil {
		sub, err := encode(it.Subkey)
		if err != nil {
			return nil, fmt.Errorf("%w: subkey: %w", dht.ErrInvalidValue, err)
		}
		out.Subkey, out.HasSubkey = sub, true
	}
	return out, nil
}

func resultFromProto(r *ipcpb.GetResult) *dht.Result {
	if !r.GetFound() {
		return nil
	}
	v := r.GetValue()
	out := &dht.Result{
		Value:        msgpack.Raw(v.GetValue()),
		Expiration:   v.GetExpiration(),
		IsDictionary: v.GetIsDictionary(),
	}
	for _, e := range v.GetDictionary() {
		out.Dictionary = append(out.Dictionary, dht.DictionaryEntry{
			Subkey:     msgpack.Raw(e.GetSubkey()),
			Value:      msgpack.Raw(e.GetValue()),
			Expiration: e.GetExpiration(),
		})
	}
	return out
}

func storeResultFromProto(r *ipcpb.StoreResult) dht.StoreResult {
	out := dht.StoreResult{Stored: r.GetStored()}
	for _, rep := range r.GetReplicas() {
		rr := dht.ReplicaResult{Peer: dht.PeerID(rep.GetPeerId()), Accepted: rep.GetAccepted()}
		if id, err := dht.IDFromBytes(rep.GetNodeId()); err == nil {
			rr.Node = id
		}
		if msg := rep.GetError(); msg != "" {
			rr.Err = fmt.Errorf("%w: %s", dht.ErrNoResponse, msg)
		}
		out.Replicas = append(out.Replicas, rr)
	}
	return out
}
