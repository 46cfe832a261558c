package dht

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// kademliaGraph is a small network for traversal tests: every node knows up to k nodes per
// common-prefix length with itself, like a routing table of full buckets.
type kademliaGraph struct {
	nodes []ID
	known map[ID][]ID
	k     int
}

func randID(rng *rand.Rand) ID {
	var id ID
	for i := range id {
		id[i] = byte(rng.UintN(256))
	}
	return id
}

func newKademliaGraph(rng *rand.Rand, n, k int) *kademliaGraph {
	g := &kademliaGraph{known: make(map[ID][]ID, n), k: k}
	for range n {
		g.nodes = append(g.nodes, randID(rng))
	}
	for _, a := range g.nodes {
		perPrefix := map[int]int{}
		for _, i := range rng.Perm(n) {
			b := g.nodes[i]
			if b == a {
				continue
			}
			cpl := CommonPrefixLen(a, b)
			if perPrefix[cpl] < k {
				perPrefix[cpl]++
				g.known[a] = append(g.known[a], b)
			}
		}
	}
	return g
}

// nearestOf returns the k nodes of set nearest to q (brute force).
func nearestOf(set []ID, q ID, k int) []ID {
	s := slices.Clone(set)
	slices.SortFunc(s, func(a, b ID) int { return a.Xor(q).Cmp(b.Xor(q)) })
	return s[:min(k, len(s))]
}

func (g *kademliaGraph) getNeighbors(_ context.Context, peer ID, queries []ID, _ int) map[ID]neighborReply {
	out := make(map[ID]neighborReply, len(queries))
	for _, q := range queries {
		out[q] = neighborReply{neighbors: nearestOf(g.known[peer], q, g.k)}
	}
	return out
}

func jaccard(a, b []ID) float64 {
	set := map[ID]int{}
	for _, x := range a {
		set[x] |= 1
	}
	for _, x := range b {
		set[x] |= 2
	}
	both := 0
	for _, v := range set {
		if v == 3 {
			both++
		}
	}
	return float64(both) / float64(len(set))
}

// TestTraverseOracle checks the beam search against exhaustive search on small random networks,
// with hivemind's accuracy bars of test_dht_node (top-1 ≥ 0.8, Jaccard ≥ 0.9).
func TestTraverseOracle(t *testing.T) {
	tests := []struct {
		name                         string
		nodes, k, beam, workers, qpc int
		queries                      int
	}{
		{name: "one query one worker", nodes: 200, k: 5, beam: 10, workers: 1, qpc: 1, queries: 1},
		{name: "many queries batched", nodes: 300, k: 5, beam: 10, workers: 4, qpc: 4, queries: 16},
		{name: "wide beam", nodes: 500, k: 8, beam: 20, workers: 8, qpc: 2, queries: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.nodes)))
			g := newKademliaGraph(rng, tc.nodes, tc.k)
			var top1, jac float64
			var total int
			for round := range 10 {
				var queries []ID
				for range tc.queries {
					queries = append(queries, randID(rng))
				}
				start := g.nodes[rng.IntN(len(g.nodes))]
				var mu sync.Mutex
				calls := map[ID]int{}
				res, err := traverse(t.Context(), traverseParams{
					queries:        queries,
					initial:        g.known[start],
					beamSize:       tc.beam,
					numWorkers:     tc.workers,
					queriesPerCall: tc.qpc,
					skip:           []ID{start},
					getNeighbors:   g.getNeighbors,
					found: func(q ID, nearest []ID) {
						mu.Lock()
						calls[q]++
						mu.Unlock()
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				others := slices.DeleteFunc(slices.Clone(g.nodes), func(n ID) bool { return n == start })
				for _, q := range queries {
					if calls[q] != 1 {
						t.Fatalf("round %d: found called %d times for a query", round, calls[q])
					}
					got := res[q].nearest
					if !slices.IsSortedFunc(got, func(a, b ID) int { return a.Xor(q).Cmp(b.Xor(q)) }) {
						t.Fatalf("round %d: nearest not sorted by distance", round)
					}
					if slices.Contains(got, start) {
						t.Fatalf("round %d: the skipped node is among the nearest", round)
					}
					want := nearestOf(others, q, tc.k)
					got = got[:min(tc.k, len(got))]
					if len(got) > 0 && got[0] == want[0] {
						top1++
					}
					jac += jaccard(got, want)
					total++
				}
			}
			top1 /= float64(total)
			jac /= float64(total)
			t.Logf("top-1 accuracy %.3f, Jaccard %.3f over %d queries", top1, jac, total)
			if top1 < 0.8 || jac < 0.9 {
				t.Errorf("accuracy too low: top-1 %.3f (want ≥ 0.8), Jaccard %.3f (want ≥ 0.9)", top1, jac)
			}
		})
	}
}

func TestTraverseEdgeCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	g := newKademliaGraph(rng, 50, 4)
	tests := []struct {
		name    string
		queries []ID
		initial []ID
	}{
		{name: "no queries", queries: nil, initial: g.nodes[:3]},
		{name: "no initial nodes", queries: []ID{randID(rng), randID(rng)}, initial: nil},
		{name: "duplicate queries", queries: []ID{g.nodes[5], g.nodes[5]}, initial: g.nodes[:2]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			found := map[ID]int{}
			res, err := traverse(t.Context(), traverseParams{
				queries: tc.queries, initial: tc.initial, beamSize: 4, numWorkers: 2, queriesPerCall: 2,
				getNeighbors: g.getNeighbors,
				found:        func(q ID, _ []ID) { found[q]++ },
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.queries {
				if found[q] != 1 {
					t.Errorf("found called %d times", found[q])
				}
				if _, ok := res[q]; !ok {
					t.Errorf("no result for a query")
				}
			}
		})
	}
}

// TestTraverseStop: a query whose getNeighbors says stop finishes at once and is never asked again.
func TestTraverseStop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	g := newKademliaGraph(rng, 100, 5)
	stopQ, otherQ := randID(rng), randID(rng)
	var mu sync.Mutex
	askedAfterStop := 0
	stopped := false
	_, err := traverse(t.Context(), traverseParams{
		queries: []ID{stopQ, otherQ}, initial: g.nodes[:5], beamSize: 10, numWorkers: 1, queriesPerCall: 2,
		getNeighbors: func(ctx context.Context, peer ID, queries []ID, round int) map[ID]neighborReply {
			out := g.getNeighbors(ctx, peer, queries, round)
			mu.Lock()
			defer mu.Unlock()
			for _, q := range queries {
				if q == stopQ {
					if stopped {
						askedAfterStop++
					}
					r := out[q]
					r.stop = true
					out[q] = r
					stopped = true
				}
			}
			return out
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if askedAfterStop != 0 {
		t.Errorf("stopped query asked %d more times", askedAfterStop)
	}
}

// TestTraverseCancel: cancelling the context cancels the calls in flight and returns promptly,
// leaving no goroutine behind (synctest fails on a leak).
func TestTraverseCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		g := newKademliaGraph(rng, 50, 4)
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{}, 16)
		var found int
		done := make(chan error)
		go func() {
			_, err := traverse(ctx, traverseParams{
				queries: []ID{randID(rng)}, initial: g.nodes[:8], beamSize: 8, numWorkers: 4, queriesPerCall: 1,
				getNeighbors: func(ctx context.Context, peer ID, queries []ID, _ int) map[ID]neighborReply {
					started <- struct{}{}
					<-ctx.Done()
					return nil
				},
				found: func(ID, []ID) { found++ },
			})
			done <- err
		}()
		synctest.Wait()
		if len(started) != 4 {
			t.Fatalf("%d calls in flight, want 4 (numWorkers)", len(started))
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("traverse returned %v, want context.Canceled", err)
		}
		if found != 0 {
			t.Errorf("found called %d times for a cancelled search", found)
		}
	})
}

