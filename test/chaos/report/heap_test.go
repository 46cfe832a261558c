package report

import (
	"runtime"
	"testing"
)

// TestHeapSampler: the peak counts what the scenario holds at a sample, and Stop may be called
// again (a deferred Stop after the test's own).
func TestHeapSampler(t *testing.T) {
	h := StartHeapSampler()
	defer h.Stop()
	held := make([]byte, 64<<20)
	for i := range held {
		held[i] = byte(i)
	}
	h.Sample()
	runtime.KeepAlive(held)
	peak, growth := h.Stop()
	if growth < 32<<20 || peak < growth {
		t.Fatalf("peak %d, growth %d: want a growth of at least the 64 MiB held", peak, growth)
	}
	if again, _ := h.Stop(); again < peak {
		t.Fatalf("a second Stop: peak %d, below the first's %d", again, peak)
	}
}
