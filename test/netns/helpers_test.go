package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	circuitclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/util"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"
)

// The helper programs this test binary becomes when envHelper names one (TestMain). They run
// inside a bed's hosts, started by helperCommand; each reports on stdout.
const (
	// helperListen ADDR: accept TCP connections on ADDR and answer each with the address it came
	// from, until stdin closes. Prints "ready" once listening.
	helperListen = "tcp-listen"
	// helperDial ADDR: connect to ADDR (3 s), print the line it answers; exit status 1 on failure.
	helperDial = "tcp-dial"
	// helperCircuits RELAY N: a peer that asks the relay RELAY (a full multiaddr) for N circuits at
	// once (circuitProbe).
	helperCircuits = "circuits"
)

// helperCommand runs this test binary as helper name inside h.
func helperCommand(ctx context.Context, h *Host, name string, args ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := h.Command(ctx, exe, args...)
	cmd.Env = append(os.Environ(), envHelper+"="+name)
	return cmd, nil
}

func runHelper(name string, args []string) int {
	var err error
	switch name {
	case helperListen:
		err = tcpListen(args)
	case helperDial:
		err = tcpDial(args)
	case helperCircuits:
		err = circuitProbe(args)
	default:
		err = fmt.Errorf("unknown helper %q", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper", name+":", err)
		return 1
	}
	return 0
}

func tcpListen(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want ADDR, got %q", args)
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintln(c, c.RemoteAddr().String())
			_ = c.Close()
		}
	}()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return l.Close()
}

func tcpDial(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want ADDR, got %q", args)
	}
	c, err := net.DialTimeout("tcp", args[0], 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Print(line)
	return nil
}

// probeReport is what circuitProbe prints once its circuits are asked for.
type probeReport struct {
	// Statuses are the relay's answers to the circuit requests, in order (pbv2.Status names).
	Statuses []string `json:"statuses"`
}

// circuitProbe is a peer that opens more circuits than a relay allows: two libp2p hosts of its
// own (dialling out only, no relay transport, no resource limits), one holding a reservation on
// the relay and accepting every circuit the relay brings it (holding the stream open, never
// upgrading it), the other asking the relay for N circuits to it at once. It prints a
// probeReport, holds the circuits until stdin closes, then closes them and both hosts and prints
// "closed".
func circuitProbe(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("want RELAY N, got %q", args)
	}
	relay, err := peer.AddrInfoFromP2pAddr(ma.StringCast(args[0]))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newHost := func() (host.Host, error) {
		return libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay(), libp2p.Transport(tcp.NewTCPTransport),
			libp2p.ResourceManager(&network.NullResourceManager{}))
	}
	dst, err := newHost()
	if err != nil {
		return err
	}
	defer dst.Close()
	var mu sync.Mutex
	var held []network.Stream
	dst.SetStreamHandler(circuitproto.ProtoIDv2Stop, func(s network.Stream) {
		var msg pbv2.StopMessage
		if err := pbio.NewDelimitedReader(s, 4096).ReadMsg(&msg); err != nil {
			_ = s.Reset()
			return
		}
		if err := pbio.NewDelimitedWriter(s).WriteMsg(&pbv2.StopMessage{Type: pbv2.StopMessage_STATUS.Enum(), Status: pbv2.Status_OK.Enum()}); err != nil {
			_ = s.Reset()
			return
		}
		mu.Lock()
		held = append(held, s)
		mu.Unlock()
	})
	if _, err := circuitclient.Reserve(ctx, dst, *relay); err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	src, err := newHost()
	if err != nil {
		return err
	}
	defer src.Close()
	if err := src.Connect(ctx, *relay); err != nil {
		return err
	}
	var report probeReport
	var open []network.Stream
	for range n {
		s, err := src.NewStream(ctx, relay.ID, circuitproto.ProtoIDv2Hop)
		if err != nil {
			return err
		}
		open = append(open, s)
		if err := pbio.NewDelimitedWriter(s).WriteMsg(&pbv2.HopMessage{
			Type: pbv2.HopMessage_CONNECT.Enum(), Peer: util.PeerInfoToPeerV2(peer.AddrInfo{ID: dst.ID()}),
		}); err != nil {
			return err
		}
		var resp pbv2.HopMessage
		if err := pbio.NewDelimitedReader(s, 4096).ReadMsg(&resp); err != nil {
			return err
		}
		report.Statuses = append(report.Statuses, resp.GetStatus().String())
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, s := range open {
		_ = s.Reset()
	}
	dst.RemoveStreamHandler(circuitproto.ProtoIDv2Stop)
	mu.Lock()
	for _, s := range held {
		_ = s.Reset()
	}
	mu.Unlock()
	fmt.Println("closed")
	return nil
}