// TestTraverseRounds: each call's round is its place on the critical path. A chain of nodes, each
// knowing only the next, is walked one call after another whatever the number of workers; nodes
// all known from the start are called NumWorkers at a time, a new call joining the next round as
// soon as an answer of the current one is in. Every call takes the same (virtual) second.
func TestTraverseRounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	nodes := make([]ID, 8)
	for i := range nodes {
		nodes[i] = randID(rng)
	}
	chain := func(_ context.Context, peer ID, queries []ID, _ int) map[ID]neighborReply {
		i := slices.Index(nodes, peer)
		if i+1 == len(nodes) {
			return nil
		}
		out := map[ID]neighborReply{}
		for _, q := range queries {
			out[q] = neighborReply{neighbors: []ID{nodes[i+1]}}
		}
		return out
	}
	silent := func(context.Context, ID, []ID, int) map[ID]neighborReply { return nil }
	tests := []struct {
		name       string
		initial    []ID
		numWorkers int
		neighbors  func(context.Context, ID, []ID, int) map[ID]neighborReply
		want       []int // the rounds of the calls, sorted
	}{
		{name: "chain, one worker", initial: nodes[:1], numWorkers: 1, neighbors: chain,
			want: []int{1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "chain, four workers", initial: nodes[:1], numWorkers: 4, neighbors: chain,
			want: []int{1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "all known, four workers", initial: nodes, numWorkers: 4, neighbors: silent,
			want: []int{1, 1, 1, 1, 2, 2, 2, 2}},
		{name: "all known, eight workers", initial: nodes, numWorkers: 8, neighbors: silent,
			want: []int{1, 1, 1, 1, 1, 1, 1, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var rounds []int
				_, err := traverse(t.Context(), traverseParams{
					queries: []ID{randID(rng)}, initial: tc.initial, beamSize: len(nodes), numWorkers: tc.numWorkers,
					queriesPerCall: 1,
					getNeighbors: func(ctx context.Context, peer ID, queries []ID, round int) map[ID]neighborReply {
						mu.Lock()
						rounds = append(rounds, round)
						mu.Unlock()
						time.Sleep(time.Second)
						return tc.neighbors(ctx, peer, queries, round)
					},
				})
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(rounds)
				if !slices.Equal(rounds, tc.want) {
					t.Errorf("rounds %v, want %v", rounds, tc.want)
				}
			})
		})
	}
}

// referenceNext is next as hivemind's traverse_dht does it (and as this package did before
// dropping stale candidates eagerly): it discards one visited candidate per call and sorts every
// other query to build the batch. TestTraverseMatchesReference checks next against it.
func referenceNext(t *traversal, anyActive bool) (peer ID, batch []ID, wait bool) {
	var chosen *queryState
	for _, q := range t.order {
		st := t.states[q]
		if st.finished || !t.hasCandidates(st) {
			continue
		}
		if chosen == nil || st.active < chosen.active ||
			(st.active == chosen.active && st.candidates.items[0].dist.Less(chosen.candidates.items[0].dist)) {
			chosen = st
		}
	}
	if chosen == nil {
		if anyActive {
			return ID{}, nil, true
		}
		for _, q := range t.order {
			if st := t.states[q]; !st.finished {
				t.finish(st)
			}
		}
		return ID{}, nil, false
	}
	e := heap.Pop(&chosen.candidates).(distEntry)
	ub, bounded := t.upperBound(chosen)
	beyond := bounded && e.dist.Cmp(ub) > 0
	if hasBit(t.visited[e.idx], chosen.pos) || beyond {
		if beyond && chosen.active == 0 {
			t.finish(chosen)
		}
		return ID{}, nil, false
	}
	batch = []ID{chosen.query}
	if t.p.queriesPerCall > 1 {
		var others []ID
		for _, q := range t.order {
			st := t.states[q]
			if st == chosen || st.finished {
				continue
			}
			if !hasBit(t.visited[e.idx], st.pos) {
				others = append(others, q)
			}
		}
		slices.SortFunc(others, func(a, b ID) int { return a.Xor(e.node).Cmp(b.Xor(e.node)) })
		batch = append(batch, others[:min(len(others), t.p.queriesPerCall-1)]...)
	}
	for _, q := range batch {
		st := t.states[q]
		st.active++
		setBit(t.visited[e.idx], st.pos)
	}
	return e.node, batch, false
}

