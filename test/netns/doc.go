// Package netns tests NAT traversal on real networks: test beds of Linux network namespaces (Bed)
// with a public segment and private LANs each behind a router namespace that masquerades, and real
// supervisor and worker processes inside them (ip netns exec).
//
// A bed is a switch namespace bridging the public segment (a range libp2p counts as public, so
// that AutoNAT, auto-relay and hole punching treat it as the internet; it exists only on the
// bed's veths), public hosts on it, and LANs 10.N.0.0/24 behind routers that forward only replies
// inbound and drop the rest silently. Every test makes its own bed and tears it down in its
// cleanup, also when it fails (processes in it killed, namespaces deleted); namespaces that a
// killed run left behind are deleted by the next run. Nothing touches the host's own interfaces,
// routes or firewall.
//
// The scenarios (scenarios_test.go), each on real processes:
//
//   - auto-relay: a public bootstrap node is the relay; a node behind NAT A with --use-auto-relay
//     finds itself private, reserves a slot and announces a /p2p-circuit address; nodes behind
//     NAT B find it through the DHT, store records only it holds and get them back;
//   - dialling out only: behind a NAT, client-mode nodes with the relay off, and with --no-listen,
//     store and get; a no-listen node announces nothing;
//   - hole punching: two nodes behind two NATs meet through the relay and punch a direct
//     connection (the status shows it); with the relay killed, DHT requests still flow over it;
//   - relay limits: a peer asking for more circuits than p2pd's 16 per peer is refused the extra
//     ones, and the relay holds nothing for it once it closes them;
//   - AutoNAT: a public node finds itself public and a NATed one private, and --dht-mode auto
//     follows (kad server, kad client).
//
// The suite needs root, ip and iptables (.ci/run installs them); without them it skips with the
// reason, and fails under CI=true. test/chaos runs its NAT row (half of a swarm behind NATs,
// through a relay) on the same beds.
package netns
