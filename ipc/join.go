package ipc

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc/codes"
)

// joiner hands a worker that started alone the pool's peers (BootstrapFromPool). A slot starts
// alone when no other slot runs (it holds the seed claim, or it waited past the bound of
// seedClaim): its node has no pool peer among its initial peers, and would stay in a swarm of its
// own until its next restart. So from the moment it runs, whenever another slot runs, the worker is
// sent AddPeers with the visible multiaddrs of every other running slot: it joins their swarm, and
// keeps them as initial peers that its routing-table refresh re-contacts.
//
// It belongs to the slot's watch loop, which owns it: the loop selects on changes (look at the
// pool again) and result (the call in flight ended). The call runs on a goroutine of its own,
// bounded by StartTimeout and by the loop's ctx, so the loop never waits on an RPC; stop cancels it
// and waits for that goroutine. A failed call is logged and tried again at the next change of any
// slot's state; one that succeeds with at least one peer answering clears the slot's alone flag.
type joiner struct {
	s      *slot
	client *Client
	// active: the worker is alone and the slot still tries to join it to the pool's swarm.
	active bool
	// changes is closed at the next change of any slot's state; nil while inactive or while a
	// call is in flight.
	changes <-chan struct{}
	// result delivers the end of the call in flight; nil when none is.
	result chan joinResult
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type joinResult struct {
	maddrs []string
	res    AddPeersResult
	err    error
}

func newJoiner(s *slot, client *Client, alone bool) *joiner {
	return &joiner{s: s, client: client, active: alone, cancel: func() {}}
}

// look hands the worker the multiaddrs of the other running slots, if there are any, or waits for
// the next change of the pool. It does nothing while inactive or while a call is in flight.
func (j *joiner) look(ctx context.Context) {
	if !j.active || j.result != nil {
		j.changes = nil
		return
	}
	j.changes = j.s.pool.seed.next() // before looking: a change after the look closes it
	maddrs, ok := j.s.poolPeers()
	if !ok || len(maddrs) == 0 {
		return
	}
	j.changes = nil
	j.result = make(chan joinResult, 1)
	actx, cancel := context.WithTimeout(ctx, j.s.pool.cfg.StartTimeout)
	j.cancel = cancel
	j.wg.Go(func() {
		res, err := j.client.AddPeers(actx, maddrs)
		j.result <- joinResult{maddrs: maddrs, res: res, err: err}
	})
}

// finish handles the end of the call in flight.
func (j *joiner) finish(r joinResult) {
	j.cancel()
	j.result = nil
	log := j.s.log.With("maddrs", r.maddrs)
	var remote *RemoteError
	switch {
	case r.err == nil && r.res.Answered > 0:
		j.active = false
		j.s.publish(func(st *slotSnap) { st.alone = false })
		log.Info("worker started alone; joined the pool's swarm", "answered", r.res.Answered)
		return
	case errors.As(r.err, &remote) && remote.Code == codes.Unimplemented:
		j.active = false // a worker that predates AddPeers: it stays alone until its next restart
		log.Warn("worker started alone and cannot be handed the pool's peers (no AddPeers)", "error", r.err)
		return
	case r.err == nil:
		log.Warn("worker started alone; none of the pool's peers answered it; trying again at the next change",
			"peers", r.res.Peers)
	default:
		log.Warn("worker started alone; handing it the pool's peers failed; trying again at the next change",
			"error", r.err)
	}
	j.changes = j.s.pool.seed.next()
}

// stop cancels the call in flight, if any, and waits for it to return.
func (j *joiner) stop() {
	j.cancel()
	j.wg.Wait()
}
