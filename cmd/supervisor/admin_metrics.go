package main

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hivemind-go/hivemind/ipc"
)

// metricsHandler serves /metrics: the pool's slots and each worker's own figures (relayed from its
// last health check as series labelled by slot), plus the supervisor's Go runtime and process
// collectors, from a registry of its own.
func metricsHandler(status func() ipc.Status) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newPoolCollector(status),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// poolCollector turns a pool's status into metrics at each scrape.
type poolCollector struct {
	status func() ipc.Status

	up, restarts, info                             *prometheus.Desc
	routingTable, stored, cached, connected        *prometheus.Desc
	rss, heap, goroutines, peers                   *prometheus.Desc
	opDuration, opErrors                           *prometheus.Desc
	rpcSent, rpcSentFailed, rpcRecv, rpcRecvFailed *prometheus.Desc
	rpcDuration                                    *prometheus.Desc
	reach, reservations, circuits, circuitsTotal   *prometheus.Desc
	circuitsRefused, reservationsHeld, relayed     *prometheus.Desc
	holePunches, conns                             *prometheus.Desc
}

func newPoolCollector(status func() ipc.Status) *poolCollector {
	slot := []string{"slot"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &poolCollector{
		status:       status,
		up:           d("hivemind_worker_up", "1 when the worker is running and ready.", slot...),
		restarts:     d("hivemind_worker_restarts_total", "Restarts of the worker slot.", slot...),
		info:         d("hivemind_worker_info", "Worker identity.", "slot", "state", "pid", "peer_id"),
		routingTable: d("hivemind_dht_routing_table_size", "Peers in the worker's routing table.", slot...),
		stored:       d("hivemind_dht_stored_keys", "Keys in the worker's local storage.", slot...),
		cached:       d("hivemind_dht_cached_keys", "Keys in the worker's cache.", slot...),
		connected:    d("hivemind_p2p_connected_peers", "Peers the worker's host is connected to.", slot...),
		rss:          d("hivemind_worker_resident_memory_bytes", "Resident set size of the worker process.", slot...),
		heap:         d("hivemind_worker_heap_bytes", "Go heap in use in the worker process.", slot...),
		goroutines:   d("hivemind_worker_goroutines", "Goroutines of the worker process.", slot...),
		peers: d("hivemind_p2p_peers", "Connected peers of the worker's host by kind (go: a Go worker, hivemind: a hivemind p2pd peer, other, unknown) and transport (direct or relayed).",
			"slot", "kind", "transport"),
		opDuration:    d("hivemind_worker_op_duration_seconds", "Duration of the calls made to the worker, per operation, measured by the worker.", "slot", "op"),
		opErrors:      d("hivemind_worker_op_errors_total", "Calls made to the worker that returned an error, per operation.", "slot", "op"),
		rpcSent:       d("hivemind_dht_rpc_sent_total", "DHT requests the worker sent, per RPC.", "slot", "rpc"),
		rpcSentFailed: d("hivemind_dht_rpc_sent_failed_total", "DHT requests the worker sent that got no answer, per RPC.", "slot", "rpc"),
		rpcRecv:       d("hivemind_dht_rpc_received_total", "DHT requests the worker served, per RPC.", "slot", "rpc"),
		rpcRecvFailed: d("hivemind_dht_rpc_received_failed_total", "DHT requests the worker failed to serve, per RPC.", "slot", "rpc"),
		rpcDuration: d("hivemind_dht_rpc_duration_seconds", "Duration of the worker's DHT RPCs, per RPC and direction (sent: round trip; received: handling).",
			"slot", "rpc", "direction"),
		reach: d("hivemind_p2p_reachability", "1 for the worker's reachability as AutoNAT found it (public, private or unknown), 0 for the others.",
			"slot", "reachability"),
		reservations:     d("hivemind_p2p_relay_reservations", "Relays holding a reservation for the worker (its /p2p-circuit addresses go through them).", slot...),
		circuits:         d("hivemind_p2p_relay_circuits", "Circuits the worker's relay service carries for other peers now.", slot...),
		circuitsTotal:    d("hivemind_p2p_relay_circuits_total", "Circuits the worker's relay service opened for other peers.", slot...),
		circuitsRefused:  d("hivemind_p2p_relay_circuits_refused_total", "Circuits the worker's relay service refused (over a limit, or no reservation).", slot...),
		reservationsHeld: d("hivemind_p2p_relay_reservations_served", "Reservations other peers hold on the worker's relay service.", slot...),
		relayed:          d("hivemind_p2p_relayed_bytes_total", "Bytes the worker's relay service relayed for other peers.", slot...),
		holePunches:      d("hivemind_p2p_hole_punches_total", "Hole punches (DCUtR) of the worker, by result (success: a direct connection).", "slot", "result"),
		conns:            d("hivemind_p2p_connections", "Open connections of the worker's host by transport (direct or relayed).", "slot", "transport"),
	}
}

// Describe sends every descriptor.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.up, c.restarts, c.info, c.routingTable, c.stored, c.cached, c.connected, c.rss, c.heap,
		c.goroutines, c.peers, c.opDuration, c.opErrors, c.rpcSent, c.rpcSentFailed, c.rpcRecv,
		c.rpcRecvFailed, c.rpcDuration, c.reach, c.reservations, c.circuits, c.circuitsTotal,
		c.circuitsRefused, c.reservationsHeld, c.relayed, c.holePunches, c.conns,
	} {
		ch <- d
	}
}

