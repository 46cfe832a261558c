package dht

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/hivemind-go/hivemind/proto/dhtpb"
)

// This file is hivemind's DHTProtocol (spec §3): the client side of the three RPCs (callPing,
// callStore, callFind), the handlers (HandlePing, HandleStore, HandleFind) and the routing-table
// update that follows every request and response.

// rpc sends one request under the ParallelRPC semaphore with a WaitTimeout deadline, also
// cancelled when the node closes. Every error wraps ErrNoResponse.
func rpc[Req, Resp any](ctx context.Context, n *Node, kind rpcKind, peer PeerID, req Req,
	send func(context.Context, PeerID, Req) (Resp, error),
) (Resp, error) {
	var zero Resp
	if peer == n.self {
		return zero, fmt.Errorf("%w: refusing to call ourselves", ErrNoResponse)
	}
	if n.sem != nil {
		select {
		case n.sem <- struct{}{}:
			defer func() { <-n.sem }()
		case <-ctx.Done():
			return zero, fmt.Errorf("%w: %w", ErrNoResponse, ctx.Err())
		}
	}
	ctx, cancel := n.withLifetime(ctx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, n.cfg.WaitTimeout)
	defer cancelTimeout()
	n.stats.sent[kind].Add(1)
	resp, err := send(ctx, peer, req) // a nil response reads as empty: protobuf getters are nil-safe
	if err != nil {
		n.stats.failed[kind].Add(1)
		if !errors.Is(err, ErrNoResponse) {
			err = fmt.Errorf("%w: %w", ErrNoResponse, err)
		}
		return zero, err
	}
	return resp, nil
}

// peerFailed reports whether a call that failed with err is the peer's fault: it is not when our
// own context (the caller's, or the node's lifetime) ended first, nor when the call never left
// because no address is known for the peer (ErrNoAddress: our missing knowledge, e.g. a fresh node
// whose peer routing is not ready yet). Only the peer's faults evict it from the routing table and
// ban it.
func (n *Node) peerFailed(ctx context.Context, err error) bool {
	return ctx.Err() == nil && n.lifetime.Err() == nil && !errors.Is(err, ErrNoAddress)
}

// parseNodeInfo returns the node ID a NodeInfo carries; ok is false for a missing or empty one
// (client mode: "do not add me"). An ID of more than 160 bits is an error.
func parseNodeInfo(info *dhtpb.NodeInfo) (id ID, ok bool, err error) {
	raw := info.GetNodeId()
	if len(raw) == 0 {
		return ID{}, false, nil
	}
	id, err = IDFromBytes(raw)
	if err != nil {
		return ID{}, false, fmt.Errorf("%w: sender node id: %w", ErrInvalidArgument, err)
	}
	return id, true, nil
}

// callPing pings peer and returns its node ID (hivemind's call_ping). An error wraps ErrNoResponse
// when the peer did not answer or answered without a node ID (a client-mode node). With validate,
// the peer must be able to reach us (unless we are in client mode) and its dht_time must lie within
// MaxClockDiscrepancy of our request's round trip: a failure is an error wrapping ErrValidation
// when strict, a warning otherwise.
func (n *Node) callPing(ctx context.Context, peer PeerID, validate, strict bool) (ID, error) {
	req := &dhtpb.PingRequest{Peer: n.nodeInfo(), Validate: validate}
	requested := n.now()
	resp, err := rpc(ctx, n, rpcPing, peer, req, n.tr.Ping)
	responded := n.now()
	if err != nil {
		if n.peerFailed(ctx, err) {
			n.updateRoutingTable(nil, peer, false)
		}
		return ID{}, err
	}
	id, ok, err := parseNodeInfo(resp.GetPeer())
	if err != nil || !ok {
		n.updateRoutingTable(nil, peer, false)
		if err != nil {
			return ID{}, fmt.Errorf("%w: %w", ErrNoResponse, err)
		}
		return ID{}, fmt.Errorf("%w: the peer answered without a node ID (client mode)", ErrNoResponse)
	}
	if validate {
		var verr error
		switch t := resp.GetDhtTime(); {
		case !n.cfg.ClientMode && !resp.GetAvailable():
			verr = fmt.Errorf("%w: peer %s cannot reach this node (libp2p probably failed to bypass a firewall)",
				ErrValidation, fmtPeer(peer))
		case t != 0 && (math.IsNaN(t) || t < requested-MaxClockDiscrepancy || t > responded+MaxClockDiscrepancy):
			verr = fmt.Errorf("%w: local time must be within %v seconds of others (local %.5f, peer %s: %.5f)",
				ErrValidation, MaxClockDiscrepancy, requested, fmtPeer(peer), t)
		}
		if verr != nil {
			if strict {
				return ID{}, verr
			}
			n.log.Warn("dht: ping validation failed", "err", verr)
		}
	}
	n.updateRoutingTable(&id, peer, true)
	return id, nil
}

