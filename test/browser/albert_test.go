package browser

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dashboardDoc is the part of the monitor's /data (its aggregate) the test checks.
type dashboardDoc struct {
	Found      bool     `json:"found"`
	Step       int64    `json:"step"`
	Loss       *float64 `json:"loss"`
	AlivePeers int      `json:"alive_peers"`
	History    []struct {
		Step int64    `json:"step"`
		Loss *float64 `json:"loss"`
	} `json:"history"`
	Peers []struct {
		PeerID string `json:"peer_id"`
		Kind   string `json:"kind"`
		Step   int64  `json:"step"`
	} `json:"peers"`
}

// TestAlbertDashboard runs a real albert demo (a monitor and two trainers, each with its DHT
// worker process) with --http, loads the dashboard and checks the step, alive peers and loss it
// shows against the monitor's aggregate (/data), that the loss curve drew the aggregate's history,
// and that the trainers are listed as Go peers with their last report.
func TestAlbertDashboard(t *testing.T) {
	ctx := newBrowser(t)
	albertBin := binary(t, "examples/albert/cmd/albert")
	demo := start(t, albertBin, "demo", "--trainers", "2", "--http", "127.0.0.1:0", "--refresh-period", "500ms",
		"--target-batch-size", "512")
	line := demo.waitLine(t, "Dashboard: ", 2*time.Minute)
	url := strings.TrimSuffix(strings.TrimPrefix(line, "Dashboard: "), "/")

	var d dashboardDoc
	eventually(t, 2*time.Minute, "the collaboration reaches step 3", func() (bool, string) {
		getJSON(t, url+"/data", &d)
		return d.Found && d.Step >= 3 && d.AlivePeers == 2, fmt.Sprintf("step %d, %d alive peers", d.Step, d.AlivePeers)
	})
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(url+"/")))

	fieldsJS := `(() => { const f = {}; for (const e of document.querySelectorAll("[data-field]")) f[e.dataset.field] = e.textContent; return f; })()`
	eventually(t, time.Minute, "the tiles show the monitor's aggregate", func() (bool, string) {
		var d dashboardDoc
		getJSON(t, url+"/data", &d)
		f := eval[map[string]string](t, ctx, fieldsJS)
		if f["step"] != strconv.FormatInt(d.Step, 10) {
			return false, fmt.Sprintf("step %q, /data %d", f["step"], d.Step)
		}
		if f["alive_peers"] != strconv.Itoa(d.AlivePeers) {
			return false, fmt.Sprintf("alive peers %q, /data %d", f["alive_peers"], d.AlivePeers)
		}
		loss, err := strconv.ParseFloat(f["loss"], 64)
		if err != nil || d.Loss == nil || math.Abs(loss-*d.Loss) > 1e-4 {
			return false, fmt.Sprintf("loss %q, /data %v", f["loss"], d.Loss)
		}
		return true, ""
	})

	eventually(t, time.Minute, "the loss curve drew the aggregate's history", func() (bool, string) {
		var d dashboardDoc
		getJSON(t, url+"/data", &d)
		drawn := eval[[][]*float64](t, ctx, `JSON.parse(document.querySelector('[data-plot-kind="loss"]').dataset.plot || "[]")[0]?.points || []`)
		if len(drawn) < 3 {
			return false, fmt.Sprintf("%d points drawn", len(drawn))
		}
		want := map[int64]float64{}
		for _, h := range d.History {
			if h.Loss != nil {
				want[h.Step] = *h.Loss
			}
		}
		// Every step but the latest is final; the latest may have moved since the page's read.
		for _, p := range drawn[:len(drawn)-1] {
			step := int64(*p[0])
			if v, ok := want[step]; !ok || p[1] == nil || math.Abs(v-*p[1]) > 1e-12 {
				return false, fmt.Sprintf("step %d: drew %v, /data has %v (%v)", step, p[1], v, ok)
			}
		}
		return true, ""
	})

	rows := eval[[]string](t, ctx, `[...document.querySelectorAll("#peers tbody tr")].map(r => r.innerText)`)
	require.Len(t, rows, 2, "%q", rows)
	for _, r := range rows {
		assert.Contains(t, r, "Go")
		assert.Contains(t, r, "ago", "a last report")
		assert.Contains(t, r, "epoch ")
	}
	eta := eval[string](t, ctx, `document.querySelector('[data-field="eta"]').textContent`)
	assert.Regexp(t, `^(in \d+(m \d+)?s|due now)$`, eta)
	screenshot(t, ctx, "albert-dashboard.png")

	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)))
	w := eval[[]float64](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`)
	assert.LessOrEqual(t, w[0], w[1], "the phone layout fits the screen")
	screenshot(t, ctx, "albert-dashboard-phone.png")
	require.NoError(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1000)))

	demo.interrupt(t, time.Minute)
	eventually(t, 30*time.Second, "the dashboard says the monitor is unreachable", func() (bool, string) {
		b := eval[string](t, ctx, `(() => { const b = document.getElementById("banner"); return b.hidden ? "" : b.innerText })()`)
		return strings.Contains(b, "Monitor unreachable since"), "banner: " + b
	})
}