// Collect sends the metrics of every slot. The worker's own figures (memory, calls, RPCs, peers)
// are sent once the slot has had a health check; a slot between workers shows its last worker's.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, s := range c.status().Slots {
		up := 0.0
		if s.State == ipc.SlotRunning {
			up = 1
		}
		gauge(c.up, up, s.Name)
		counter(c.restarts, uint64(s.Restarts), s.Name)
		gauge(c.info, 1, s.Name, s.State.String(), strconv.Itoa(s.PID), s.PeerID)
		gauge(c.routingTable, float64(s.RoutingTableSize), s.Name)
		gauge(c.stored, float64(s.StoredKeys), s.Name)
		gauge(c.connected, float64(s.ConnectedPeers), s.Name)
		if s.StatsAt.IsZero() {
			continue
		}
		gauge(c.cached, float64(s.CachedKeys), s.Name)
		gauge(c.rss, float64(s.RSSBytes), s.Name)
		gauge(c.heap, float64(s.HeapBytes), s.Name)
		gauge(c.goroutines, float64(s.Goroutines), s.Name)
		for k, n := range peerCounts(s.Peers) {
			gauge(c.peers, float64(n), s.Name, k.kind, k.transport)
		}
		c.collectNAT(s.Name, s.NAT, gauge, counter)
		for _, o := range s.Ops {
			if h, ok := constHistogram(c.opDuration, o.Latency, s.Name, o.Name); ok {
				ch <- h
			}
			counter(c.opErrors, o.Failed, s.Name, o.Name)
		}
		for _, r := range s.RPCs {
			counter(c.rpcSent, r.Sent, s.Name, r.Name)
			counter(c.rpcSentFailed, r.SentFailed, s.Name, r.Name)
			counter(c.rpcRecv, r.Received, s.Name, r.Name)
			counter(c.rpcRecvFailed, r.ReceivedFailed, s.Name, r.Name)
			if h, ok := constHistogram(c.rpcDuration, r.SentLatency, s.Name, r.Name, "sent"); ok {
				ch <- h
			}
			if h, ok := constHistogram(c.rpcDuration, r.ReceivedLatency, s.Name, r.Name, "received"); ok {
				ch <- h
			}
		}
	}
}

// peerKey groups connected peers for hivemind_p2p_peers.
type peerKey struct{ kind, transport string }

func peerCounts(peers []ipc.PeerStatus) map[peerKey]int {
	out := map[peerKey]int{}
	for _, p := range peers {
		if !p.Connected {
			continue
		}
		k := peerKey{kind: p.Kind, transport: "direct"}
		if p.Relayed {
			k.transport = "relayed"
		}
		out[k]++
	}
	return out
}

// constHistogram converts a worker's histogram (per-bucket counts) to a Prometheus one (cumulative
// buckets); ok is false for an empty or malformed one (a worker whose node is not instrumented).
func constHistogram(d *prometheus.Desc, h ipc.Histogram, labels ...string) (prometheus.Metric, bool) {
	if len(h.Bounds) == 0 || len(h.Counts) != len(h.Bounds)+1 {
		return nil, false
	}
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b] = cum
	}
	m, err := prometheus.NewConstHistogram(d, h.Count(), h.Sum, buckets, labels...)
	return m, err == nil
}

// collectNAT sends a slot's reachability, relay and connection figures.
func (c *poolCollector) collectNAT(slot string, n ipc.NATStatus, gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	for _, r := range []string{"public", "private", "unknown"} {
		v := 0.0
		if n.Reachability == r {
			v = 1
		}
		gauge(c.reach, v, slot, r)
	}
	gauge(c.reservations, float64(len(n.Reservations)), slot)
	gauge(c.circuits, float64(n.CircuitsOpen), slot)
	counter(c.circuitsTotal, n.CircuitsTotal, slot)
	counter(c.circuitsRefused, n.CircuitsRefused, slot)
	gauge(c.reservationsHeld, float64(n.ReservationsHeld), slot)
	counter(c.relayed, n.RelayedBytes, slot)
	counter(c.holePunches, n.HolePunches, slot, "success")
	counter(c.holePunches, n.HolePunchFailures, slot, "failure")
	gauge(c.conns, float64(n.DirectConns), slot, "direct")
	gauge(c.conns, float64(n.RelayedConns), slot, "relayed")
}
