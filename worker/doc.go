// Package worker is the child side of hivemind-go's process boundary (DESIGN.md §4): a process that
// owns one libp2p host and one DHT node and serves the ipcpb.Worker service to the parent that
// launched it through go-plugin. It never imports package ipc.
//
// # Main
//
// Any main that launches workers by re-executing itself calls Main first:
//
//	func main() {
//		worker.Main() // never returns when this process was started as a worker
//		...
//	}
//
// Main returns false at once when go-plugin's cookie (ipcpb.MagicCookieKey) is absent. Otherwise it
// serves and exits the process itself (MainWith takes a ServerConfig, e.g. another NodeFactory).
//
// # The handshake and the worker's lifetime
//
//   - stdout carries nothing but go-plugin's handshake line; logs are JSON lines on the original
//     stderr with hclog's keys (@level, @message, @timestamp), which the parent relays;
//   - SIGINT is ignored (the parent decides when a worker stops); SIGTERM drains the node (stops
//     serving peers, closes the host, flushes the state) and exits 0;
//   - the worker never outlives its launcher: PR_SET_PDEATHSIG(SIGKILL), a check that getppid() is the
//     launcher (ipcpb.EnvParentPID), and EOF on the lifeline pipe (ipcpb.EnvLifelineFD) all end it;
//   - the first call is Configure: it opens the state directory, starts the host and the node, and
//     answers once the host listens and bootstrap finished — or fails with the reason (a status
//     carrying dht.ErrBootstrapFailed). Calls before it fail with FAILED_PRECONDITION; Shutdown drains
//     and the process exits after the reply.
//
// # Durable state
//
// In NodeConfig.StateDir (created 0700): identity.key (the libp2p identity, unless IdentityPath says
// otherwise, so the peer ID survives restarts), node_id, and records.db (bbolt), the node's storage:
// the worker plugs it into the node as its dht.Persister, so every record the node keeps — stored
// through this worker or replicated onto it by other peers — is written to the database before the
// node acknowledges it, and a kill -9 loses nothing that was acknowledged. The database is not
// fsynced per write (NoSync): what a transaction committed is in the kernel's page cache, which a
// dead process does not lose; a power loss or a kernel crash may lose the last writes, and is out
// of scope. At the next Configure the expired records are deleted and the rest are loaded straight
// into the new node, without network traffic (ConfigureResponse.reloaded_records counts them).
// NodeConfig.NoPersistRecords turns this off. A records.db that is not a bbolt database (garbage,
// a directory in its place) fails Configure with an error naming the file.
//
// # Errors
//
// Handlers return gRPC statuses: a dht sentinel error becomes its code plus a google.rpc.ErrorInfo
// (domain ipcpb.ErrorDomain, reason ipcpb.Reason*), which package ipc maps back to the same
// sentinel; context errors become DEADLINE_EXCEEDED / CANCELED.
package worker
