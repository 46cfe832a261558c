// Package rpclog records the failed rpc_find calls of a DHT node, for tests that explain a lookup
// that fell short (which peers could not be asked, and why).
package rpclog

import (
	"context"
	"slices"
	"sync"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// maxKept bounds the errors a Finds keeps: enough to explain a short store, never a growing log.
const maxKept = 64

// Finds collects the errors of the FIND calls made through the transports it wraps. It is safe for
// concurrent use.
type Finds struct {
	mu   sync.Mutex
	errs []error
}

// Wrap returns tr recording the errors of its Find calls in f (the first maxKept); the other calls
// pass through.
func (f *Finds) Wrap(tr dht.Transport) dht.Transport { return findLog{Transport: tr, finds: f} }

// Errors returns the recorded errors in the order they happened.
func (f *Finds) Errors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errs)
}

func (f *Finds) add(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) < maxKept {
		f.errs = append(f.errs, err)
	}
}

type findLog struct {
	dht.Transport
	finds *Finds
}

func (t findLog) Find(ctx context.Context, p dht.PeerID, r *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	resp, err := t.Transport.Find(ctx, p, r)
	if err != nil {
		t.finds.add(err)
	}
	return resp, err
}
