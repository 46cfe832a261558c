package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DHTMode is the mode of the libp2p Kademlia DHT (/ipfs/kad/1.0.0) that the host runs for peer routing,
// as hivemind's dht_mode. The zero value means DHTModeServer.
type DHTMode string

// The DHT modes.
const (
	// DHTModeServer answers kad queries, so other peers can resolve this host's addresses (hivemind's default).
	DHTModeServer DHTMode = "server"
	// DHTModeClient only queries.
	DHTModeClient DHTMode = "client"
	// DHTModeAuto switches between client and server as reachability is detected.
	DHTModeAuto DHTMode = "auto"
)

// Reachability forces the host's view of its own reachability (hivemind's force_reachability). The zero
// value lets libp2p detect it.
type Reachability string

// The reachabilities. Config.Reachability forces public or private; NATStatus reports unknown too.
const (
	ReachabilityPublic  Reachability = "public"
	ReachabilityPrivate Reachability = "private"
	// ReachabilityUnknown: AutoNAT has not decided yet (never a valid Config.Reachability).
	ReachabilityUnknown Reachability = "unknown"
)

// Defaults applied to zero Config fields.
const (
	DefaultListenAddr        = "/ip4/127.0.0.1/tcp/0"
	DefaultUserAgent         = "hivemind-go"
	DefaultMaxMessageSize    = 4 << 20 // hivemind's persistent_conn_max_msg_size
	DefaultStreamIdleTimeout = 5 * time.Minute
	DefaultBootstrapTimeout  = 30 * time.Second
)

// Config configures a Host. The zero value is a loopback-only host with a fresh Ed25519 identity, like
// hivemind's P2P.create(). Config is passed by value and never modified; zero fields mean their default.
type Config struct {
	// IdentityPath is the identity file (a libp2p crypto.pb.PrivateKey, as hivemind and p2p-keygen write
	// it). A missing file is created with a new RSA-2048 key (hivemind's generate_identity); its directory
	// must exist. Empty: a fresh Ed25519 key, unless PrivateKey is set.
	IdentityPath string
	// PrivateKey is an identity given directly; it excludes IdentityPath.
	PrivateKey crypto.PrivKey
	// ListenAddrs are the multiaddrs to listen on (default DefaultListenAddr). TCP is always enabled;
	// QUIC only when one of them is a /quic-v1 address.
	ListenAddrs []string
	// AnnounceAddrs, when set, replace the addresses the host announces (identify, kad). Ports must be
	// explicit (no port 0), as in hivemind.
	AnnounceAddrs []string
	// InitialPeers are full multiaddrs ending in /p2p/<peer id> (e.g. /ip4/…/tcp/…/p2p/Qm…). New connects to
	// all of them concurrently and fails only when none can be reached.
	InitialPeers []string
	// BootstrapTimeout bounds connecting to the initial peers (default DefaultBootstrapTimeout).
	BootstrapTimeout time.Duration
	// UserAgent is announced through identify (default DefaultUserAgent).
	UserAgent string
	// DHTMode of the kad DHT used for peer routing (default DHTModeServer).
	DHTMode DHTMode
	// Reachability forces public or private reachability; empty lets libp2p detect it.
	Reachability Reachability
	// MaxMessageSize caps every frame read or written by the servicer machinery, checked before any
	// allocation (default DefaultMaxMessageSize, 4 MiB, as hivemind).
	MaxMessageSize int
	// StreamIdleTimeout is how long a handler waits for the next frame (or for a frame to be sent) before
	// resetting the stream, so a peer that stalls mid-frame cannot pin a goroutine (default
	// DefaultStreamIdleTimeout). It does not limit how long a handler may run.
	StreamIdleTimeout time.Duration
	// Limits size the resource and connection managers; zero fields take defaults.
	Limits Limits

	// NAT traversal (see options_nat.go). The zero values are hivemind's defaults (P2P.create), except
	// NATPortMap, which hivemind turns on.

	// DisableRelay turns the circuit v2 relay transport and the relay service off (hivemind
	// use_relay=False): the host neither reaches peers through relays nor is reached through one.
	// With the relay on (the default), every outgoing stream (DHT RPCs, servicer calls, peer routing)
	// may run over a limited (relayed) connection, as p2pd's -relay=1 allows.
	DisableRelay bool
	// DisableRelayService keeps the relay transport but relays for nobody (p2pd -relayService=0).
	DisableRelayService bool
	// Relay sizes the relay service; zero fields take p2pd's defaults (DefaultRelayLimits).
	Relay RelayLimits
	// AutoRelay reserves slots on relays while the host finds itself private, and announces the
	// /p2p-circuit addresses they give it (hivemind use_auto_relay). The candidates are TrustedRelays,
	// or the initial peers when there are none, then the peers the kad DHT knows closest to this host.
	// It needs the relay, and a relay or an initial peer to start from.
	AutoRelay bool
	// TrustedRelays are relays (full multiaddrs ending in /p2p/<peer id>) auto-relay tries first
	// (hivemind trusted_relays); only with AutoRelay.
	TrustedRelays []string
	// DisableAutoNAT turns the AutoNAT service for other peers and hole punching (DCUtR) off
	// (hivemind auto_nat=False). The host still asks its peers for its own reachability.
	DisableAutoNAT bool
	// NATPortMap asks the local network's router for port mappings (UPnP, NAT-PMP). Off by default,
	// unlike hivemind: it sends discovery traffic to the local network, which the default loopback
	// host has no use for.
	NATPortMap bool
	// NoListen: listen on no address and dial out only (hivemind no_listen); the relay transport
	// still runs when the relay is on. It excludes ListenAddrs.
	NoListen bool
	// Logger receives the host's logs (default slog.Default()).
	Logger *slog.Logger
}