// HandlePing answers a ping (hivemind's rpc_ping): our NodeInfo, our DHT time and, for a
// validating sender, whether we could ping it back under the node ID it announced. A sender with a
// node ID is added to the routing table (if it validated, only when the ping-back succeeded).
func (n *Node) HandlePing(ctx context.Context, from PeerID, req *dhtpb.PingRequest) (*dhtpb.PingResponse, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	n.stats.served[rpcPing].Add(1)
	resp := &dhtpb.PingResponse{Peer: n.nodeInfo(), DhtTime: n.now()}
	sender, ok, err := parseNodeInfo(req.GetPeer())
	if err != nil {
		return nil, err
	}
	if ok {
		if req.GetValidate() {
			got, err := n.callPing(ctx, from, false, true)
			resp.Available = err == nil && got == sender
		}
		n.updateRoutingTable(&sender, from, resp.Available || !req.GetValidate())
	}
	return resp, nil
}

// noteSender adds the sender of a STORE or FIND to the routing table, like hivemind's rpc_ping
// without validation; a client-mode sender (empty NodeInfo) is not added.
func (n *Node) noteSender(from PeerID, info *dhtpb.NodeInfo) error {
	sender, ok, err := parseNodeInfo(info)
	if err != nil {
		return err
	}
	if ok {
		n.updateRoutingTable(&sender, from, true)
	}
	return nil
}

// updateRoutingTable is hivemind's update_routing_table (spec §3.6), called after every request
// we receive from a node and every answer (or failure) of a node we called. nodeID nil means
// "look it up by peer". A node that answered is added or refreshed; a node new to the table is
// sent, in the background, the records it should now store; when its bucket is full the least
// recently seen node is pinged in the background (Kademlia eviction). A node that failed is
// removed. The table is touched under the lock; the selection of the records to hand over and the
// RPCs run on tracked goroutines (handoff.go).
//
// Two rules hivemind lacks keep one peer from holding more than its own slot:
//
//   - A peer holds at most one node ID in the table. A peer that announces a node ID other than
//     the one the table holds for it replaces it: the old ID is deleted (its bucket promotes a
//     replacement) and the new one added as a node new to the table. In hivemind each new ID is
//     one more entry, so one peer pinging under many IDs takes many slots, and with them every
//     replica slot of the keys near those IDs. Replacing rather than ignoring the new ID keeps a
//     node that restarts with a fresh ID (hivemind's default) on its true position at once; a
//     peer's announced ID cannot be verified either way (a ping-back only repeats the peer's
//     claim), and a peer could pick any ID at start anyway. The table itself keeps hivemind's
//     data-structure semantics (vectors/routing.json: a node ID re-added under a new peer); the
//     rule lives here, on the one path by which the Node adds nodes.
//   - A failure removes an ID only while the table holds it under the peer that failed. hivemind
//     deletes it whatever peer it is held under: through a stale peer → ID entry (a node that
//     moved to a new peer), and for any ID a validating ping claims, so a peer that fails its
//     ping-back under an honest node's ID evicts that node.
func (n *Node) updateRoutingTable(nodeID *ID, peer PeerID, responded bool) {
	if peer == n.self {
		return
	}
	now := n.now()
	n.mu.Lock()
	var id ID
	known := nodeID != nil
	if known {
		id = *nodeID
	} else {
		id, known = n.table.IDByPeer(peer)
	}
	if !known || id == n.id {
		n.mu.Unlock()
		return
	}
	if !responded {
		if holder, ok := n.table.PeerByID(id); ok && holder == peer {
			n.table.Delete(id)
			n.noteIfLonelyLocked()
		}
		n.mu.Unlock()
		return
	}
	if old, ok := n.table.idHeldBy(peer); ok && old != id {
		n.table.Delete(old) // one node ID per peer: the newest announcement wins
	}
	startHandoff := false
	if _, inTable := n.table.PeerByID(id); !inTable {
		startHandoff = n.queueHandoffLocked(Contact{ID: id, Peer: peer}, now)
	}
	toPing, ping := n.table.Add(id, peer, now)
	n.mu.Unlock()

	if startHandoff {
		n.spawn(n.handoffLoop)
	}
	if ping {
		n.spawn(func(ctx context.Context) { _, _ = n.callPing(ctx, toPing.Peer, false, true) })
	}
}

