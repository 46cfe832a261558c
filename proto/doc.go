// Package proto holds the .proto sources and the generated Go packages:
//
//   - dhtpb: hivemind's dht.proto and auth.proto (the DHT RPC messages, byte-compatible);
//   - p2pdpb: the p2pd unary envelope (proto2, required fields) and RPCError;
//   - ipcpb: the parent <-> worker gRPC service.
//
// Generated code is committed; run `go generate ./proto` (needs protoc) to refresh it. CI regenerates
// into a temporary directory and fails on any difference.
package proto

//go:generate ./generate.sh
