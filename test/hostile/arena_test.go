package hostile

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/validator"
	"github.com/hivemind-go/hivemind/p2p"
	"github.com/hivemind-go/hivemind/p2p/dhtrpc"
	"github.com/hivemind-go/hivemind/proto/dhtpb"
	"github.com/hivemind-go/hivemind/proto/p2pdpb"
)

// Bounds of the node under attack: small enough that floods reach them in a test.
const (
	targetMaxStorageBytes   = 32 << 20
	targetMaxStorageEntries = 20_000
	// echoStream is a stream handler the target also serves (the DHT has unary handlers only; the
	// wrong-marker attack needs the stream framing).
	echoStream = "Hostile.rpc_echo_stream"
	// streamBound is how long a hostile stream may stay open before the attempt counts as hung: a
	// liveness bound, generous for 3 MiB writes on a loaded machine under -race.
	streamBound = 30 * time.Second
)

// arena is a node under attack (the target: a p2p.Host serving a dht.Node with an RSA validator and
// storage bounds), an honest peer that uses it, and an attacker: a raw go-libp2p host that writes
// whatever bytes it likes on streams to the target. Everything runs on loopback in this process.
type arena struct {
	t        *testing.T
	target   *dhtrpc.Node
	thost    *p2p.Host
	honest   *dhtrpc.Node
	hhost    *p2p.Host
	hsigner  *validator.RSASignature
	attacker host.Host
	// honestOps counts the honest peer's calls made by checkHonest.
	honestOps int
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// arenaKeys are the RSA keys of the target's and the honest peer's validators, generated once per
// test run (RSA key generation is slow under -race).
type arenaKeys struct {
	target, honest *rsa.PrivateKey
}

func newArenaKeys(t testing.TB) arenaKeys {
	t.Helper()
	var k arenaKeys
	for _, dst := range []**rsa.PrivateKey{&k.target, &k.honest} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		*dst = key
	}
	return k
}

