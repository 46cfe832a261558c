package main

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/hivemind-go/hivemind/internal/webui"

	"github.com/hivemind-go/hivemind/ipc"
)

// web holds the status page: HTML, CSS and JS served as they are (no build step, nothing fetched
// from elsewhere).
//
//go:embed web
var web embed.FS

// adminStatus is the JSON document served at /status.
type adminStatus struct {
	PID      int              `json:"pid"`
	StateDir string           `json:"state_dir"`
	Time     time.Time        `json:"time"`
	Slots    []ipc.SlotStatus `json:"slots"`
}

// adminHandler serves the admin endpoint: the status page at /, its assets under /assets/, the
// pool's status at /status (JSON), the plots' recent points at /series (JSON) and Prometheus
// metrics at /metrics.
func adminHandler(status func() ipc.Status, series *seriesRecorder, stateDir string) http.Handler {
	assets, err := fs.Sub(web, "web")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := webui.PageMux(assets)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, adminStatus{PID: os.Getpid(), StateDir: stateDir, Time: time.Now(), Slots: status().Slots})
	})
	mux.HandleFunc("GET /series", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, series.Snapshot())
	})
	mux.Handle("GET /metrics", metricsHandler(status))
	return mux
}

// writeJSON writes v as an indented JSON document that no cache keeps.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
