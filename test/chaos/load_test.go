package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/ipc"
)

// hangMargin is how far past its deadline a call may return before it counts as hung: generous,
// for loaded CI machines under -race (a starved machine delays every goroutine by seconds). A
// liveness bound, not a performance target; the worst overrun is reported in the notes.
const hangMargin = 10 * time.Second

// errNotFound stands for a get of an acknowledged record that returned nothing (a valid answer
// from a swarm that lost or cannot reach the record, not an error of the API).
var errNotFound = errors.New("chaos: acknowledged record not found")

// errWrongValue marks a get that returned another value than the one acknowledged: it is not in
// sentinels, so it counts as unclear (and fails the scenario).
var errWrongValue = errors.New("chaos: wrong value")

// sentinels are the typed errors a failed call may carry (errors.Is); the first match names it.
var sentinels = []struct {
	name string
	err  error
}{
	{name: "ErrRestarting", err: ipc.ErrRestarting},
	{name: "ErrWorkerGone", err: ipc.ErrWorkerGone},
	{name: "ErrDeadlineExceeded", err: ipc.ErrDeadlineExceeded},
	{name: "ErrCanceled", err: ipc.ErrCanceled},
	{name: "ErrGaveUp", err: ipc.ErrGaveUp},
	{name: "ErrStopped", err: ipc.ErrStopped},
	{name: "ErrNotConfigured", err: ipc.ErrNotConfigured},
	{name: "ErrInvalidArgument", err: ipc.ErrInvalidArgument},
	{name: "ErrStartFailed", err: ipc.ErrStartFailed},
	{name: "dht.ErrNoResponse", err: dht.ErrNoResponse},
	{name: "dht.ErrShutdown", err: dht.ErrShutdown},
	{name: "dht.ErrBootstrapFailed", err: dht.ErrBootstrapFailed},
	{name: "dht.ErrStorageFull", err: dht.ErrStorageFull},
	{name: "ErrRemote", err: ipc.ErrRemote},
	{name: "not-found", err: errNotFound},
}

// sentinelName names err's sentinel, or "" for an untyped error.
func sentinelName(err error) string {
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return ""
}

// counts are call outcomes.
type counts struct {
	calls      int
	ok         int
	misses     int // a get of an acknowledged key that found nothing
	typed      int
	untyped    int
	hung       int
	overrun    time.Duration // the longest time a call returned past its deadline
	bySentinel map[string]int
	examples   []string // untyped and hung calls
}

// tally counts call outcomes. Safe for concurrent use.
type tally struct {
	mu sync.Mutex
	c  counts
}

func newTally() *tally { return &tally{c: counts{bySentinel: map[string]int{}}} }

// note classifies one finished call that took elapsed against its deadline.
func (t *tally) note(op string, err error, elapsed, deadline time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.c.calls++
	t.c.overrun = max(t.c.overrun, elapsed-deadline)
	if elapsed > deadline+hangMargin {
		t.c.hung++
		t.example(fmt.Sprintf("%s hung: %v for a %v deadline (err %v)", op, elapsed.Round(time.Millisecond), deadline, err))
	}
	if err == nil {
		t.c.ok++
		return
	}
	name := sentinelName(err)
	if name == "" {
		t.c.untyped++
		t.example(fmt.Sprintf("%s untyped error: %v", op, err))
		return
	}
	t.c.typed++
	t.c.bySentinel[name]++
}

func (t *tally) miss() {
	t.mu.Lock()
	t.c.misses++
	t.mu.Unlock()
}

func (t *tally) example(s string) {
	if len(t.c.examples) < 10 {
		t.c.examples = append(t.c.examples, s)
	}
}

// snapshot copies the counts.
func (t *tally) snapshot() counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.c
	c.bySentinel = make(map[string]int, len(t.c.bySentinel))
	for k, v := range t.c.bySentinel {
		c.bySentinel[k] = v
	}
	c.examples = slices.Clone(t.c.examples)
	return c
}

// sentinelSummary renders the sentinel counts, sorted by name, and the worst overrun of a deadline:
// "sentinels[ErrRestarting=3,...] worst-overrun=12ms".
func (t *tally) sentinelSummary() string {
	s := t.snapshot()
	var parts []string
	for k, v := range s.bySentinel {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return fmt.Sprintf("sentinels[%s] worst-overrun=%v", strings.Join(parts, ","), max(s.overrun, 0).Round(time.Millisecond))
}

// record is one acknowledged store: Stored was true.
type record struct {
	key   dht.Key
	value []byte // msgpack
	// how says where and when the store was acknowledged (slot, time, accepting replicas), for the
	// report of a lost record.
	how string
}

// acked describes an acknowledgement for record.how.
func acked(slot int, res dht.StoreResult) string {
	accepted := res.Accepted()
	return fmt.Sprintf("slot %d at %s, %d of %d replicas", slot, time.Now().Format("15:04:05.000"), accepted, len(res.Replicas))
}

// ledger holds every acknowledged record. Safe for concurrent use.
type ledger struct {
	mu   sync.Mutex
	recs []record
}

func (l *ledger) add(r record) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

func (l *ledger) all() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

func (l *ledger) pick(r *rand.Rand) (record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) == 0 {
		return record{}, false
	}
	return l.recs[r.IntN(len(l.recs))], true
}

