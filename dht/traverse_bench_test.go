package dht

import (
	"context"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// BenchmarkTraverseManyQueries: the traversal's own work (choosing the next call, merging answers)
// for a StoreMany-sized lookup of 1,000 keys over a 16-node swarm where every node knows every
// other (each key visits them all, as beam 20 > 16), with hivemind's int(sqrt(n)) keys per FIND and
// answers computed in advance, so only the traversal is timed.
func BenchmarkTraverseManyQueries(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 9))
	g := newKademliaGraph(rng, 16, 20)
	queries := make([]ID, 1000)
	for i := range queries {
		queries[i] = randID(rng)
	}
	answers := map[ID]map[ID]neighborReply{}
	for _, peer := range g.nodes {
		answers[peer] = g.getNeighbors(context.Background(), peer, queries, 0)
	}
	for b.Loop() {
		var calls atomic.Int64
		_, err := traverse(context.Background(), traverseParams{
			queries: queries, initial: g.nodes[:4], beamSize: 20, numWorkers: 4,
			queriesPerCall: int(math.Sqrt(float64(len(queries)))),
			getNeighbors: func(_ context.Context, peer ID, qs []ID, _ int) map[ID]neighborReply {
				calls.Add(1)
				out := make(map[ID]neighborReply, len(qs))
				for _, q := range qs {
					out[q] = answers[peer][q]
				}
				return out
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(calls.Load()), "calls/op")
	}
}
