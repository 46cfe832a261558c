package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/ipc"
	"github.com/hivemind-go/hivemind/p2p"
)

const getAbout = `Joins the DHT as a short-lived client-mode node (a worker process bootstrapping from
--initial-peers), looks KEY up and prints JSON: {"key", "found", "value", "expiration_time"}.
KEY is a string key (hivemind's dht.get("KEY")); --raw-key uses its bytes as a Python bytes key.
Values are decoded from msgpack: bytes print as {"$bytes": "<base64>"}, tuples as {"$tuple": [...]};
a dictionary value prints as {subkey: {"value", "expiration_time"}} when its subkeys are distinct
strings, as {"$map": [[subkey, {"value", "expiration_time"}], ...]} otherwise. Multiaddrs given after
--initial-peers as separate arguments are taken as more initial peers.`

const storeAbout = `Joins the DHT as a short-lived client-mode node (a worker process bootstrapping from
--initial-peers), stores VALUE under KEY and prints the result as JSON: {"key", "stored",
"expiration_time", "replicas": [{"peer_id", "accepted", "error"}]}. Exits with status 1 when no
replica accepted the value.
VALUE is JSON: '"text"', 42, 1.5, [1, 2], {"a": 1}; {"$bytes": "<base64>"} is bytes and
{"$tuple": [...]} a tuple. --value-hex passes raw msgpack (hex) for values JSON cannot express.
--subkey stores into a dictionary value (hivemind's subkey=...): S is JSON when it parses as JSON
(5 is an integer subkey), else a string.`

// oneShotFlags are the flags get and store share.
type oneShotFlags struct {
	peers   listFlag
	rawKey  bool
	subkey  string
	timeout time.Duration
	verbose bool
}

func (o *oneShotFlags) register(fs *flag.FlagSet) {
	fs.Var(&o.peers, "initial-peers", "multiaddrs of peers to join through, each ending in /p2p/<peer id> (required)")
	fs.BoolVar(&o.rawKey, "raw-key", false, "KEY's bytes are the key, as a Python bytes key (default: a string key)")
	fs.StringVar(&o.subkey, "subkey", "", "subkey of a dictionary value (JSON, or a plain string)")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "bound on the whole command")
	fs.BoolVar(&o.verbose, "verbose", false, "show the worker's logs on stderr")
}

func (o *oneShotFlags) key(s string) (dht.Key, error) {
	if o.rawKey {
		return dht.RawKey([]byte(s)), nil
	}
	return dht.KeyOf(s)
}

// subkeyValue parses --subkey: JSON when it is JSON, else the string itself.
func (o *oneShotFlags) subkeyValue() any {
	if v, err := fromJSON(o.subkey); err == nil {
		return v
	}
	return o.subkey
}

