package ipcpb

// The go-plugin handshake shared by the parent (package ipc) and the worker (package worker). Neither
// side imports the other, so the constants live beside the service they version.
const (
	// ProtocolVersion is go-plugin's application protocol version: the major version of the
	// hivemind.ipc proto package. A breaking change to the service bumps both.
	ProtocolVersion = 1
	// MagicCookieKey and MagicCookieValue mark a process as started by a launcher: a worker binary run
	// by hand refuses to serve, and worker.Main returns at once when the variable is absent.
	MagicCookieKey   = "HIVEMIND_WORKER_COOKIE"
	MagicCookieValue = "8f3c1e0a6b2d4f59a7e1c3b5d9f20486-hivemind-dht-worker"
	// PluginName is the name the Worker service is dispensed under.
	PluginName = "dht-worker"
	// ConfigVersion is ConfigureRequest.version as this build writes and reads it.
	ConfigVersion = 1
	// HealthService is the gRPC health service name that reports SERVING while the worker serves
	// (go-plugin registers it).
	HealthService = "plugin"
)

// Environment variables a launcher passes to a worker besides go-plugin's own.
const (
	// EnvLifelineFD names the worker's file descriptor of the lifeline pipe: the read end of a pipe
	// whose write end only the launcher holds. EOF on it means the launcher is gone.
	EnvLifelineFD = "HIVEMIND_WORKER_LIFELINE_FD"
	// EnvParentPID is the launcher's pid; a worker whose getppid() differs at start exits at once
	// (the launcher died between fork and the worker's first instruction).
	EnvParentPID = "HIVEMIND_WORKER_PARENT_PID"
	// EnvSlot is the slot name of the worker, attached to its log lines.
	EnvSlot = "HIVEMIND_WORKER_SLOT"
	// EnvTLS set to EnvTLSStdin says the launcher wrote the worker's mutual-TLS material on the
	// worker's stdin, PEM: the worker's certificate, its private key, then the certificate of the
	// authority that signed it and the launcher's client certificate. The worker serves TLS with
	// them and accepts only clients of that authority. Absent: go-plugin's own AutoMTLS when
	// PLUGIN_CLIENT_CERT is set, else no TLS.
	EnvTLS = "HIVEMIND_WORKER_TLS"
	// EnvTLSStdin is EnvTLS's one value.
	EnvTLSStdin = "stdin"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of statuses caused by a dht sentinel error; the
// ErrorInfo reason is one of the Reason* constants.
const ErrorDomain = "hivemind.dht"

// Reasons carried in ErrorInfo for the dht package's sentinel errors.
const (
	ReasonIDOutOfRange      = "ID_OUT_OF_RANGE"
	ReasonInvalidKey        = "INVALID_KEY"
	ReasonInvalidValue      = "INVALID_VALUE"
	ReasonInvalidExpiration = "INVALID_EXPIRATION"
	ReasonInvalidArgument   = "INVALID_ARGUMENT"
	ReasonNoResponse        = "NO_RESPONSE"
	ReasonBootstrapFailed   = "BOOTSTRAP_FAILED"
	ReasonValidation        = "VALIDATION_FAILED"
	ReasonShutdown          = "SHUTDOWN"
	ReasonMessageTooLarge   = "MESSAGE_TOO_LARGE"
	// ReasonNotConfigured: a call other than Configure arrived before Configure succeeded.
	ReasonNotConfigured = "NOT_CONFIGURED"
	// ReasonAlreadyConfigured: Configure was called twice.
	ReasonAlreadyConfigured = "ALREADY_CONFIGURED"
)

// Flow-control windows of the parent↔worker gRPC connection, set on both sides (ipc dials with
// them, the worker serves with them). Static windows turn gRPC's bandwidth-delay-product
// estimation off: it answers data with a PING (and its ACK) on an otherwise idle connection, extra
// wake-ups of both processes on a link whose delay is a few microseconds. 1 MiB per stream, 4 MiB
// per connection keep a unix socket's throughput far above what a worker produces.
const (
	StreamWindow = 1 << 20
	ConnWindow   = 4 << 20
)
