package dhtrpc

import "errors"

// ErrInvalidPeerID: a dht.PeerID is not the binary form of a libp2p peer ID (a multihash).
var ErrInvalidPeerID = errors.New("dhtrpc: invalid peer id")