// Validate checks every field and returns one error per invalid field, joined, each wrapping
// ErrInvalidConfig and naming the field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.IdentityPath != "" && c.PrivateKey != nil {
		bad("IdentityPath", "set together with PrivateKey; use one of them")
	}
	for i, s := range c.ListenAddrs {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad(fmt.Sprintf("ListenAddrs[%d]", i), "%q: %v", s, err)
		}
	}
	for i, s := range c.AnnounceAddrs {
		if err := checkAnnounceAddr(s); err != nil {
			bad(fmt.Sprintf("AnnounceAddrs[%d]", i), "%q: %v", s, err)
		}
	}
	for i, s := range c.InitialPeers {
		if _, err := parseInitialPeer(s); err != nil {
			bad(fmt.Sprintf("InitialPeers[%d]", i), "%q: %v", s, err)
		}
	}
	if c.BootstrapTimeout < 0 {
		bad("BootstrapTimeout", "negative (%v)", c.BootstrapTimeout)
	}
	switch c.DHTMode {
	case "", DHTModeServer, DHTModeClient, DHTModeAuto:
	default:
		bad("DHTMode", "%q is not server, client or auto", c.DHTMode)
	}
	switch c.Reachability {
	case "", ReachabilityPublic, ReachabilityPrivate:
	default:
		bad("Reachability", "%q is not public or private", c.Reachability)
	}
	c.validateNAT(bad)
	if c.MaxMessageSize < 0 {
		bad("MaxMessageSize", "negative (%d)", c.MaxMessageSize)
	}
	if c.StreamIdleTimeout < 0 {
		bad("StreamIdleTimeout", "negative (%v)", c.StreamIdleTimeout)
	}
	c.Limits.validate(bad)
	if d := c.withDefaults(); c.MaxMessageSize >= 0 && c.Limits.MaxMemoryPerPeer >= 0 &&
		d.Limits.MaxMemoryPerPeer < int64(d.MaxMessageSize) {
		bad("Limits.MaxMemoryPerPeer", "%d cannot hold one frame of MaxMessageSize (%d)", d.Limits.MaxMemoryPerPeer, d.MaxMessageSize)
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy with every zero field set to its default. The caller's Config is untouched.
func (c Config) withDefaults() Config {
	if len(c.ListenAddrs) == 0 && !c.NoListen {
		c.ListenAddrs = []string{DefaultListenAddr}
	}
	if c.BootstrapTimeout == 0 {
		c.BootstrapTimeout = DefaultBootstrapTimeout
	}
	if c.UserAgent == "" {
		c.UserAgent = DefaultUserAgent
	}
	if c.DHTMode == "" {
		c.DHTMode = DHTModeServer
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.StreamIdleTimeout == 0 {
		c.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	c.Limits = c.Limits.withDefaults()
	c.Relay = c.Relay.withDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// checkAnnounceAddr rejects unparsable addresses and port 0 (hivemind: "Please specify an explicit port
// in announce_maddrs").
func checkAnnounceAddr(s string) error {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return err
	}
	for _, code := range []int{ma.P_TCP, ma.P_UDP} {
		if v, err := m.ValueForProtocol(code); err == nil && v == "0" {
			return errors.New("port 0 is not supported: give an explicit port")
		}
	}
	return nil
}

// parseInitialPeer parses a full multiaddr ending in /p2p/<peer id>.
func parseInitialPeer(s string) (*peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, err
	}
	info, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return nil, fmt.Errorf("want a multiaddr ending in /p2p/<peer id>: %w", err)
	}
	if len(info.Addrs) == 0 {
		return nil, errors.New("no transport address before /p2p/<peer id>")
	}
	return info, nil
}

// parsePeerList parses full multiaddrs ending in /p2p/<peer id> (parseInitialPeer) into one
// AddrInfo per peer, in the order the peers first appear, each with all of its addresses. An
// invalid entry is an error wrapping ErrInvalidConfig that names field and the entry's index.
func parsePeerList(field string, list []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for i, s := range list {
		info, err := parseInitialPeer(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d]: %q: %w", ErrInvalidConfig, field, i, s, err)
		}
		if j := slices.IndexFunc(out, func(o peer.AddrInfo) bool { return o.ID == info.ID }); j >= 0 {
			out[j].Addrs = append(out[j].Addrs, info.Addrs...)
			continue
		}
		out = append(out, *info)
	}
	return out, nil
}
