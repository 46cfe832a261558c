package p2p

import (
	"fmt"
	"strings"
)

// Namespace is the namespace of a servicer's handle names, hivemind's Optional[str]: the zero value is
// no namespace, and NamespaceOf(s) is the namespace s — even when s is empty, since hivemind builds
// "::Class.method" for namespace="" and only None gives "Class.method".
type Namespace struct {
	name string
	set  bool
}

// NamespaceOf returns the namespace name (which may be empty).
func NamespaceOf(name string) Namespace { return Namespace{name: name, set: true} }

// String returns the namespace's name ("" for none).
func (n Namespace) String() string { return n.name }

// IsSet reports whether n is a namespace rather than the zero Namespace (none).
func (n Namespace) IsSet() bool { return n.set }

// HandleName builds a hivemind handle name, the libp2p protocol ID of one RPC: "Class.method" with
// no namespace, or "namespace::Class.method" with one, even an empty one
// (ServicerBase._get_handle_name). Class is the Python servicer class name (e.g. "DHTProtocol") and
// method the rpc_* method (e.g. "rpc_ping"); both are part of the wire protocol and are never
// derived from Go identifiers.
func HandleName(namespace Namespace, class, method string) string {
	var b strings.Builder
	if namespace.set {
		b.WriteString(namespace.name)
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
	Namespace Namespace
	Class     string
}

// Name returns the handle name of method on this stub's servicer.
func (s Stub) Name(method string) string { return HandleName(s.Namespace, s.Class, method) }

// Servicer names the RPCs one servicer class registers on a host, like hivemind's ServicerBase with
// add_p2p_handlers(namespace=…). Pass Name(method) to AddUnaryHandler and the other Add functions.
type Servicer struct {
	Host      *Host
	Namespace Namespace
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