// driveTraversal runs a traversal's pure state with up to workers calls in flight, answering the
// oldest call first, and returns every call (peer, then its batch) and each query's result.
func driveTraversal(p traverseParams, workers int, next func(*traversal, bool) (ID, []ID, bool)) ([][]ID, map[ID][]ID) {
	t := newTraversal(p)
	type call struct {
		peer  ID
		batch []ID
	}
	var calls [][]ID
	var inflight []call
	for t.unfinished > 0 {
		for len(inflight) < workers && t.unfinished > 0 {
			peer, batch, wait := next(t, len(inflight) > 0)
			if wait {
				break
			}
			if batch != nil {
				inflight = append(inflight, call{peer, batch})
				calls = append(calls, append([]ID{peer}, batch...))
			}
		}
		if len(inflight) == 0 {
			break
		}
		c := inflight[0]
		inflight = inflight[1:]
		if t.unfinished > 0 {
			t.apply(c.batch, p.getNeighbors(context.Background(), c.peer, c.batch, 0))
		}
	}
	results := map[ID][]ID{}
	for _, st := range t.list {
		results[st.query] = st.sortedNearest()
	}
	return calls, results
}

// TestTraverseMatchesReference: next makes exactly the calls hivemind's way of choosing makes
// (referenceNext), in the same order, and finds the same nodes, on random networks with many
// queries, several per call and several calls in flight.
func TestTraverseMatchesReference(t *testing.T) {
	tests := []struct {
		name                         string
		nodes, k, beam, qpc, queries int
		workers                      int
	}{
		{name: "small swarm, every node visited", nodes: 16, k: 20, beam: 20, qpc: 10, queries: 100, workers: 4},
		{name: "one worker", nodes: 200, k: 5, beam: 10, qpc: 4, queries: 64, workers: 1},
		{name: "many workers", nodes: 300, k: 6, beam: 12, qpc: 8, queries: 64, workers: 8},
		{name: "one query per call", nodes: 100, k: 5, beam: 8, qpc: 1, queries: 10, workers: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, uint64(tc.nodes)))
			g := newKademliaGraph(rng, tc.nodes, tc.k)
			queries := make([]ID, tc.queries)
			for i := range queries {
				queries[i] = randID(rng)
			}
			p := traverseParams{queries: queries, initial: g.nodes[:4], beamSize: tc.beam, numWorkers: tc.workers,
				queriesPerCall: tc.qpc, skip: g.nodes[4:5], getNeighbors: g.getNeighbors}
			gotCalls, got := driveTraversal(p, tc.workers, (*traversal).next)
			wantCalls, want := driveTraversal(p, tc.workers, referenceNext)
			if !slices.EqualFunc(gotCalls, wantCalls, slices.Equal[[]ID]) {
				t.Fatalf("%d calls, the reference made %d; first difference at call %d", len(gotCalls), len(wantCalls),
					firstDifferentCall(gotCalls, wantCalls))
			}
			for q, nearest := range want {
				if !slices.Equal(got[q], nearest) {
					t.Fatalf("query %s: nearest differ from the reference's", q)
				}
			}
			t.Logf("%d calls", len(gotCalls))
		})
	}
}

func firstDifferentCall(a, b [][]ID) int {
	for i := range min(len(a), len(b)) {
		if !slices.Equal(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}
