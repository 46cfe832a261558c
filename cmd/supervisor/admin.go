package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hivemind-go/hivemind/ipc"
)

// adminStatus is the JSON document served at /status.
type adminStatus struct {
	PID      int              `json:"pid"`
	StateDir string           `json:"state_dir"`
	Time     time.Time        `json:"time"`
	Slots    []ipc.SlotStatus `json:"slots"`
}

func adminHandler(pool *ipc.Pool, stateDir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(adminStatus{PID: os.Getpid(), StateDir: stateDir, Time: time.Now(), Slots: pool.Status().Slots})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(metricsText(pool.Status())))
	})
	return mux
}

// metricsText renders the status in Prometheus' text exposition format.
func metricsText(st ipc.Status) string {
	var b strings.Builder
	gauge := func(name, help, typ string, value func(ipc.SlotStatus) float64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, s := range st.Slots {
			fmt.Fprintf(&b, "%s{slot=%q} %g\n", name, s.Name, value(s))
		}
	}
	gauge("hivemind_worker_up", "1 when the worker is running and ready.", "gauge", func(s ipc.SlotStatus) float64 {
		if s.State == ipc.SlotRunning {
			return 1
		}
		return 0
	})
	gauge("hivemind_worker_restarts_total", "Restarts of the worker slot.", "counter", func(s ipc.SlotStatus) float64 { return float64(s.Restarts) })
	gauge("hivemind_dht_routing_table_size", "Peers in the worker's routing table.", "gauge", func(s ipc.SlotStatus) float64 { return float64(s.RoutingTableSize) })
	gauge("hivemind_dht_stored_keys", "Keys in the worker's local storage.", "gauge", func(s ipc.SlotStatus) float64 { return float64(s.StoredKeys) })
	gauge("hivemind_p2p_connected_peers", "Peers the worker's host is connected to.", "gauge", func(s ipc.SlotStatus) float64 { return float64(s.ConnectedPeers) })
	fmt.Fprintf(&b, "# HELP hivemind_worker_info Worker identity.\n# TYPE hivemind_worker_info gauge\n")
	for _, s := range st.Slots {
		fmt.Fprintf(&b, "hivemind_worker_info{slot=%q,state=%q,pid=\"%d\",peer_id=%q} 1\n", s.Name, s.State.String(), s.PID, s.PeerID)
	}
	return b.String()
}
