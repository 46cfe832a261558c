package browser

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slotDoc is the part of a /status slot the page shows.
type slotDoc struct {
	Name             string   `json:"name"`
	State            string   `json:"state"`
	PID              int      `json:"pid"`
	PeerID           string   `json:"peer_id"`
	Maddrs           []string `json:"maddrs"`
	Restarts         int      `json:"restarts"`
	LastExit         string   `json:"last_exit"`
	RoutingTableSize int      `json:"routing_table_size"`
	StoredKeys       int      `json:"stored_keys"`
	ConnectedPeers   int      `json:"connected_peers"`
	Peers            []struct {
		PeerID string `json:"peer_id"`
		Kind   string `json:"kind"`
	} `json:"peers"`
}

type statusDoc struct {
	Slots []slotDoc `json:"slots"`
}

type seriesDoc struct {
	Slots []struct {
		Name   string `json:"name"`
		Points []struct {
			T            time.Time `json:"t"`
			ServedPerSec *float64  `json:"served_per_sec"`
			SentPerSec   *float64  `json:"sent_per_sec"`
			P50          *float64  `json:"p50_ms"`
			P99          *float64  `json:"p99_ms"`
		} `json:"points"`
	} `json:"slots"`
}

// cardJS reads what a worker's card shows: every data-field's text, as the page rendered it.
const cardJS = `(() => {
  const out = {};
  for (const card of document.querySelectorAll("[data-slot]")) {
    const f = {};
    for (const e of card.querySelectorAll("[data-field]")) f[e.dataset.field] = e.textContent;
    f.visible_state = card.querySelector('[data-field="state"]').innerText;
    out[card.dataset.slot] = f;
  }
  return out;
})()`

// plotJS reads the data a plot drew: {series name: [[t ms, value], ...]}.
func plotJS(slot, kind string) string {
	return fmt.Sprintf(`(() => {
  const box = document.querySelector('[data-slot=%q] [data-plot-kind=%q]');
  if (!box || !box.dataset.plot) return {};
  const out = {};
  for (const s of JSON.parse(box.dataset.plot)) out[s.name] = s.points;
  return out;
})()`, slot, kind)
}