// join starts a client-mode worker bootstrapped from the initial peers.
func (o *oneShotFlags) join(ctx context.Context, name string, stderr io.Writer) (*ipc.Worker, error) {
	if len(o.peers) == 0 {
		return nil, usagef("%s needs --initial-peers (a multiaddr ending in /p2p/<peer id>, printed by \"supervisor run\")", name)
	}
	level := slog.Level(100) // silent: failures are returned as one line
	if o.verbose {
		level = slog.LevelDebug
	}
	node := ipc.NodeConfig{InitialPeers: o.peers, ClientMode: true}
	if err := node.Validate(); err != nil {
		return nil, &usageError{msg: oneLine(err)}
	}
	w, err := ipc.StartWorker(ctx, ipc.WorkerConfig{
		Name:   name,
		Node:   node,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	})
	if errors.Is(err, dht.ErrBootstrapFailed) {
		return nil, fmt.Errorf("cannot join the DHT: none of the initial peers answered (%s)", oneLine(err))
	}
	return w, err
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get", "get KEY [--subkey S] [--latest] --initial-peers MADDR...", getAbout, stderr)
	var o oneShotFlags
	o.register(fs)
	latest := fs.Bool("latest", false, "search for the latest value (merging dictionaries across replicas) instead of the first found")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	pos = splitPeers(pos, &o.peers)
	if len(pos) != 1 {
		return usagef("get wants exactly one KEY argument, got %d", len(pos))
	}
	key, err := o.key(pos[0])
	if err != nil {
		return usagef("KEY: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	w, err := o.join(ctx, "get", stderr)
	if err != nil {
		return err
	}
	defer w.Stop(context.Background())
	res, err := w.Get(ctx, key, dht.GetOptions{Latest: *latest})
	if err != nil {
		return fmt.Errorf("get %q: %w", pos[0], err)
	}
	out, err := getJSON(pos[0], res, o.subkey != "", o.subkeyValue())
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

// getJSON renders a Get result.
func getJSON(key string, res *dht.Result, hasSubkey bool, subkey any) (*orderedObject, error) {
	out := &orderedObject{}
	add := func(k string, v any) { out.keys, out.values = append(out.keys, k), append(out.values, v) }
	add("key", key)
	if hasSubkey {
		add("subkey", toJSON(subkey))
	}
	if res == nil {
		add("found", false)
		return out, nil
	}
	if !res.IsDictionary {
		if hasSubkey {
			add("found", false)
			return out, nil
		}
		v, err := msgpack.Unmarshal(res.Value)
		if err != nil {
			return nil, fmt.Errorf("value is not valid msgpack: %w", err)
		}
		add("found", true)
		add("value", toJSON(v))
		add("expiration_time", res.Expiration)
		return out, nil
	}
	if hasSubkey {
		want, err := msgpack.Marshal(subkey)
		if err != nil {
			return nil, usagef("--subkey: %v", err)
		}
		for _, e := range res.Dictionary {
			if string(e.Subkey) != string(want) {
				continue
			}
			v, err := msgpack.Unmarshal(e.Value)
			if err != nil {
				return nil, fmt.Errorf("subkey value is not valid msgpack: %w", err)
			}
			add("found", true)
			add("value", toJSON(v))
			add("expiration_time", e.Expiration)
			return out, nil
		}
		add("found", false)
		return out, nil
	}
	// The dictionary prints as a JSON object keyed by subkey when its subkeys are distinct strings,
	// and as {"$map": [[subkey, entry], ...]} otherwise.
	dict := orderedObject{}
	seen := make(map[string]bool, len(res.Dictionary))
	plain := true
	var pairs [][]any
	for _, e := range res.Dictionary {
		v, err := msgpack.Unmarshal(e.Value)
		if err != nil {
			return nil, fmt.Errorf("subkey value is not valid msgpack: %w", err)
		}
		entry := orderedObject{keys: []string{"value", "expiration_time"}, values: []any{toJSON(v), e.Expiration}}
		sub, err := msgpack.Unmarshal(e.Subkey)
		if err != nil {
			return nil, fmt.Errorf("subkey is not valid msgpack: %w", err)
		}
		name, ok := sub.(string)
		if !ok || seen[name] {
			plain = false
		}
		seen[name] = true
		dict.keys, dict.values = append(dict.keys, name), append(dict.values, entry)
		pairs = append(pairs, []any{toJSON(sub), entry})
	}
	if !plain {
		// Subkeys that are not all distinct strings (an int 1 next to a string "1", two encodings
		// of one string) cannot key a JSON object: the form of a map with such keys, as --value
		// reads it.
		dict = orderedObject{keys: []string{tagMap}, values: []any{pairs}}
	}
	add("found", true)
	add("value", dict)
	add("expiration_time", res.Expiration)
	return out, nil
}

func runStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("store", "store KEY VALUE [--subkey S] [--ttl SECONDS] --initial-peers MADDR...", storeAbout, stderr)
	var o oneShotFlags
	o.register(fs)
	ttl := fs.Float64("ttl", 300, "seconds until the record expires (expiration_time = now + ttl)")
	valueHex := fs.Bool("value-hex", false, "VALUE is raw msgpack in hex")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	pos = splitPeers(pos, &o.peers)
	if len(pos) != 2 {
		return usagef("store wants KEY and VALUE arguments, got %d argument(s)", len(pos))
	}
	if *ttl <= 0 {
		return usagef("--ttl must be positive, got %v", *ttl)
	}
	key, err := o.key(pos[0])
	if err != nil {
		return usagef("KEY: %v", err)
	}
	var value any
	if *valueHex {
		raw, err := hex.DecodeString(pos[1])
		if err != nil {
			return usagef("VALUE is not hex: %v", err)
		}
		if _, err := msgpack.Unmarshal(raw); err != nil {
			return usagef("VALUE is not one msgpack value: %v", err)
		}
		value = msgpack.Raw(raw)
	} else if value, err = fromJSON(pos[1]); err != nil {
		return usagef("VALUE must be JSON (e.g. '\"text\"', 42, [1, 2]); --value-hex takes raw msgpack: %v", err)
	}
	item := dht.StoreItem{Key: key, Value: value, Expiration: dht.SystemClock{}.Now() + *ttl}
	if o.subkey != "" {
		item.Subkey = o.subkeyValue()
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	w, err := o.join(ctx, "store", stderr)
	if err != nil {
		return err
	}
	defer w.Stop(context.Background())
	res, err := w.Store(ctx, item)
	if err != nil {
		return fmt.Errorf("store %q: %w", pos[0], err)
	}
	out := orderedObject{}
	add := func(k string, v any) { out.keys, out.values = append(out.keys, k), append(out.values, v) }
	add("key", pos[0])
	if item.Subkey != nil {
		add("subkey", toJSON(item.Subkey))
	}
	add("stored", res.Stored)
	add("expiration_time", item.Expiration)
	replicas := []orderedObject{}
	for _, r := range res.Replicas {
		peer := fmt.Sprintf("%x", []byte(r.Peer))
		if id, err := p2p.PeerIDFromBytes([]byte(r.Peer)); err == nil {
			peer = id.String()
		}
		rep := orderedObject{keys: []string{"peer_id", "accepted"}, values: []any{peer, r.Accepted}}
		if r.Err != nil {
			rep.keys, rep.values = append(rep.keys, "error"), append(rep.values, r.Err.Error())
		}
		replicas = append(replicas, rep)
	}
	add("replicas", replicas)
	if err := printJSON(stdout, out); err != nil {
		return err
	}
	if !res.Stored {
		return errors.New("no replica accepted the value (a newer value exists, or a validator rejected it)")
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
