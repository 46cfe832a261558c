// Package bench holds side-by-side benchmarks: each measures an operation next to a baseline timed
// in the same run and reports their ratio with b.ReportMetric. Targets are stated in the benchmark
// docs and never asserted.
//
//	go test -run '^$' -bench . ./test/bench/
//
// DHT benchmarks (dht_bench_test.go): a 2-node GET and STORE over loopback libp2p next to a raw
// unary round trip (DHTProtocol-sized rpc_ping to a trivial handler) on the same hosts; the same
// operations through the in-memory dhtsim network; and local, in-process store/get on one node.
//
// Relay benchmark (relay_bench_test.go, -bench Relayed): the same 2-node GET through a circuit relay
// next to a direct one, interleaved.
//
// Swarm benchmarks (swarm_bench_test.go, -bench Swarm): `supervisor bench` on a swarm of worker
// processes — latency against each operation's critical path, throughput against raw unary calls,
// batches against separate calls, a lone worker's start-to-ready and memory — logged as its table
// and reported as metrics.
package bench