// callStore asks peer to store items (hivemind's call_store) in its storage, or in its cache for
// the items marked inCache. It returns the peer's per-item answers, or an error wrapping
// ErrNoResponse.
func (n *Node) callStore(ctx context.Context, peer PeerID, items []wireItem) ([]bool, error) {
	req := &dhtpb.StoreRequest{
		Keys:           make([][]byte, len(items)),
		Subkeys:        make([][]byte, len(items)),
		Values:         make([][]byte, len(items)),
		ExpirationTime: make([]float64, len(items)),
		InCache:        make([]bool, len(items)),
		Peer:           n.nodeInfo(),
	}
	for i, it := range items {
		req.Keys[i] = it.key.Bytes()
		req.Subkeys[i] = it.tag
		req.Values[i] = it.value
		req.ExpirationTime[i] = it.expiration
		req.InCache[i] = it.inCache
	}
	resp, err := rpc(ctx, n, rpcStore, peer, req, n.tr.Store)
	if err != nil {
		if n.peerFailed(ctx, err) {
			n.updateRoutingTable(nil, peer, false)
		}
		return nil, err
	}
	if id, ok, err := parseNodeInfo(resp.GetPeer()); err == nil && ok {
		n.updateRoutingTable(&id, peer, true)
	}
	return resp.GetStoreOk(), nil
}

