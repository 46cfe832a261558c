package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/p2p"
)

const storeAbout = `Joins the DHT as a short-lived client-mode node (a worker process bootstrapping from
--initial-peers), stores VALUE under KEY at the --num-replicas nodes nearest to it and prints the
result as JSON: {"key", "stored", "expiration_time", "replicas_accepted", "replicas_wanted",
"replicas": [{"peer_id", "accepted", "error", "local"}]}. replicas_accepted counts the peers that
accepted the value; the short-lived node's own copy ("local": true) leaves with it and is not
counted, and "stored" means at least one peer accepted. Exits with status 1 when fewer than
--min-replicas peers accepted (default 1: at least one).
VALUE is JSON: '"text"', 42, -1, 1.5, [1, 2], {"a": 1}; {"$bytes": "<base64>"} is bytes and
{"$tuple": [...]} a tuple. --value-hex passes raw msgpack (hex) for values JSON cannot express.
A VALUE that starts with "-" (a negative number) is read as the VALUE, not a flag; a KEY that starts
with "-" goes after "--" (store -- -key 1).
--subkey stores into a dictionary value (hivemind's subkey=...): S is JSON when it parses as JSON
(5 is an integer subkey), else a string.`

// storeCommand is a parsed store command line.
type storeCommand struct {
	o           oneShotFlags
	keyText     string        // KEY as given
	item        dht.StoreItem // Expiration is set when the value is stored
	ttl         float64
	numReplicas int
	minReplicas int
}

// storeValueArg reports whether arg, an argument that starts with "-", is store's VALUE: it comes
// right after the KEY (multiaddrs taken as initial peers aside) and parses as JSON (-1, -2.5e3).
func storeValueArg(read []string, arg string) bool {
	n := 0
	for _, a := range read {
		if !isPeerMaddr(a) {
			n++
		}
	}
	if n != 1 {
		return false
	}
	_, err := fromJSON(arg)
	return err == nil
}

// parseStore reads a store command line; every error is a usage error.
func parseStore(args []string, stderr io.Writer) (storeCommand, error) {
	fs := newFlagSet("store", "store KEY VALUE [--subkey S] [--ttl SECONDS] [--min-replicas N] --initial-peers MADDR...", storeAbout, stderr)
	var c storeCommand
	c.o.register(fs)
	fs.Float64Var(&c.ttl, "ttl", 300, "seconds until the record expires (expiration_time = now + ttl)")
	valueHex := fs.Bool("value-hex", false, "VALUE is raw msgpack in hex")
	fs.IntVar(&c.numReplicas, "num-replicas", dht.DefaultNumReplicas, "store at this many nearest nodes (the replicas wanted)")
	fs.IntVar(&c.minReplicas, "min-replicas", 1, "exit with status 1 when fewer peers accepted the value")
	pos, err := cli.ParseArgs(fs, args, storeValueArg)
	if err != nil {
		return c, err
	}
	rest := splitPeers(pos, &c.o.peers)
	switch {
	case len(rest) != 2:
		return c, cli.Usagef("store wants KEY and VALUE arguments, got %d argument(s)", len(rest))
	case !(c.ttl > 0):
		return c, cli.Usagef("--ttl must be positive, got %v", c.ttl)
	case c.numReplicas < 1:
		return c, cli.Usagef("--num-replicas must be at least 1, got %d", c.numReplicas)
	case c.minReplicas < 0 || c.minReplicas > c.numReplicas:
		return c, cli.Usagef("--min-replicas must be between 0 and --num-replicas (%d), got %d", c.numReplicas, c.minReplicas)
	}
	c.keyText = rest[0]
	if c.item.Key, err = c.o.key(rest[0]); err != nil {
		return c, cli.Usagef("KEY: %v", err)
	}
	if *valueHex {
		raw, err := hex.DecodeString(rest[1])
		if err != nil {
			return c, cli.Usagef("VALUE is not hex: %v", err)
		}
		if _, err := msgpack.Unmarshal(raw); err != nil {
			return c, cli.Usagef("VALUE is not one msgpack value: %v", err)
		}
		c.item.Value = msgpack.Raw(raw)
	} else if c.item.Value, err = fromJSON(rest[1]); err != nil {
		return c, cli.Usagef("VALUE must be JSON (e.g. '\"text\"', 42, [1, 2]); --value-hex takes raw msgpack: %v", err)
	}
	if c.o.subkey != "" {
		c.item.Subkey = c.o.subkeyValue()
	}
	return c, nil
}

func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseStore(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.timeout)
	defer cancel()
	w, err := c.o.join(ctx, "store", ipc.DHTParams{NumReplicas: c.numReplicas}, stderr)
	if err != nil {
		return err
	}
	defer w.Stop(context.Background())
	c.item.Expiration = dht.SystemClock{}.Now() + c.ttl
	res, err := w.Store(ctx, c.item)
	if err != nil {
		return fmt.Errorf("store %q: %w", c.keyText, err)
	}
	out, short := c.report(res, w.NodeID())
	if err := cli.PrintJSON(stdout, out); err != nil {
		return err
	}
	return short
}

// report renders a store's result, and returns an error when fewer than --min-replicas peers
// accepted the value. self is this short-lived node: its own copy leaves with it, so it is listed
// ("local": true) but not counted.
func (c storeCommand) report(res dht.StoreResult, self dht.ID) (*cli.Object, error) {
	var accepted, rejected, silent int
	local := false
	replicas := []*cli.Object{}
	for _, r := range res.Replicas {
		peer := fmt.Sprintf("%x", []byte(r.Peer))
		if id, err := p2p.PeerIDFromBytes([]byte(r.Peer)); err == nil {
			peer = id.String()
		}
		rep := (&cli.Object{}).Add("peer_id", peer).Add("accepted", r.Accepted)
		if r.Err != nil {
			rep.Add("error", r.Err.Error())
		}
		switch {
		case r.Node == self:
			rep.Add("local", true)
			local = true
		case r.Accepted:
			accepted++
		case r.Err != nil:
			silent++
		default:
			rejected++
		}
		replicas = append(replicas, rep)
	}
	out := (&cli.Object{}).Add("key", c.keyText)
	if c.item.Subkey != nil {
		out.Add("subkey", toJSON(c.item.Subkey))
	}
	out.Add("stored", accepted > 0).
		Add("expiration_time", c.item.Expiration).
		Add("replicas_accepted", accepted).
		Add("replicas_wanted", c.numReplicas).
		Add("replicas", replicas)
	if accepted >= c.minReplicas {
		return out, nil
	}
	var why []string
	if rejected > 0 {
		why = append(why, fmt.Sprintf("%d rejected it (a newer value exists, or a validator refused it)", rejected))
	}
	if silent > 0 {
		why = append(why, fmt.Sprintf("%d did not answer", silent))
	}
	found := accepted + rejected + silent // the nearest nodes the store reached, itself aside
	if local {
		found++
		why = append(why, "one of the nearest nodes is this short-lived node, whose copy leaves with it")
	}
	if found < c.numReplicas {
		why = append(why, fmt.Sprintf("only %d peer(s) answered: the swarm is smaller, or the lookup found no more", accepted+rejected))
	}
	err := fmt.Errorf("%w: %d of %d wanted, fewer than --min-replicas %d", errTooFewReplicas, accepted, c.numReplicas, c.minReplicas)
	if len(why) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.Join(why, "; "))
	}
	return out, err
}
