package dht

import (
	"container/heap"
	"context"
	"slices"
)

// traverseParams describe one multi-query beam search (hivemind's traverse_dht, spec §10).
type traverseParams struct {
	// queries are the IDs to search for; duplicates are ignored.
	queries []ID
	// initial seeds every query's candidate heap.
	initial []ID
	// beamSize is the number of nearest nodes kept per query (and the result length). ≥ 1.
	beamSize int
	// numWorkers is the number of concurrent getNeighbors calls. ≥ 1.
	numWorkers int
	// queriesPerCall caps the queries packed into one getNeighbors call. ≥ 1.
	queriesPerCall int
	// skip holds nodes that count as visited for every query from the start (the node itself):
	// they are never called nor returned among the nearest.
	skip []ID
	// getNeighbors asks peer for the neighbours of each query. It runs on its own goroutine,
	// possibly concurrently with other calls, and must return when ctx is done. A query missing
	// from the answer counts as "no neighbours, do not stop". round is the call's place on the
	// traversal's critical path: 1 for a call sent before any answer came back, else one more
	// than the deepest round among the answers (or failures) received before it was sent, so a
	// call of round r waited for a chain of r-1 earlier calls, one after another.
	getNeighbors func(ctx context.Context, peer ID, queries []ID, round int) map[ID]neighborReply
	// found, when set, is called exactly once for every query that finishes, the moment it does,
	// with its nearest nodes (nearest first, at most beamSize). It runs on the traversal goroutine:
	// it must not block (start a goroutine for slow work) and must not call back into the
	// traversal.
	found func(query ID, nearest []ID)
}

// neighborReply is one query's part of a getNeighbors answer.
type neighborReply struct {
	// neighbors are the nodes the peer knows near the query.
	neighbors []ID
	// stop ends the search for this query (hivemind's should_stop: a GET found its value).
	stop bool
}

// traverseResult is the outcome of a traversal for one query (hivemind's traverse_dht also returns
// the nodes each query visited; no caller here reads them).
type traverseResult struct {
	// nearest are the beamSize nearest nodes found, nearest first.
	nearest []ID
}

// traverse runs the beam search and returns the result of every query. It returns only after
// every getNeighbors call it started has returned, so it leaves no goroutine behind; once all
// queries are finished, answers still in flight are awaited but ignored.
//
// On cancellation of ctx it cancels the calls in flight, waits for them and returns ctx.Err();
// queries that had not finished then get no found callback.
func traverse(ctx context.Context, p traverseParams) (map[ID]traverseResult, error) {
	t := newTraversal(p)
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	type answer struct {
		queries []ID
		reply   map[ID]neighborReply
		round   int
	}
	answers := make(chan answer, p.numWorkers)
	inflight := 0
	deepest := 0 // the deepest round answered so far
	for {
		for t.unfinished > 0 && inflight < p.numWorkers {
			peer, batch, wait := t.next(inflight > 0)
			if wait {
				break
			}
			if batch == nil {
				continue
			}
			inflight++
			round := deepest + 1
			go func() {
				answers <- answer{queries: batch, reply: p.getNeighbors(callCtx, peer, batch, round), round: round}
			}()
		}
		if inflight == 0 {
			break // every query finished: next finishes them all when nothing is left to do
		}
		select {
		case a := <-answers:
			inflight--
			deepest = max(deepest, a.round)
			if t.unfinished > 0 {
				t.apply(a.queries, a.reply)
			}
		case <-ctx.Done():
			cancel()
			for ; inflight > 0; inflight-- {
				<-answers
			}
			return nil, ctx.Err()
		}
	}
	out := make(map[ID]traverseResult, len(t.order))
	for _, st := range t.list {
		out[st.query] = traverseResult{nearest: st.sortedNearest()}
	}
	return out, nil
}

// traversal is the pure state of a traverse: no goroutines, no locks, no I/O.
//
// Which queries know of a node and which have visited it are bitsets over the queries, one pair per
// node the traversal has seen: a call's batch is chosen among every query, and a set per query
// (a map) made that choice cost a hash lookup per query and call.
type traversal struct {
	p          traverseParams
	order      []ID          // distinct queries in the caller's order (ties in priority go to the first)
	list       []*queryState // their states, in the same order (a state's pos is its index)
	states     map[ID]*queryState
	unfinished int
	others     distHeap // nearestOthers' scratch space: the nearest queries so far, farthest on top

	nodeIndex map[ID]int32 // index of every node seen
	known     [][]uint64   // by node index: the queries that know of the node
	visited   [][]uint64   // by node index: the queries that have visited it (or skip it)
	words     int          // length of each bitset
}

