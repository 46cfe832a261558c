package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

const statusAbout = `Shows the workers of a running "supervisor run": state, pid, peer ID, restarts, routing-table
size, stored keys, connections (direct and relayed), reachability (public, private or unknown, as
AutoNAT found it), the relays holding a reservation for the worker, the circuits it relays for
others, and last exit; then every worker's multiaddrs, /p2p-circuit ones included. It finds the
supervisor through the admin address file in the state directory, or --admin-addr.`

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", "status [flags]", statusAbout, stderr)
	stateDir := fs.String("state-dir", defaultStateDir(), "the supervisor's state directory")
	adminAddr := fs.String("admin-addr", "", "the supervisor's admin endpoint (host:port); overrides --state-dir")
	asJSON := fs.Bool("json", false, "print the raw JSON status")
	if err := cli.ParseFlags(fs, args); err != nil {
		return err
	}
	addr := *adminAddr
	if addr == "" {
		data, err := os.ReadFile(filepath.Join(*stateDir, adminAddrFile))
		if err != nil {
			return fmt.Errorf("no running supervisor found in %s (is \"supervisor run\" running? try --state-dir or --admin-addr)", *stateDir)
		}
		addr = strings.TrimSpace(string(data))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return cli.Usagef("--admin-addr %q: %v", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("supervisor at %s does not answer: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("supervisor at %s: %s", addr, resp.Status)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var st struct {
		PID      int    `json:"pid"`
		StateDir string `json:"state_dir"`
		Slots    []struct {
			Name             string   `json:"name"`
			State            string   `json:"state"`
			PID              int      `json:"pid"`
			PeerID           string   `json:"peer_id"`
			Maddrs           []string `json:"maddrs"`
			Restarts         int      `json:"restarts"`
			LastExit         string   `json:"last_exit"`
			Error            string   `json:"error"`
			RoutingTableSize int      `json:"routing_table_size"`
			StoredKeys       int      `json:"stored_keys"`
			ConnectedPeers   int      `json:"connected_peers"`
			Alone            bool     `json:"alone"`

			// NAT is decoded with ipc's own type, as /status encodes it.
			NAT ipc.NATStatus `json:"nat"`
		} `json:"slots"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("supervisor at %s: bad status: %w", addr, err)
	}
	fmt.Fprintf(stdout, "supervisor pid %d, state %s\n", st.PID, st.StateDir)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tSTATE\tPID\tPEER ID\tRESTARTS\tROUTING\tKEYS\tPEERS\tCONNS\tREACHABILITY\tRELAYS\tCIRCUITS\tLAST EXIT")
	for _, s := range st.Slots {
		last := s.LastExit
		if s.Error != "" {
			last = s.Error
		}
		state := s.State
		if s.Alone {
			state += " (alone)" // started with no other slot to join; ipc hands it peers once one runs
		}
		n := s.NAT
		reach := n.Reachability
		switch {
		case reach == "":
			reach = "-" // no health check yet
		case n.Forced:
			reach += " (forced)"
		}
		conns := fmt.Sprintf("%d direct, %d relayed", n.DirectConns, n.RelayedConns)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%d\t%s\n", s.Name, state, s.PID, s.PeerID,
			s.Restarts, s.RoutingTableSize, s.StoredKeys, s.ConnectedPeers, conns, reach, len(n.Reservations), n.CircuitsOpen, last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range st.Slots {
		for _, m := range s.Maddrs {
			fmt.Fprintf(stdout, "%s  %s\n", s.Name, m)
		}
		for _, m := range s.NAT.RelayAddrs {
			fmt.Fprintf(stdout, "%s  %s/p2p/%s (through a relay)\n", s.Name, m, s.PeerID)
		}
	}
	return nil
}
