// Package sim holds the DHT simulations: real dht.Nodes on a dht/dhtsim network, in virtual time
// (testing/synctest), checked against brute-force answers. Everything is in the tests.
//
// Every run is seeded: the seed is printed, and HIVEMIND_SIM_SEED overrides the default. The same
// seed gives the same node IDs, keys, killed nodes and per-call network fates.
//
//	go test ./test/sim/                        # CI size: 1,000 nodes (200 under -race)
//	HIVEMIND_LONG=1 go test -run Long -timeout 3h ./test/sim/   # 10,000 and 100,000 nodes
//
// A run starts Size nodes (each bootstrapped from up to three earlier ones), stores Keys values with
// hivemind's defaults (5 replicas), then measures:
//   - gets of random stored keys from random nodes (success rate, RPCs per lookup);
//   - find_nearest_nodes against a brute-force sort of every node (top-1 accuracy, Jaccard);
//   - the number of nodes holding a freshly stored key (exactly NumReplicas);
//   - gets again after a fraction of the nodes is killed (unreachable, silent: calls time out).
//
// Under -race the CI size is smaller (the race detector costs ~10× CPU and memory): the race build
// runs sim_race_test.go, the normal build sim_norace_test.go.
package sim
