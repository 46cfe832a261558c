package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/hivemind-go/hivemind/dht"
	"github.com/hivemind-go/hivemind/dht/msgpack"
	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/ipc"
)

const getAbout = `Joins the DHT as a short-lived client-mode node (a worker process bootstrapping from
--initial-peers), looks KEY up and prints JSON: {"key", "found", "value", "expiration_time"}.
KEY is a string key (hivemind's dht.get("KEY")); --raw-key uses its bytes as a Python bytes key.
Values are decoded from msgpack: bytes print as {"$bytes": "<base64>"}, tuples as {"$tuple": [...]};
a dictionary value prints as {subkey: {"value", "expiration_time"}} when its subkeys are distinct
strings, as {"$map": [[subkey, {"value", "expiration_time"}], ...]} otherwise. Multiaddrs given after
--initial-peers as separate arguments are taken as more initial peers.
Signed records (hivemind's RSASignatureValidator: an "[owner:ssh-rsa …]" marker in the subkey, a
"[signature:…]" after the value, as albert's metrics and progress) are verified with the owner's
key, printed without the signature and marked "signed": "valid" or "invalid" (with
"signature_error"). --raw prints the stored bytes as hex instead of decoding them: "value_hex", and
for a dictionary "dictionary": [{"subkey_hex", "value_hex", "expiration_time"}, ...].`

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get", "get KEY [--subkey S] [--latest] [--raw] --initial-peers MADDR...", getAbout, stderr)
	var o oneShotFlags
	o.register(fs)
	latest := fs.Bool("latest", false, "search for the latest value (merging dictionaries across replicas) instead of the first found")
	raw := fs.Bool("raw", false, "print values and subkeys as the hex of their stored bytes (signatures included) instead of decoding them")
	pos, err := cli.ParseArgs(fs, args, nil)
	if err != nil {
		return err
	}
	rest := splitPeers(pos, &o.peers)
	if len(rest) != 1 {
		return cli.Usagef("get wants exactly one KEY argument, got %d", len(rest))
	}
	key, err := o.key(rest[0])
	if err != nil {
		return cli.Usagef("KEY: %v", err)
	}
	view := getView{name: rest[0], keyID: key.ID().Bytes(), raw: *raw}
	if o.subkey != "" {
		view.subkey = o.subkeyValue()
		if view.wantSubkey, err = msgpack.Marshal(view.subkey); err != nil {
			return cli.Usagef("--subkey: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	w, err := o.join(ctx, "get", ipc.DHTParams{}, stderr)
	if err != nil {
		return err
	}
	defer w.Stop(context.Background())
	res, err := w.Get(ctx, key, dht.GetOptions{Latest: *latest})
	if err != nil {
		return fmt.Errorf("get %q: %w", rest[0], err)
	}
	out, err := view.render(res)
	if err != nil {
		return err
	}
	return cli.PrintJSON(stdout, out)
}

// getView says how get prints a result.
type getView struct {
	name       string      // KEY as given
	keyID      []byte      // the key's DHT ID: the key of the records a validator checks
	subkey     any         // --subkey, when wantSubkey is set
	wantSubkey msgpack.Raw // --subkey's msgpack; nil: the whole value
	raw        bool        // --raw
}

// render prints a Get result (nil: not found) as JSON.
func (v getView) render(res *dht.Result) (*cli.Object, error) {
	out := &cli.Object{}
	out.Add("key", v.name)
	if v.wantSubkey != nil {
		out.Add("subkey", toJSON(v.subkey))
	}
	if res == nil || (!res.IsDictionary && v.wantSubkey != nil) {
		return out.Add("found", false), nil
	}
	if !res.IsDictionary {
		return v.addEntry(out.Add("found", true), dht.Record{Subkey: []byte(dht.TagRegular), Value: res.Value, Expiration: res.Expiration})
	}
	if v.wantSubkey != nil {
		for _, e := range res.Dictionary {
			if bytes.Equal(e.Subkey, v.wantSubkey) {
				return v.addEntry(out.Add("found", true), dht.Record{Subkey: e.Subkey, Value: e.Value, Expiration: e.Expiration})
			}
		}
		return out.Add("found", false), nil
	}
	out.Add("found", true)
	if v.raw {
		entries := []*cli.Object{}
		for _, e := range res.Dictionary {
			entry := (&cli.Object{}).Add("subkey_hex", hex.EncodeToString(e.Subkey))
			if _, err := v.addEntry(entry, dht.Record{Subkey: e.Subkey, Value: e.Value, Expiration: e.Expiration}); err != nil {
				return nil, err
			}
			entries = append(entries, entry)
		}
		return out.Add("dictionary", entries).Add("expiration_time", res.Expiration), nil
	}
	// The dictionary prints as a JSON object keyed by subkey when its subkeys are distinct strings,
	// and as {"$map": [[subkey, entry], ...]} otherwise.
	dict := &cli.Object{}
	seen := make(map[string]bool, len(res.Dictionary))
	plain := true
	var pairs [][]any
	for _, e := range res.Dictionary {
		sub, err := msgpack.Unmarshal(e.Subkey)
		if err != nil {
			return nil, fmt.Errorf("subkey is not valid msgpack (--raw prints its bytes): %w", err)
		}
		entry, err := v.addEntry(&cli.Object{}, dht.Record{Subkey: e.Subkey, Value: e.Value, Expiration: e.Expiration})
		if err != nil {
			return nil, err
		}
		name, ok := sub.(string)
		if !ok || seen[name] || isTag(name) {
			plain = false // a tag as a key would read back as the tagged value
		}
		seen[name] = true
		dict.Add(name, entry)
		pairs = append(pairs, []any{toJSON(sub), entry})
	}
	if !plain {
		// Subkeys that are not all distinct strings (an int 1 next to a string "1", two encodings
		// of one string, bytes such as an owner marker) or that are a tag ("$bytes") cannot key a
		// JSON object: the form of a map with such keys, as --value reads it.
		dict = (&cli.Object{}).Add(tagMap, pairs)
	}
	return out.Add("value", dict).Add("expiration_time", res.Expiration), nil
}

// addEntry adds one record's fields to out: "value" (decoded, without signatures) or, with --raw,
// "value_hex"; "expiration_time"; and for a signed record "signed" with, when invalid,
// "signature_error". r.Key is filled in from the view.
func (v getView) addEntry(out *cli.Object, r dht.Record) (*cli.Object, error) {
	r.Key = v.keyID
	checked := checkSigned(r)
	if v.raw {
		out.Add("value_hex", hex.EncodeToString(r.Value))
	} else {
		value, err := msgpack.Unmarshal(checked.Value)
		if err != nil {
			return nil, fmt.Errorf("value is not valid msgpack (--raw prints its bytes): %w", err)
		}
		out.Add("value", toJSON(value))
	}
	out.Add("expiration_time", r.Expiration)
	if checked.Verdict != "" {
		out.Add("signed", checked.Verdict)
	}
	if checked.Reason != "" {
		out.Add("signature_error", checked.Reason)
	}
	return out, nil
}
