package ipc

import (
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPoolLoneSlotsJoinOnceAnotherRuns: slots that fell back to starting alone (the seed's launch
// overruns the bound) are each handed the other's multiaddrs once both run, so the two lone workers
// form one swarm; the seed, which later restarts from them, is handed nothing.
func TestPoolLoneSlotsJoinOnceAnotherRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLauncher(time.Second)
		l.stall["boot-1"] = time.Hour
		p := memPool(t, l, PoolConfig{
			Workers: 3, Name: "boot", BootstrapFromPool: true, StartTimeout: 10 * time.Second,
			Backoff: BackoffConfig{Initial: time.Second, Max: time.Second, Jitter: -1},
		})
		require.NoError(t, p.slots[1].waitRunning(t.Context()))
		require.NoError(t, p.slots[2].waitRunning(t.Context()))
		synctest.Wait()
		assert.Equal(t, [][]string{{memMaddr("boot-3")}}, l.addedPeers("boot-2"))
		assert.Equal(t, [][]string{{memMaddr("boot-2")}}, l.addedPeers("boot-3"))
		for _, st := range p.Status().Slots[1:] {
			assert.False(t, st.Alone, "%s joined", st.Name)
		}

		require.NoError(t, p.WaitReady(t.Context()))
		synctest.Wait()
		assert.Empty(t, l.addedPeers("boot-1"), "boot-1 bootstrapped from the others")
		assert.Len(t, l.addedPeers("boot-2"), 1, "no second call")
		assert.Len(t, l.addedPeers("boot-3"), 1, "no second call")
	})
}

// TestPoolSeedIsHandedTheNextReadySlot: the seed slot starts alone (Status says so) and is sent
// AddPeers with the next slot's multiaddrs once that slot is ready; a call that fails leaves the
// slot alone, is logged, and is tried again at the next change of the pool.
func TestPoolSeedIsHandedTheNextReadySlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLauncher(time.Second)
		l.failNext["boot-2"] = 1
		l.addPeersFail["boot-1"] = 1
		logs := &lockedBuffer{}
		p := memPool(t, l, PoolConfig{
			Workers: 2, Name: "boot", BootstrapFromPool: true,
			Backoff: BackoffConfig{Initial: time.Minute, Max: time.Minute, Jitter: -1},
			Logger:  slog.New(slog.NewTextHandler(logs, nil)),
		})
		require.NoError(t, p.slots[0].waitRunning(t.Context()))
		synctest.Wait()
		st := p.Status().Slots
		assert.True(t, st[0].Alone, "boot-1 started alone")
		assert.Equal(t, SlotBackoff, st[1].State)
		assert.Empty(t, l.addedPeers("boot-1"), "no other slot runs yet")

		// boot-2 restarts from boot-1; the AddPeers call to boot-1 fails once.
		require.NoError(t, p.WaitReady(t.Context()))
		synctest.Wait()
		assert.Empty(t, l.addedPeers("boot-1"))
		assert.True(t, p.Status().Slots[0].Alone, "a failed call leaves the slot alone")
		assert.Contains(t, logs.String(), "handing it the pool's peers failed")

		// The next change (boot-2 dies and comes back) brings the next try.
		l.kill(t, "boot-2")
		synctest.Wait()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		require.NoError(t, p.WaitReady(t.Context()))
		synctest.Wait()
		assert.Equal(t, [][]string{{memMaddr("boot-2")}}, l.addedPeers("boot-1"))
		assert.Empty(t, l.addedPeers("boot-2"), "boot-2 bootstrapped from boot-1")
		for _, st := range p.Status().Slots {
			assert.False(t, st.Alone, st.Name)
		}
		joined := 0
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "joined the pool's swarm") {
				joined++
			}
		}
		assert.Equal(t, 1, joined, logs.String())
	})
}