type queryState struct {
	query      ID
	pos        int      // index in traversal.list, its bit in the node bitsets
	candidates distHeap // unvisited nodes, nearest on top
	nearest    distHeap // at most beamSize nodes, farthest on top
	active     int
	finished   bool
}

func newTraversal(p traverseParams) *traversal {
	t := &traversal{p: p, states: make(map[ID]*queryState, len(p.queries)), nodeIndex: make(map[ID]int32),
		others: distHeap{farthestFirst: true}}
	for _, q := range p.queries {
		if _, dup := t.states[q]; dup {
			continue
		}
		st := &queryState{query: q, pos: len(t.list), nearest: distHeap{farthestFirst: true}}
		t.states[q] = st
		t.order = append(t.order, q)
		t.list = append(t.list, st)
	}
	t.words = (len(t.list) + 63) / 64
	for _, st := range t.list {
		for _, s := range p.skip {
			i := t.index(s)
			setBit(t.visited[i], st.pos)
			setBit(t.known[i], st.pos)
		}
		for _, n := range p.initial {
			i := t.index(n)
			if hasBit(t.known[i], st.pos) {
				continue
			}
			setBit(t.known[i], st.pos)
			e := distEntry{dist: n.Xor(st.query), node: n, idx: i}
			st.candidates.items = append(st.candidates.items, e)
			st.nearest.items = append(st.nearest.items, e)
		}
		heap.Init(&st.candidates)
		heap.Init(&st.nearest)
		for st.nearest.Len() > p.beamSize {
			heap.Pop(&st.nearest)
		}
	}
	t.unfinished = len(t.order)
	return t
}

// index returns node's index, giving it one (and its empty bitsets) on first sight.
func (t *traversal) index(node ID) int32 {
	if i, ok := t.nodeIndex[node]; ok {
		return i
	}
	i := int32(len(t.known))
	t.nodeIndex[node] = i
	sets := make([]uint64, 2*t.words)
	t.known = append(t.known, sets[:t.words:t.words])
	t.visited = append(t.visited, sets[t.words:])
	return i
}

func hasBit(set []uint64, pos int) bool { return set[pos>>6]&(1<<(pos&63)) != 0 }
func setBit(set []uint64, pos int)      { set[pos>>6] |= 1 << (pos & 63) }

// upperBound returns the distance of the farthest of the beamSize nearest, or ok=false (+inf)
// while fewer are known.
func (t *traversal) upperBound(st *queryState) (ID, bool) {
	if st.nearest.Len() >= t.p.beamSize {
		return st.nearest.items[0].dist, true
	}
	return ID{}, false
}

func (t *traversal) hasCandidates(st *queryState) bool {
	if st.candidates.Len() == 0 {
		return false
	}
	ub, bounded := t.upperBound(st)
	return !bounded || st.candidates.items[0].dist.Cmp(ub) <= 0
}

