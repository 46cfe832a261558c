package main

import (
	"fmt"
	"io"

	"github.com/hivemind-go/hivemind/internal/cli"
	"github.com/hivemind-go/hivemind/p2p"
)

const keygenAbout = `Writes a new libp2p identity key file (mode 0400; never overwrites) and prints its peer ID.
  --type rsa      RSA-2048, the format hivemind's P2P.generate_identity writes: hivemind, p2pd and
                  Go workers load it (default).
  --type ed25519  what p2p-keygen -t ed25519 writes: p2pd and Go workers load it, but hivemind's
                  identity check (PeerID.from_identity) cannot read Ed25519 keys.
Give the file to a worker with --identity-path (dht) or put it in a worker's state directory as
identity.key.`

func runKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keygen", "keygen [--type rsa|ed25519] FILE", keygenAbout, stderr)
	kind := fs.String("type", "rsa", "key type: rsa or ed25519")
	pos, err := cli.ParseArgs(fs, args, nil)
	if err != nil {
		return err
	}
	file := pos.All()
	if len(file) != 1 {
		return cli.Usagef("keygen wants exactly one FILE argument")
	}
	var kt p2p.KeyType
	switch *kind {
	case "rsa":
		kt = p2p.KeyTypeRSA
	case "ed25519":
		kt = p2p.KeyTypeEd25519
	default:
		return cli.Usagef("--type must be rsa or ed25519, got %q", *kind)
	}
	id, err := p2p.GenerateIdentity(file[0], kt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", id)
	return nil
}