// loadConfig shapes a load generator.
type loadConfig struct {
	// Callers is the number of concurrent callers. Default 4.
	Callers int
	// Deadline bounds each call. Default 3 s.
	Deadline time.Duration
	// StoreFraction of the calls are stores of new records; the others get acknowledged ones.
	// Default 0.3.
	StoreFraction float64
	// Pause between two calls of one caller. Default 10 ms.
	Pause time.Duration
}

func (c loadConfig) withDefaults() loadConfig {
	if c.Callers == 0 {
		c.Callers = 4
	}
	if c.Deadline == 0 {
		c.Deadline = 3 * time.Second
	}
	if c.StoreFraction == 0 {
		c.StoreFraction = 0.3
	}
	if c.Pause == 0 {
		c.Pause = 10 * time.Millisecond
	}
	return c
}

// load is continuous get/store traffic to random slots of a swarm.
type load struct {
	cfg      loadConfig
	sw       *swarm
	ledger   *ledger
	tally    *tally
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	inflight atomic.Int64
	seq      atomic.Int64
}

// startLoad starts cfg.Callers callers, each with its own RNG derived from seed.
func startLoad(ctx context.Context, sw *swarm, l *ledger, seed uint64, cfg loadConfig) *load {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(ctx)
	ld := &load{cfg: cfg, sw: sw, ledger: l, tally: newTally(), cancel: cancel}
	for i := range cfg.Callers {
		r := rand.New(rand.NewPCG(seed, uint64(i)+1))
		ld.wg.Go(func() { ld.caller(ctx, r) })
	}
	return ld
}

func (ld *load) caller(ctx context.Context, r *rand.Rand) {
	for ctx.Err() == nil {
		slot := r.IntN(ld.sw.pool.Len())
		if r.Float64() < ld.cfg.StoreFraction {
			ld.store(ctx, slot, r)
		} else if rec, ok := ld.ledger.pick(r); ok {
			ld.get(ctx, slot, rec)
		}
		select {
		case <-time.After(ld.cfg.Pause):
		case <-ctx.Done():
		}
	}
}

func (ld *load) store(ctx context.Context, slot int, r *rand.Rand) {
	n := ld.seq.Add(1)
	rec := record{key: dht.MustKey(fmt.Sprintf("load-%d-%d", n, r.Uint64())), value: mustPack(fmt.Sprintf("v%d", n))}
	ld.call(ctx, "Store", func(cctx context.Context) error {
		res, err := ld.sw.client(slot).Store(cctx, dht.StoreItem{Key: rec.key, Value: msgpack.Raw(rec.value), Expiration: exp()})
		if err == nil && res.Stored {
			rec.how = acked(slot, res)
			ld.ledger.add(rec)
		}
		return err
	})
}

func (ld *load) get(ctx context.Context, slot int, rec record) {
	ld.call(ctx, "Get", func(cctx context.Context) error {
		got, err := ld.sw.client(slot).Get(cctx, rec.key, dht.GetOptions{})
		switch {
		case err != nil:
		case got == nil:
			ld.tally.miss()
		case string(got.Value) != string(rec.value):
			// Each key is stored once: another value is a corrupted answer, never a valid one.
			return fmt.Errorf("%w: %s came back as %x, stored %x", errWrongValue, keyText(rec.key), got.Value, rec.value)
		}
		return err
	})
}

// call runs one call with the load's deadline and notes its outcome; calls cut short by the load
// stopping are not counted.
func (ld *load) call(ctx context.Context, op string, fn func(context.Context) error) {
	cctx, cancel := context.WithTimeout(ctx, ld.cfg.Deadline)
	defer cancel()
	ld.inflight.Add(1)
	defer ld.inflight.Add(-1)
	start := time.Now()
	err := fn(cctx)
	elapsed := time.Since(start)
	if ctx.Err() != nil && errors.Is(err, ipc.ErrCanceled) {
		return // the load stopped under it
	}
	ld.tally.note(op, err, elapsed, ld.cfg.Deadline)
}