// next performs steps 1-5 of a worker: choose a query, pop its nearest candidate and build the
// batch. It returns wait=true when nothing can be explored until a call in flight answers, and a
// nil batch when the popped candidate was discarded (the caller simply retries). When nothing is
// left anywhere and nothing is in flight it finishes every query.
//
// Candidates a query has visited since they were queued (another query's call took them along)
// are dropped from the top of its heap while choosing: hivemind pops and discards them one next()
// at a time, and each would cost a scan of every query; dropping them first chooses the same
// query and node (a query's key only grows as stale tops go, and the query finally chosen has a
// live top either way), in one scan.
func (t *traversal) next(anyActive bool) (peer ID, batch []ID, wait bool) {
	var chosen *queryState
	for _, st := range t.list {
		if st.finished {
			continue
		}
		t.dropVisited(st)
		if !t.hasCandidates(st) {
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
		for _, st := range t.list {
			if !st.finished {
				t.finish(st)
			}
		}
		return ID{}, nil, false
	}

	e := heap.Pop(&chosen.candidates).(distEntry)
	ub, bounded := t.upperBound(chosen)
	beyond := bounded && e.dist.Cmp(ub) > 0
	if seen := hasBit(t.visited[e.idx], chosen.pos); seen || beyond {
		if beyond && chosen.active == 0 {
			t.finish(chosen)
		}
		return ID{}, nil, false
	}

	batch = []ID{chosen.query}
	if t.p.queriesPerCall > 1 {
		batch = append(batch, t.nearestOthers(chosen, e.node, e.idx, t.p.queriesPerCall-1)...)
	}
	for _, q := range batch {
		st := t.states[q]
		st.active++
		setBit(t.visited[e.idx], st.pos)
	}
	return e.node, batch, false
}

// nearestOthers returns the k unfinished queries other than chosen that have not visited node,
// nearest to node first (hivemind sorts them all and takes the first k; a bounded heap selects the
// same ones).
func (t *traversal) nearestOthers(chosen *queryState, node ID, idx int32, k int) []ID {
	h := &t.others
	h.items = h.items[:0]
	visited := t.visited[idx]
	for _, st := range t.list {
		if st == chosen || st.finished || hasBit(visited, st.pos) {
			continue
		}
		e := distEntry{dist: st.query.Xor(node), node: st.query}
		if h.Len() < k {
			heap.Push(h, e)
		} else if e.dist.Less(h.items[0].dist) {
			h.items[0] = e
			heap.Fix(h, 0)
		}
	}
	out := make([]ID, h.Len())
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(h).(distEntry).node
	}
	return out
}

// dropVisited pops the candidates on top of st's heap that it has visited already.
func (t *traversal) dropVisited(st *queryState) {
	for st.candidates.Len() > 0 && hasBit(t.visited[st.candidates.items[0].idx], st.pos) {
		heap.Pop(&st.candidates)
	}
}

// apply performs steps 7-8: merge one call's answer into the heaps.
func (t *traversal) apply(batch []ID, reply map[ID]neighborReply) {
	for _, q := range batch {
		st := t.states[q]
		r := reply[q]
		if r.stop && !st.finished {
			t.finish(st)
		}
		if st.finished {
			continue
		}
		for _, n := range r.neighbors {
			i := t.index(n)
			if hasBit(t.known[i], st.pos) {
				continue
			}
			setBit(t.known[i], st.pos)
			e := distEntry{dist: n.Xor(q), node: n, idx: i}
			ub, bounded := t.upperBound(st)
			if !bounded || e.dist.Cmp(ub) <= 0 || st.nearest.Len() < t.p.beamSize {
				heap.Push(&st.candidates, e)
				heap.Push(&st.nearest, e)
				if st.nearest.Len() > t.p.beamSize {
					heap.Pop(&st.nearest)
				}
			}
		}
	}
	for _, q := range batch {
		t.states[q].active--
	}
}

func (t *traversal) finish(st *queryState) {
	st.finished = true
	t.unfinished--
	if t.p.found != nil {
		t.p.found(st.query, st.sortedNearest())
	}
}

// sortedNearest returns the query's nearest nodes, nearest first.
func (st *queryState) sortedNearest() []ID {
	entries := slices.Clone(st.nearest.items)
	slices.SortFunc(entries, func(a, b distEntry) int { return a.dist.Cmp(b.dist) })
	out := make([]ID, len(entries))
	for i, e := range entries {
		out[i] = e.node
	}
	return out
}

// distEntry is a node and its XOR distance to a query. For one query, equal distances mean equal
// nodes, so the order is total.
type distEntry struct {
	dist ID
	node ID
	idx  int32 // the node's index in its traversal (unused in traversal.others)
}

// distHeap is a heap of distEntry: nearest on top, or farthest on top when farthestFirst is set.
type distHeap struct {
	items         []distEntry
	farthestFirst bool
}

func (h *distHeap) Len() int { return len(h.items) }
func (h *distHeap) Less(i, j int) bool {
	if h.farthestFirst {
		return h.items[j].dist.Less(h.items[i].dist)
	}
	return h.items[i].dist.Less(h.items[j].dist)
}
func (h *distHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *distHeap) Push(x any)    { h.items = append(h.items, x.(distEntry)) }
func (h *distHeap) Pop() any {
	last := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return last
}
