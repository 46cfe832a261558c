package dht

import "math"

// blacklist is hivemind's Blacklist (spec §2.8): temporary bans of peers that did not answer a
// FIND, with exponential backoff over consecutive failures. It is a pure structure (DHT time is
// passed in); the Node guards it with its mutex.
type blacklist struct {
	baseTime float64 // seconds; <= 0 disables bans
	rate     float64
	banned   map[PeerID]float64 // peer → ban end (DHT time)
	failures map[PeerID]int     // consecutive failures
}

func newBlacklist(baseTime, rate float64) *blacklist {
	return &blacklist{
		baseTime: baseTime,
		rate:     rate,
		banned:   make(map[PeerID]float64),
		failures: make(map[PeerID]int),
	}
}

// isBanned reports whether peer is banned at now; an expired ban is forgotten (its failure count
// stays until a success).
func (b *blacklist) isBanned(peer PeerID, now float64) bool {
	until, ok := b.banned[peer]
	if !ok {
		return false
	}
	if until < now {
		delete(b.banned, peer)
		return false
	}
	return true
}

// registerFailure bans a peer that is not banned already for baseTime·rate^failures seconds.
func (b *blacklist) registerFailure(peer PeerID, now float64) {
	if b.baseTime <= 0 || b.isBanned(peer, now) {
		return
	}
	ban := b.baseTime * math.Pow(b.rate, float64(b.failures[peer]))
	if math.IsInf(ban, 0) || math.IsNaN(ban) {
		ban = math.MaxFloat64 / 4
	}
	b.banned[peer] = now + ban
	b.failures[peer]++
}

// registerSuccess lifts the ban and resets the backoff.
func (b *blacklist) registerSuccess(peer PeerID) {
	delete(b.banned, peer)
	delete(b.failures, peer)
}

// bannedPeers returns the peers banned at now.
func (b *blacklist) bannedPeers(now float64) []PeerID {
	var out []PeerID
	for p := range b.banned {
		if b.isBanned(p, now) {
			out = append(out, p)
		}
	}
	return out
}

// clear forgets every ban and failure.
func (b *blacklist) clear() {
	clear(b.banned)
	clear(b.failures)
}
