package p2p

import (
	"fmt"
	"strings"
)

// HandleName builds a hivemind handle name, the libp2p protocol ID of one RPC: "Class.method", or
// "namespace::Class.method" when namespace is not empty (ServicerBase._get_handle_name). Class is the
// Python servicer class name (e.g. "DHTProtocol") and method the rpc_* method (e.g. "rpc_ping"); both
// are part of the wire protocol and are never derived from Go identifiers.
func HandleName(namespace, class, method string) string {
	var b strings.Builder
	if namespace != "" {
		b.WriteString(namespace)
		b.WriteString("::")
	}
	b.WriteString(class)
	b.WriteByte('.')
	b.WriteString(method)
	return b.String()
}

// checkHandleName rejects names multistream cannot carry: empty, containing a newline, or longer than
// its 1024-byte token limit (including the newline).
func checkHandleName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidHandleName)
	case strings.ContainsAny(name, "\n"):
		return fmt.Errorf("%w: %q contains a newline", ErrInvalidHandleName, name)
	case len(name) > 1023:
		return fmt.Errorf("%w: %d bytes, over multistream's 1023", ErrInvalidHandleName, len(name))
	}
	return nil
}

// Stub names the RPCs of one servicer class on one remote peer, like hivemind's StubBase bound to
// (p2p, peer, namespace). Pass Name(method) to CallUnary, CallStream and the other call functions.
type Stub struct {
	Host      *Host
	Peer      PeerID
	Namespace string
	Class     string
}

// Name returns the handle name of method on this stub's servicer.
func (s Stub) Name(method string) string { return HandleName(s.Namespace, s.Class, method) }

// Servicer names the RPCs one servicer class registers on a host, like hivemind's ServicerBase with
// add_p2p_handlers(namespace=…). Pass Name(method) to AddUnaryHandler and the other Add functions.
type Servicer struct {
	Host      *Host
	Namespace string
	Class     string
}

// Name returns the handle name of method on this servicer.
func (s Servicer) Name(method string) string { return HandleName(s.Namespace, s.Class, method) }

// Stub returns a stub for the same servicer class and namespace on peer p.
func (s Servicer) Stub(p PeerID) Stub {
	return Stub{Host: s.Host, Peer: p, Namespace: s.Namespace, Class: s.Class}
}

// Remove unregisters the given methods of this servicer (remove_p2p_handlers).
func (s Servicer) Remove(methods ...string) {
	for _, m := range methods {
		s.Host.RemoveHandler(s.Name(m))
	}
}
