package report

import (
	"runtime"
	"sync"
	"time"
)

// HeapSampler measures the table's "heap" memory, the same way for every suite that reports it
// (MemoryKind "heap"): the peak of the Go heap in use (runtime.MemStats.HeapInuse) of the test
// process, which hosts the attacked or simulated nodes, sampled every 25 ms from StartHeapSampler
// to Stop. The baseline is taken after a garbage collection, so Stop's growth is what the scenario
// added.
type HeapSampler struct {
	mu   sync.Mutex
	peak uint64
	base uint64
	done chan struct{}
	stop sync.Once
	wg   sync.WaitGroup
}

// heapSampleEvery is the sampling period: short enough to catch a flood's peak, cheap enough
// (ReadMemStats stops the world briefly) not to slow the scenario.
const heapSampleEvery = 25 * time.Millisecond

// StartHeapSampler starts sampling until Stop; defer a Stop right away, so that a test that fails
// before its own Stop leaves no sampling goroutine behind (in a synctest bubble, one left would turn
// the failure into a deadlock panic).
func StartHeapSampler() *HeapSampler {
	runtime.GC()
	h := &HeapSampler{base: heapInUse(), done: make(chan struct{})}
	h.peak = h.base
	h.wg.Go(func() {
		tick := time.NewTicker(heapSampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				h.Sample()
			case <-h.done:
				return
			}
		}
	})
	return h
}

// Sample takes one sample now (in addition to the periodic ones), e.g. at a phase boundary.
func (h *HeapSampler) Sample() {
	v := heapInUse()
	h.mu.Lock()
	h.peak = max(h.peak, v)
	h.mu.Unlock()
}

// Stop ends sampling and returns the peak heap in use and its growth over the baseline, in bytes.
// It may be called more than once: a later call samples once more.
func (h *HeapSampler) Stop() (peak, growth uint64) {
	h.stop.Do(func() { close(h.done) })
	h.wg.Wait()
	h.Sample()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak, h.peak - h.base
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
