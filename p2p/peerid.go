package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// PeerID is a libp2p peer ID (a multihash of the peer's public key). Its raw bytes are what hivemind puts
// in nearest_peer_ids and CallUnaryRequest.peer; its String form is base58 ("Qm…" for RSA keys,
// "12D3KooW…" for Ed25519). The alias lets packages that must not import libp2p name it.
type PeerID = peer.ID

// PeerIDFromBytes parses a binary peer ID (a multihash), as found in hivemind messages.
func PeerIDFromBytes(b []byte) (PeerID, error) {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("p2p: peer id from %d bytes: %w", len(b), err)
	}
	return id, nil
}

// PeerIDBytes returns the binary form of id (a copy): the bytes hivemind exchanges.
func PeerIDBytes(id PeerID) []byte { return []byte(id) }

// ParsePeerID parses a base58 peer ID ("Qm…", "12D3KooW…").
func ParsePeerID(s string) (PeerID, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("p2p: parse peer id %q: %w", s, err)
	}
	return id, nil
}