func newArena(ctx context.Context, t *testing.T, keys arenaKeys) *arena {
	t.Helper()
	a := &arena{t: t}
	var err error
	a.thost, err = p2p.New(ctx, p2p.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.thost.Close() })
	tval, err := validator.NewRSASignature(keys.target, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a.target, err = dhtrpc.NewNode(ctx, a.thost, dht.Config{
		WaitTimeout:       time.Second,
		MaxStorageBytes:   targetMaxStorageBytes,
		MaxStorageEntries: targetMaxStorageEntries,
		Validator:         tval,
		Logger:            quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.target.Close() })
	if err := p2p.AddStreamHandler(a.thost, echoStream, func(_ context.Context, _ p2p.PeerID, reqs iter.Seq2[*dhtpb.PingRequest, error], send func(*dhtpb.PingRequest) error) error {
		for r, err := range reqs {
			if err != nil {
				return err
			}
			if err := send(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	taddr := a.thost.VisibleMaddrs()[0].String()
	a.hhost, err = p2p.New(ctx, p2p.Config{InitialPeers: []string{taddr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.hhost.Close() })
	a.hsigner, err = validator.NewRSASignature(keys.honest, quiet())
	if err != nil {
		t.Fatal(err)
	}
	a.honest, err = dhtrpc.NewNode(ctx, a.hhost, dht.Config{
		WaitTimeout:  time.Second,
		InitialPeers: []dht.PeerID{dhtrpc.PeerIDFromP2P(a.thost.ID())},
		Validator:    a.hsigner,
		Logger:       quiet(),
		// The honest peer must read from the target, not from its own copy.
		DisableCacheLocally: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.honest.Close() })

	a.attacker, err = libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.attacker.Close() })
	if err := a.attacker.Connect(ctx, peer.AddrInfo{ID: a.thost.ID(), Addrs: a.thost.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return a
}

// checkHonest proves the target still serves an honest peer: a ping through the transport, and a
// record stored by the honest peer and read back from the target, each within a generous bound.
func (a *arena) checkHonest(ctx context.Context, label string) error {
	const bound = 30 * time.Second // liveness, not performance
	cctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	a.honestOps += 3
	tr := dhtrpc.NewTransport(a.hhost)
	if _, err := tr.Ping(cctx, dhtrpc.PeerIDFromP2P(a.thost.ID()), &dhtpb.PingRequest{}); err != nil {
		return fmt.Errorf("%s: the target no longer answers an honest ping: %w", label, err)
	}
	key := dht.MustKey(fmt.Sprintf("honest-%s-%d", label, a.honestOps))
	res, err := a.honest.Store(cctx, dht.StoreItem{Key: key, Value: "honest", Expiration: dht.SystemClock{}.Now() + 600})
	if err != nil || !res.Stored {
		return fmt.Errorf("%s: honest store failed: %+v %v", label, res, err)
	}
	got, err := a.target.Get(cctx, key, dht.GetOptions{})
	if err != nil || got == nil {
		accepted := res.Accepted()
		return fmt.Errorf("%s: an honest record never reached the target (%d of %d replicas accepted): %v",
			label, accepted, len(res.Replicas), err)
	}
	return nil
}

// stream opens a raw stream from the attacker to the target for the given handle name.
func (a *arena) stream(ctx context.Context, name string) (network.Stream, error) {
	return a.attacker.NewStream(ctx, a.thost.ID(), protocol.ID(name))
}

// outcome is what became of one hostile stream.
type outcome struct {
	reply   []byte // the reply frame body (nil when none)
	ended   bool   // the target closed or reset the stream without a reply
	timeout bool   // nothing within the bound: the target kept the stream open (a failure)
}

// send writes raw bytes on a new stream (closing the write side after them when closeWrite) and
// reads one uvarint-delimited reply, or notes that the stream ended without one.
func (a *arena) send(ctx context.Context, name string, data []byte, closeWrite bool) (outcome, error) {
	s, err := a.stream(ctx, name)
	if err != nil {
		return outcome{}, err
	}
	defer func() { _ = s.Reset() }()
	_ = s.SetDeadline(time.Now().Add(streamBound))
	if _, err := s.Write(data); err != nil {
		return outcome{ended: true}, nil // reset while we were writing
	}
	if closeWrite {
		_ = s.CloseWrite()
	}
	body, err := readFrame(s)
	switch {
	case err == nil:
		return outcome{reply: body}, nil
	case errors.Is(err, errDeadline):
		return outcome{timeout: true}, nil
	default:
		return outcome{ended: true}, nil
	}
}

var errDeadline = errors.New("hostile: read deadline")

// readFrame reads one uvarint-length-prefixed frame (replies are small: capped at 64 MiB).
func readFrame(r io.Reader) ([]byte, error) {
	br := &byteReader{r: r}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, classify(err)
	}
	if n > 64<<20 {
		return nil, fmt.Errorf("hostile: reply of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, classify(err)
	}
	return body, nil
}

// classify maps a read past the stream deadline to errDeadline.
func classify(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errDeadline
	}
	return err
}

type byteReader struct{ r io.Reader }

func (b *byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}

// unaryFrame is a well-formed unary request frame for name carrying data (p2pd's envelope), with
// mutate applied to the envelope before it is encoded.
func unaryFrame(t testing.TB, target peer.ID, name string, data []byte, mutate func(*p2pdpb.PersistentConnectionRequest)) []byte {
	t.Helper()
	callID := make([]byte, 16)
	_, _ = rand.Read(callID)
	env := &p2pdpb.PersistentConnectionRequest{
		CallId: callID,
		Message: &p2pdpb.PersistentConnectionRequest_CallUnary{CallUnary: &p2pdpb.CallUnaryRequest{
			Peer: []byte(target), Proto: proto.String(name), Data: data,
		}},
	}
	if mutate != nil {
		mutate(env)
	}
	body, err := proto.MarshalOptions{AllowPartial: true}.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// decodeReply decodes a unary reply frame body: the response bytes, or the error text.
func decodeReply(body []byte) (resp []byte, errText string, err error) {
	var env p2pdpb.PersistentConnectionRequest
	if err := proto.Unmarshal(body, &env); err != nil {
		return nil, "", err
	}
	r := env.GetUnaryResponse()
	if r == nil {
		return nil, "", fmt.Errorf("hostile: reply without unaryResponse")
	}
	if e := r.GetError(); e != nil {
		return nil, string(e), nil
	}
	return r.GetResponse(), "", nil
}

// call sends one well-formed unary request with a dhtpb payload and returns the decoded response or
// the remote error text.
func (a *arena) call(ctx context.Context, method string, req proto.Message, resp proto.Message) (errText string, err error) {
	data, err := proto.Marshal(req)
	if err != nil {
		return "", err
	}
	return a.callRaw(ctx, method, data, resp)
}

// callRaw is call with the payload bytes given as they are.
func (a *arena) callRaw(ctx context.Context, method string, data []byte, resp proto.Message) (string, error) {
	out, err := a.send(ctx, dhtrpc.HandleName(method), unaryFrame(a.t, a.thost.ID(), dhtrpc.HandleName(method), data, nil), false)
	if err != nil {
		return "", err
	}
	if out.reply == nil {
		return "", fmt.Errorf("hostile: no reply (ended=%v timeout=%v)", out.ended, out.timeout)
	}
	r, text, err := decodeReply(out.reply)
	if err != nil || text != "" {
		return text, err
	}
	return "", proto.Unmarshal(r, resp)
}
