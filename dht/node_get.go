package dht

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/hivemind-go/hivemind/dht/msgpack"
)

// Get finds one key; see GetMany.
func (n *Node) Get(ctx context.Context, key Key, opts GetOptions) (*Result, error) {
	rs, err := n.GetMany(ctx, []Key{key}, opts)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// GetMany finds keys (hivemind's get_many, spec §2.6) and returns one result per key, aligned with
// keys; nil means not found. The local storage and cache are searched first; the keys still
// missing are searched for in the network, several keys per FIND. A key's search ends as soon as a
// value expiring at or after the sufficient expiration is found (default: now, i.e. any live
// value); with opts.Latest it never ends early, and dictionaries found at different replicas are
// merged subkey by subkey. Values failing validation count as not found.
//
// Concurrent GETs of the same key share results (unless DisableGetReuse): when one finishes, every
// pending GET of that key whose sufficient expiration it satisfies gets its value too. Found
// values are cached locally and pushed to the nearest nodes as configured. When ctx ends first,
// GetMany returns ctx's error and stops its searches.
func (n *Node) GetMany(ctx context.Context, keys []Key, opts GetOptions) ([]*Result, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	sufficient := opts.SufficientExpiration
	switch {
	case opts.Latest:
		sufficient = math.Inf(1)
	case math.IsNaN(sufficient):
		return nil, fmt.Errorf("%w: NaN sufficient expiration", ErrInvalidExpiration)
	case sufficient == 0:
		sufficient = n.now()
	}
	ids := make([]ID, 0, len(keys))
	for _, k := range keys {
		if id := k.ID(); !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	states, stop := n.search(ids, sufficient, false)
	byID := make(map[ID]*Result, len(states))
	rounds := 0
	for _, st := range states {
		select {
		case <-st.done:
			byID[st.key] = st.result
			rounds = max(rounds, st.rounds)
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-n.lifetime.Done():
			return nil, ErrShutdown
		}
	}
	if n.isClosed() { // the searches may have ended because the node closed
		return nil, ErrShutdown
	}
	out := make([]*Result, len(keys))
	for i, k := range keys {
		out[i] = byID[k.ID()]
	}
	var trace *opTrace
	if len(states) > 0 {
		trace = states[0].trace
	}
	n.stats.opDone(opGet, trace, rounds)
	return out, nil
}

// search starts the searches of ids (hivemind's get_many_by_id) and returns their states. stop
// abandons them: the network part of searches that have not finished stops and they finish with
// what they found so far. Once every state is done the lookup may still await FIND answers in
// flight (their routing-table updates are worth having); it then ends on its own, on a goroutine
// the node tracks. isRefresh marks a cache refresh: the local cache is not a candidate, a found
// value is always cached, and no further refresh is scheduled. The states of a caller's search
// (not a refresh) share one opTrace, and each notes its rounds when it finishes.
func (n *Node) search(ids []ID, sufficient float64, isRefresh bool) ([]*searchState, context.CancelFunc) {
	var trace *opTrace
	if !isRefresh {
		trace = &opTrace{}
	}
	states := make([]*searchState, len(ids))
	byID := make(map[ID]*searchState, len(ids))
	for i, id := range ids {
		states[i] = &searchState{
			key: id, sufficient: sufficient, isRefresh: isRefresh, validator: n.cfg.Validator, now: n.now,
			done: make(chan struct{}), trace: trace,
		}
		byID[id] = states[i]
	}
	reuse := !n.cfg.DisableGetReuse
	now := n.now()

	// Stage 1: the local storage and cache.
	type local struct{ stored, cached *foundValue }
	locals := make([]local, len(ids))
	n.mu.Lock()
	for i, st := range states {
		if reuse {
			n.pending[st.key] = append(n.pending[st.key], st)
		}
		if v, ok := n.localGetLocked(n.storage, st.key, now); ok {
			locals[i].stored = &v
		}
		if !isRefresh {
			if v, ok := n.localGetLocked(n.cache, st.key, now); ok {
				locals[i].cached = &v
			}
		}
	}
	n.mu.Unlock()
	for i, st := range states {
		n.offer(st, locals[i].stored, n.id)
		n.offer(st, locals[i].cached, n.id)
	}

	// Stage 2: the network, for the keys still unfinished.
	var unfinished []ID
	for _, st := range states {
		if !st.isFinished() {
			unfinished = append(unfinished, st.key)
		}
	}
	if len(unfinished) == 0 {
		return states, func() {}
	}
	book := newPeerBook()
	n.mu.Lock()
	for _, key := range unfinished {
		for _, c := range n.table.NearestNeighbors(key, n.cfg.BucketSize, &n.id) {
			book.add(c)
		}
	}
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(n.lifetime)
	started := n.spawn(func(context.Context) {
		defer cancel()
		_, _ = n.lookup(ctx, lookupParams{
			queries:        unfinished,
			beam:           n.cfg.BucketSize,
			queriesPerCall: min(int(math.Sqrt(float64(len(unfinished)))), n.cfg.ChunkSize),
			book:           book,
			trace:          trace,
			onValue: func(key ID, v *foundValue, source ID) bool {
				st := byID[key]
				n.offer(st, v, source)
				return st.isFinished()
			},
			found: func(key ID, nearest []ID) {
				st := byID[key]
				n.finishSearch(st)
				n.cacheNewResult(st, nearest, book, n.pushes)
			},
		})
		// Cancelled (or shut down) before the end: finish what is left, with no result.
		for _, key := range unfinished {
			n.finishSearch(byID[key])
		}
	})
	if !started {
		cancel()
		for _, key := range unfinished {
			n.finishSearch(byID[key])
		}
	}
	return states, cancel
}

// offer adds a candidate value to a search and runs the search's completion if that finished it.
func (n *Node) offer(st *searchState, v *foundValue, source ID) {
	if v == nil {
		return
	}
	if st.add(v, source, n.now()) {
		n.completeSearch(st)
	}
}

// finishSearch ends a search with what it has found.
func (n *Node) finishSearch(st *searchState) {
	if st.finish() {
		n.completeSearch(st)
	}
}

// completeSearch runs when a search has just finished (hivemind's done-callbacks): it schedules a
// cache refresh when the value came from this node's cache, and hands the result to every pending
// GET of the same key that it satisfies (reuse).
func (n *Node) completeSearch(st *searchState) {
	if !st.isRefresh && st.found && st.source == n.id && n.cfg.CacheRefreshBeforeExpiry > 0 {
		now := n.now()
		n.mu.Lock()
		inCache := n.cache.Contains(st.key, now)
		n.mu.Unlock()
		if inCache {
			n.scheduleRefresh(st.key, st.expiration-seconds(n.cfg.CacheRefreshBeforeExpiry))
		}
	}
	if n.cfg.DisableGetReuse {
		return
	}
	var reused []*searchState
	n.mu.Lock()
	list := slices.DeleteFunc(n.pending[st.key], func(p *searchState) bool { return p == st })
	if st.found {
		threshold := max(st.expiration, st.sufficient)
		list = slices.DeleteFunc(list, func(p *searchState) bool {
			if p.sufficient <= threshold {
				reused = append(reused, p)
				return true
			}
			return false
		})
	}
	if len(list) == 0 {
		delete(n.pending, st.key)
	} else {
		n.pending[st.key] = list
	}
	n.mu.Unlock()
	for _, p := range reused {
		if v := st.snapshot(); v != nil {
			n.offer(p, v, st.source)
		}
		n.finishSearch(p)
	}
}

// searchState is one key's GET in progress (hivemind's _SearchState). Its fields after done are
// read-only; before, they are guarded by mu.
type searchState struct {
	key        ID
	sufficient float64
	isRefresh  bool
	validator  RecordValidator
	now        func() float64
	done       chan struct{} // closed when finished
	trace      *opTrace      // the search's RPCs (nil for a cache refresh)
	rounds     int           // the trace's deepest round when the search finished

	mu         sync.Mutex
	finished   bool
	found      bool
	value      foundValue // best value so far (a dictionary owned by the state)
	expiration float64    // best expiration so far
	source     ID         // node that gave the best expiration
	result     *Result    // set when finished
}

func (st *searchState) isFinished() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.finished
}

// add offers a candidate (hivemind's add_candidate): two dictionaries merge subkey by subkey;
// otherwise a candidate with a later expiration replaces the value. It reports whether the
// candidate finished the search (its expiration reached the sufficient one). The state takes
// ownership of v's dictionary.
func (st *searchState) add(v *foundValue, source ID, now float64) (finishedNow bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.finished {
		return false
	}
	newer := !st.found || v.expiration > st.expiration
	switch {
	case v.dict != nil && st.found && st.value.dict != nil:
		mergeDictionary(st.value.dict, v.dict, now)
	case newer:
		st.value = *v
	}
	if newer {
		st.found = true
		st.expiration = v.expiration
		st.source = source
		if st.expiration >= st.sufficient {
			return st.finishLocked()
		}
	}
	return false
}

// finish ends the search (hivemind's finish_search) and reports whether this call ended it. The
// result strips the validator's signatures from every value.
func (st *searchState) finish() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.finishLocked()
}

func (st *searchState) finishLocked() bool {
	if st.finished {
		return false
	}
	st.finished = true
	st.rounds = st.trace.deepest()
	if st.found {
		st.result = st.value.result(st.key, st.expiration, st.validator, st.now())
	}
	close(st.done)
	return true
}

// snapshot returns a copy of the found value (nil when nothing was found).
func (st *searchState) snapshot() *foundValue {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.found {
		return nil
	}
	v := st.value.clone()
	v.expiration = st.expiration
	return &v
}

// stripRegular returns a regular value's bytes as a Result value, the signatures stripped.
func stripRegular(key ID, value []byte, expiration float64, validator RecordValidator) msgpack.Raw {
	if validator != nil {
		value = validator.StripValue(Record{Key: key.Bytes(), Subkey: []byte(TagRegular), Value: value, Expiration: expiration})
	}
	return msgpack.Raw(slices.Clone(value))
}
