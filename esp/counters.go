package esp

import (
	"sync/atomic"
	"time"
)

// Counters are one SA's statistics, read by the IKE engine for lifetimes
// (RFC 7296 §2.8) and liveness, and shown by session listings. Bytes count
// ESP payload octets (the protected IP packets in tunnel mode).
type Counters struct {
	Packets, Bytes uint64
	// Inbound only: packets dropped as replayed or too old, failing the
	// ICV, malformed (length, padding, next header), or outside the SA's
	// traffic selectors (counted by the data plane via CountPolicyDrop).
	ReplayDrops, AuthFailures, InvalidDrops, PolicyDrops uint64
	// LastUsed is when a packet last passed (zero if never).
	LastUsed time.Time
}

type counters struct {
	packets, bytes                atomic.Uint64
	replay, auth, invalid, policy atomic.Uint64
	lastUsed                      atomic.Int64 // unix nanoseconds
}

func (c *counters) add(n uint64) {
	c.packets.Add(1)
	c.bytes.Add(n)
	c.lastUsed.Store(time.Now().UnixNano())
}

func (c *counters) snapshot() Counters {
	s := Counters{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		ReplayDrops: c.replay.Load(), AuthFailures: c.auth.Load(),
		InvalidDrops: c.invalid.Load(), PolicyDrops: c.policy.Load(),
	}
	if t := c.lastUsed.Load(); t != 0 {
		s.LastUsed = time.Unix(0, t)
	}
	return s
}