// TestSupervisorPage runs a real pool (three worker processes), sends it DHT traffic through the
// CLI, loads the status page and checks that each card shows what /status says, that the plots
// drew what /series holds (with traffic on them), that the swarm lists the pool's Go workers; then
// SIGKILLs a worker and sees its card show the restart, checks the phone layout, and stops the
// supervisor to see the page say it is unreachable. Screenshots of each state are saved.
func TestSupervisorPage(t *testing.T) {
	ctx := newBrowser(t)
	supervisorBin := binary(t, "cmd/supervisor")
	sup := start(t, supervisorBin, "run", "--workers", "3", "--state-dir", t.TempDir(),
		"--admin-addr", "127.0.0.1:0", "--health-interval", "1s")
	first := sup.waitLine(t, "Status page: ", time.Minute)
	require.Equal(t, first, sup.output()[0], "the page's URL is the first line")
	url := strings.TrimSuffix(strings.TrimPrefix(first, "Status page: "), "/")
	sup.waitLine(t, "workers ready", 2*time.Minute)

	var st statusDoc
	getJSON(t, url+"/status", &st)
	require.Len(t, st.Slots, 3)
	for i := range 3 {
		key := fmt.Sprintf("greeting-%d", i)
		for _, args := range [][]string{
			{"store", key, `"hello"`, "--initial-peers", st.Slots[i].Maddrs[0]},
			{"get", key, "--initial-peers", st.Slots[(i+1)%3].Maddrs[0]},
		} {
			out, err := runCLI(supervisorBin, args...)
			require.NoError(t, err, "%v: %s", args, out)
		}
	}

	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url+"/")))
	eventually(t, time.Minute, "every card matches /status", func() (bool, string) {
		var st statusDoc
		getJSON(t, url+"/status", &st)
		cards := eval[map[string]map[string]string](t, ctx, cardJS)
		for _, s := range st.Slots {
			c, ok := cards[s.Name]
			if !ok {
				return false, "no card for " + s.Name
			}
			want := map[string]string{
				"pid": strconv.Itoa(s.PID), "restarts": strconv.Itoa(s.Restarts), "peer_id": s.PeerID,
				"routing_table_size": strconv.Itoa(s.RoutingTableSize), "stored_keys": strconv.Itoa(s.StoredKeys),
				"connected_peers": strconv.Itoa(s.ConnectedPeers), "visible_state": "RUNNING",
				"addrs_summary": fmt.Sprintf("addresses (%d)", len(s.Maddrs)),
			}
			for f, v := range want {
				if c[f] != v {
					return false, fmt.Sprintf("%s: %s shows %q, /status says %q", s.Name, f, c[f], v)
				}
			}
		}
		return true, ""
	})

	eventually(t, time.Minute, "the plots drew /series, with the traffic on them", func() (bool, string) {
		var series seriesDoc
		getJSON(t, url+"/series", &series)
		served := 0.0
		for _, s := range series.Slots {
			want := map[int64]float64{}
			for _, p := range s.Points {
				if p.ServedPerSec != nil {
					want[p.T.UnixMilli()] = *p.ServedPerSec
				}
			}
			drawn := eval[map[string][][]*float64](t, ctx, plotJS(s.Name, "rate"))
			pts := drawn["served_per_sec"]
			if len(pts) == 0 {
				return false, s.Name + ": nothing drawn yet"
			}
			for _, p := range pts {
				if p[1] == nil {
					continue
				}
				v, ok := want[int64(*p[0])]
				if !ok {
					return false, fmt.Sprintf("%s: drew a point at %v that /series does not hold (page older than /series' ring?)", s.Name, *p[0])
				}
				if math.Abs(v-*p[1]) > 1e-9 {
					return false, fmt.Sprintf("%s: drew %v at %v, /series says %v", s.Name, *p[1], *p[0], v)
				}
				served = math.Max(served, v)
			}
			lat := eval[map[string][][]*float64](t, ctx, plotJS(s.Name, "latency"))
			if _, ok := lat["p99_ms"]; !ok {
				return false, s.Name + ": no p99 series drawn"
			}
		}
		if served == 0 {
			return false, "no traffic drawn yet"
		}
		return true, ""
	})

	swarm := eval[[]string](t, ctx, `[...document.querySelectorAll("#swarm tbody tr")].map(r => r.innerText)`)
	pool := 0
	for _, row := range swarm {
		if strings.Contains(row, "pool worker-") {
			pool++
			assert.Contains(t, row, "Go worker")
			assert.Contains(t, row, "hivemind-go")
			assert.Contains(t, row, "direct")
			assert.Contains(t, row, "in the routing table of", "the pool's workers hold each other in their routing tables")
		}
	}
	assert.Equal(t, 3, pool, "each worker is seen by the others: %q", swarm)
	summary := eval[string](t, ctx, `document.getElementById("summary").innerText`)
	assert.Contains(t, summary, "3/3 workers running")
	screenshot(t, ctx, "supervisor.png")

	// SIGKILL a worker: the page shows it restarting, then running again with one restart and the
	// reason, with the new PID /status reports.
	victim := st.Slots[1]
	require.NoError(t, syscall.Kill(victim.PID, syscall.SIGKILL))
	eventually(t, 2*time.Minute, "the card shows the restart", func() (bool, string) {
		var now statusDoc
		getJSON(t, url+"/status", &now)
		s := now.Slots[1]
		c := eval[map[string]map[string]string](t, ctx, cardJS)[victim.Name]
		switch {
		case s.State != "running" || s.Restarts != 1:
			return false, fmt.Sprintf("/status: %s, %d restarts", s.State, s.Restarts)
		case c["restarts"] != "1":
			return false, "card shows restarts " + c["restarts"]
		case c["pid"] != strconv.Itoa(s.PID) || s.PID == victim.PID:
			return false, fmt.Sprintf("card shows pid %s, /status %d (killed %d)", c["pid"], s.PID, victim.PID)
		case !strings.Contains(c["alert"], "Restarted 1×") || !strings.Contains(c["alert"], "signal: killed"):
			return false, "alert: " + c["alert"]
		case c["peer_id"] != victim.PeerID:
			return false, "a new peer ID: " + c["peer_id"]
		}
		return true, ""
	})
	cls := eval[string](t, ctx, fmt.Sprintf(`document.querySelector('[data-slot=%q]').className`, victim.Name))
	assert.Contains(t, cls, "warn", "a restarted worker stands out")
	summary = eval[string](t, ctx, `document.getElementById("summary").innerText`)
	assert.Contains(t, summary, "1 restarts")
	screenshot(t, ctx, "supervisor-restarted.png")

	// A phone: one column, nothing wider than the screen.
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)))
	eventually(t, 10*time.Second, "the phone layout fits the screen", func() (bool, string) {
		w := eval[[]float64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`)
		return w[0] <= w[1], fmt.Sprintf("page %v px wide on a %v px screen", w[0], w[1])
	})
	screenshot(t, ctx, "supervisor-phone.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000)))

	// The supervisor goes away: the page says so plainly and keeps the last figures.
	sup.interrupt(t, 30*time.Second)
	eventually(t, 30*time.Second, "the page says the supervisor is unreachable", func() (bool, string) {
		b := eval[string](t, ctx, `(() => { const b = document.getElementById("banner"); return b.hidden ? "" : b.innerText })()`)
		return strings.Contains(b, "Supervisor unreachable since"), "banner: " + b
	})
	cards := eval[map[string]map[string]string](t, ctx, cardJS)
	assert.Len(t, cards, 3, "the last data stays on screen")
	screenshot(t, ctx, "supervisor-unreachable.png")
}