// stop ends the load and waits for its callers; a caller still blocked deadline+margin later is a
// hung call (reported, and the test fails).
func (ld *load) stop() (hungAtStop int64) {
	ld.cancel()
	done := make(chan struct{})
	go func() {
		ld.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return 0
	case <-time.After(ld.cfg.Deadline + hangMargin):
		return ld.inflight.Load()
	}
}

func mustPack(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// seedRecords stores n records through random running slots, retrying each until acknowledged.
func seedRecords(ctx context.Context, sw *swarm, l *ledger, r *rand.Rand, n int, prefix string) error {
	for i := range n {
		rec := record{key: dht.MustKey(fmt.Sprintf("%s-%d", prefix, i)), value: mustPack(fmt.Sprintf("%s value %d", prefix, i))}
		for {
			running := sw.running()
			if len(running) == 0 {
				return fmt.Errorf("no running slot: %s", sw.describe())
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			slot := running[r.IntN(len(running))]
			res, err := sw.client(slot).Store(cctx, dht.StoreItem{Key: rec.key, Value: msgpack.Raw(rec.value), Expiration: exp()})
			cancel()
			if err == nil && res.Stored {
				rec.how = acked(slot, res)
				l.add(rec)
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("seeding %s: %w (last: %v)", prefix, ctx.Err(), err)
			}
		}
	}
	return nil
}

// keyText is a key's value for messages (its msgpack decoded, else hex).
func keyText(k dht.Key) string {
	if v, err := msgpack.Unmarshal(k.Data); err == nil {
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%x", k.Data)
}

// verifyResult is the outcome of reading every acknowledged record back.
type verifyResult struct {
	Checked, Lost int
	LostKeys      []string
	lost          []record // the records counted in Lost
}

// verifyRecordsWithin is verifyRecords for a swarm just healed from a partition: a node cut off
// stores records on itself alone (acknowledged, as in hivemind) and is back in the others' routing
// tables only once it rejoins (dht/refresh.go), so the records that none of the tries returned are
// read again, every second, until bound has passed since the first pass began; only those still
// unreadable then are lost. It also returns how long the last of them took to become readable.
func verifyRecordsWithin(ctx context.Context, sw *swarm, recs []record, r *rand.Rand, tries int, t *tally, bound time.Duration) (verifyResult, time.Duration) {
	start := time.Now()
	v := verifyRecords(ctx, sw, recs, r, tries, t)
	for v.Lost > 0 && time.Since(start) < bound && ctx.Err() == nil {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
		again := verifyRecords(ctx, sw, v.lost, r, tries, t)
		again.Checked = v.Checked
		v = again
	}
	return v, time.Since(start)
}

// verifyRecords reads every record back through up to `tries` different running slots (the slots in
// skip are avoided, e.g. one that is down on purpose); a record none of them returns with its value
// is lost. Calls are noted in t.
func verifyRecords(ctx context.Context, sw *swarm, recs []record, r *rand.Rand, tries int, t *tally, skip ...int) verifyResult {
	const parallel = 8
	const deadline = 5 * time.Second
	var (
		mu  sync.Mutex
		res = verifyResult{Checked: len(recs)}
		wg  sync.WaitGroup
		sem = make(chan struct{}, parallel)
	)
	// Each record's slot order is drawn up front, so the RNG is used by one goroutine only.
	orders := make([][]int, len(recs))
	for i := range recs {
		orders[i] = r.Perm(sw.pool.Len())
	}
	for i, rec := range recs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			found, calls := false, 0
			var seen []string // what each try returned, for the report of a lost record
			for _, slot := range orders[i] {
				if calls == tries || found {
					break
				}
				if slices.Contains(skip, slot) || !slices.Contains(sw.running(), slot) {
					continue
				}
				calls++
				cctx, cancel := context.WithTimeout(ctx, deadline)
				start := time.Now()
				got, err := sw.client(slot).Get(cctx, rec.key, dht.GetOptions{})
				cancel()
				t.note("verify Get", err, time.Since(start), deadline)
				found = err == nil && got != nil && string(got.Value) == string(rec.value)
				switch {
				case err != nil:
					seen = append(seen, fmt.Sprintf("slot %d: %v", slot, err))
				case got == nil:
					seen = append(seen, fmt.Sprintf("slot %d: not found", slot))
				case !found:
					seen = append(seen, fmt.Sprintf("slot %d: another value %x", slot, got.Value))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !found {
				res.Lost++
				res.lost = append(res.lost, rec)
				if len(res.LostKeys) < 5 {
					res.LostKeys = append(res.LostKeys, fmt.Sprintf("%s (stored through %s; read: %s)", keyText(rec.key), rec.how, strings.Join(seen, "; ")))
				}
			}
		})
	}
	wg.Wait()
	return res
}