// HandleStore stores every item of a request (hivemind's rpc_store) and answers one boolean per
// item: true when stored. An item is refused when its record fails validation, its expiration is
// not finite, already past or beyond MaxExpirationHorizon (for a whole dictionary: any of its live
// subkeys'), something newer is stored, the local storage is full, or the Persister failed to
// write it (items for the storage, not the cache). A whole
// dictionary (empty subkey tag) stores every subkey and answers their AND (quirk Q2 fixed:
// hivemind stops at the first rejected subkey). Stored items are charged to the sender's account
// (LocalStorage's fair eviction: a full storage evicts from the peer holding the largest share); an
// item stored and evicted later was still answered true, as in hivemind, but an item the full
// storage would evict at once is answered false, where hivemind answers true and drops it
// (TimedStorage's documentation). A request whose fields
// are misaligned or that carries more than MaxRequestItems items is an error.
func (n *Node) HandleStore(ctx context.Context, from PeerID, req *dhtpb.StoreRequest) (*dhtpb.StoreResponse, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	n.stats.served[rpcStore].Add(1)
	keys := req.GetKeys()
	if len(keys) > n.cfg.MaxRequestItems {
		return nil, fmt.Errorf("%w: %d items in one store, the limit is %d", ErrInvalidArgument, len(keys), n.cfg.MaxRequestItems)
	}
	if len(req.GetSubkeys()) != len(keys) || len(req.GetValues()) != len(keys) ||
		len(req.GetExpirationTime()) != len(keys) || len(req.GetInCache()) != len(keys) {
		return nil, fmt.Errorf("%w: store request fields are not aligned (%d keys, %d subkeys, %d values, %d expirations, %d in_cache)",
			ErrInvalidArgument, len(keys), len(req.GetSubkeys()), len(req.GetValues()),
			len(req.GetExpirationTime()), len(req.GetInCache()))
	}
	if err := n.noteSender(from, req.GetPeer()); err != nil {
		return nil, err
	}
	now := n.now()
	limit := n.expirationLimit(now)
	writes := make([]*localWrite, len(keys))
	beyond := 0
	for i, rawKey := range keys {
		key, err := IDFromBytes(rawKey)
		if err != nil {
			continue // a key of more than 160 bits cannot be stored
		}
		it := wireItem{key: key, tag: req.Subkeys[i], value: req.Values[i], expiration: req.ExpirationTime[i]}
		if it.expiration > limit {
			beyond++
			continue
		}
		w := n.prepareReceived(from, rawKey, it, req.InCache[i])
		if w != nil && w.dict != nil && latestLiveExpiration(w.dict, now) > limit {
			beyond++
			continue
		}
		writes[i] = w
	}
	if beyond > 0 {
		n.log.Debug("dht: refused stored items expiring beyond the horizon", "from", fmtPeer(from),
			"items", beyond, "horizon", n.cfg.MaxExpirationHorizon)
	}
	return &dhtpb.StoreResponse{StoreOk: n.applyWrites(writes), Peer: n.nodeInfo()}, nil
}

// expirationLimit returns the latest expiration an inbound STORE may set at now: now plus
// MaxExpirationHorizon and MaxClockDiscrepancy (the sender's clock may run ahead of ours), or +Inf
// when the horizon is disabled.
func (n *Node) expirationLimit(now float64) float64 {
	if n.cfg.MaxExpirationHorizon < 0 {
		return math.Inf(1)
	}
	return now + seconds(n.cfg.MaxExpirationHorizon) + MaxClockDiscrepancy
}

// latestLiveExpiration returns the latest expiration among d's subkeys live at now (the ones a
// store keeps), -Inf for none. d's own LatestExpiration comes from the wire and is not trusted.
func latestLiveExpiration(d *DictionaryValue, now float64) float64 {
	latest := math.Inf(-1)
	for _, e := range d.Items(now) {
		latest = max(latest, e.Expiration)
	}
	return latest
}

// callFind asks peer for keys (hivemind's call_find): per key, the value it holds (validated; an
// invalid one counts as not found) and its nearest neighbours. Neighbours with malformed IDs, and
// ourselves, are left out. An error wraps ErrNoResponse.
func (n *Node) callFind(ctx context.Context, peer PeerID, keys []ID) ([]findAnswer, error) {
	req := &dhtpb.FindRequest{Keys: make([][]byte, len(keys)), Peer: n.nodeInfo()}
	for i, k := range keys {
		req.Keys[i] = k.Bytes()
	}
	resp, err := rpc(ctx, n, rpcFind, peer, req, n.tr.Find)
	if err != nil {
		if n.peerFailed(ctx, err) {
			n.updateRoutingTable(nil, peer, false)
		}
		return nil, err
	}
	if id, ok, err := parseNodeInfo(resp.GetPeer()); err == nil && ok {
		n.updateRoutingTable(&id, peer, true)
	}
	results := resp.GetResults()
	if len(results) != len(keys) {
		n.updateRoutingTable(nil, peer, false)
		return nil, fmt.Errorf("%w: %d results for %d keys", ErrNoResponse, len(results), len(keys))
	}
	out := make([]findAnswer, len(keys))
	// The keys of one answer name mostly the same few peers: each peer ID is made a string once.
	peerIDs := make(map[string]PeerID)
	for i, r := range results {
		ids, peers := r.GetNearestNodeIds(), r.GetNearestPeerIds()
		nearest := make([]Contact, 0, min(len(ids), len(peers)))
		for j := range min(len(ids), len(peers)) {
			id, err := IDFromBytes(ids[j])
			p, ok := peerIDs[string(peers[j])]
			if !ok {
				p = PeerID(peers[j])
				peerIDs[string(p)] = p
			}
			if err != nil || id == n.id || p == n.self || p == "" {
				continue
			}
			nearest = append(nearest, Contact{ID: id, Peer: p})
		}
		out[i] = findAnswer{nearest: nearest, value: n.receivedValue(keys[i], r)}
	}
	return out, nil
}

