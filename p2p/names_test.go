package p2p

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEmptyNamespaceIsANamespace: hivemind builds "::Class.method" for namespace="" and
// "Class.method" only for None; both are separate handlers on one host, and both can be called.
func TestEmptyNamespaceIsANamespace(t *testing.T) {
	assert.Equal(t, "ExampleServicer.rpc_x", HandleName(Namespace{}, testClass, "rpc_x"))
	assert.Equal(t, "::ExampleServicer.rpc_x", HandleName(NamespaceOf(""), testClass, "rpc_x"))
	assert.Equal(t, "ns::ExampleServicer.rpc_x", HandleName(NamespaceOf("ns"), testClass, "rpc_x"))
	assert.False(t, Namespace{}.IsSet())
	assert.True(t, NamespaceOf("").IsSet())

	server, client := hostPair(t, netMock, Config{})
	ctx := testContext(t)
	for i, ns := range []Namespace{{}, NamespaceOf("")} {
		sv := Servicer{Host: server, Namespace: ns, Class: testClass}
		factor := int64(i + 2)
		require.NoError(t, AddUnaryHandler(server, sv.Name("rpc_times"), func(_ context.Context, _ PeerID, req num) (num, error) {
			return n(req.GetValue() * factor), nil
		}))
	}
	for i, ns := range []Namespace{{}, NamespaceOf("")} {
		stub := Stub{Host: client, Peer: server.ID(), Namespace: ns, Class: testClass}
		got, err := CallUnary[num](ctx, client, stub.Peer, stub.Name("rpc_times"), n(10))
		require.NoError(t, err)
		assert.Equal(t, int64(10*(i+2)), got.GetValue(), "namespace %q set=%v", ns, ns.IsSet())
	}
}