// HandleFind answers a FIND (hivemind's rpc_find): per key, the newer of what our storage and
// cache hold, and our BucketSize nearest neighbours excluding the requester (node ID 0 for a
// client-mode requester, as in hivemind). Values are served as stored, without validation.
func (n *Node) HandleFind(ctx context.Context, from PeerID, req *dhtpb.FindRequest) (*dhtpb.FindResponse, error) {
	if n.isClosed() {
		return nil, ErrShutdown
	}
	n.stats.served[rpcFind].Add(1)
	keys := req.GetKeys()
	if len(keys) > n.cfg.MaxRequestItems {
		return nil, fmt.Errorf("%w: %d keys in one find, the limit is %d", ErrInvalidArgument, len(keys), n.cfg.MaxRequestItems)
	}
	requester, _, err := parseNodeInfo(req.GetPeer())
	if err != nil {
		return nil, err
	}
	ids := make([]ID, len(keys))
	for i, raw := range keys {
		if ids[i], err = IDFromBytes(raw); err != nil {
			return nil, fmt.Errorf("%w: key %d: %w", ErrInvalidArgument, i, err)
		}
	}
	if err := n.noteSender(from, req.GetPeer()); err != nil {
		return nil, err
	}
	now := n.now()
	resp := &dhtpb.FindResponse{Results: make([]*dhtpb.FindResult, len(ids)), Peer: n.nodeInfo()}
	// The keys of one request mostly share their neighbours: each contact's bytes are made once
	// and shared by the results (the response is only marshalled).
	type wireContact struct{ id, peer []byte }
	contacts := make(map[ID]wireContact)
	for i, key := range ids {
		n.mu.Lock()
		v, found := n.localNewestLocked(key, now)
		nearest := n.table.NearestNeighbors(key, n.cfg.BucketSize, &requester)
		n.mu.Unlock()
		r := &dhtpb.FindResult{Type: dhtpb.ResultType_NOT_FOUND}
		if found {
			r.Type, r.Value, r.ExpirationTime = v.wire()
		}
		r.NearestNodeIds = make([][]byte, len(nearest))
		r.NearestPeerIds = make([][]byte, len(nearest))
		for j, c := range nearest {
			w, ok := contacts[c.ID]
			if !ok || string(w.peer) != string(c.Peer) {
				w = wireContact{id: c.ID.Bytes(), peer: []byte(c.Peer)}
				contacts[c.ID] = w
			}
			r.NearestNodeIds[j], r.NearestPeerIds[j] = w.id, w.peer
		}
		resp.Results[i] = r
	}
	return resp, nil
}

// wireItem is one record as a STORE carries it.
type wireItem struct {
	key        ID
	tag        []byte // TagRegular, TagDictionary (a whole dictionary) or msgpack(subkey)
	value      []byte // the (signed) msgpack value, or a packed dictionary
	expiration float64
	inCache    bool // store it in the peer's cache (callStore)
}

// batchSize is the item's share of a STORE's bytes as counted against maxStoreBatchBytes: its
// value, tag and key, and a margin for the expiration and the fields' framing.
func (it wireItem) batchSize() int { return len(it.value) + len(it.tag) + IDLen + 16 }

// findAnswer is one key's part of a FIND answer.
type findAnswer struct {
	value   *foundValue // nil: not found (or invalid)
	nearest []Contact
}

// validFloat reports whether an expiration is usable: finite.
func validFloat(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
