package dataplane

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Unknown SPIs.
//
// An inbound ESP packet whose SPI has no SA is dropped and counted. The
// engine hears of it (UnknownSPI) so that it can tell a peer still sending
// on a pair this side lost, after a restart for instance, with
// N(INVALID_SPI) (RFC 7296 §2.4, §3.10.1). Anyone can send such packets,
// so the reports are rate-limited with fixed state and no allocation: a
// direct-mapped table of report times (an SPI is reported at most once a
// second; while a slot is less than a second old, every SPI mapped to it
// waits, so no SPI can evict another to be reported twice) and a global
// cap of unknownSPIPerSec reports a second. SPIs below 256 (reserved, RFC
// 4303 §2.1) and SPIs allocated for a Child SA still being negotiated (the
// peer may send on it a moment before we install it) are never reported.

const (
	unknownSPISlots  = 256 // a power of two
	unknownSPIPerSec = 10
)

// unknownSPIs is the counter and the limiter of one data plane. The zero
// value is ready.
type unknownSPIs struct {
	drops atomic.Uint64

	mu    sync.Mutex
	base  time.Time                      // the clock's origin (monotonic)
	slots [unknownSPISlots]time.Duration // since base, of the last report; 0 = never
	win   time.Duration                  // start of the current one-second window
	n     int                            // reports in it
}

func spiSlot(spi uint32) uint32 {
	return (spi * 0x9e3779b1) >> 24 // Fibonacci hashing onto 256 slots
}

// allow says whether an unknown SPI seen at now may be reported, and
// records the report if so.
func (t *unknownSPIs) allow(spi uint32, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.base.IsZero() {
		t.base = now.Add(-time.Second) // every slot starts older than a second
	}
	rel := now.Sub(t.base)
	s := &t.slots[spiSlot(spi)]
	if *s != 0 && rel-*s < time.Second {
		return false
	}
	if rel-t.win >= time.Second {
		t.win, t.n = rel, 0
	}
	if t.n >= unknownSPIPerSec {
		return false
	}
	t.n++
	*s = rel
	return true
}

// unknownReport is an UnknownSPI event waiting for the receive loop to
// release the lock.
type unknownReport struct {
	spi  uint32
	peer netip.Addr
}

// noteUnknownSPI counts a packet for an SPI without an inbound SA and,
// rate permitting, queues a report in reps. Called with u.mu read-locked;
// now is set on first use (one clock read per batch).
func (u *Userspace) noteUnknownSPI(spi uint32, from netip.AddrPort, now *time.Time, reps []unknownReport, n int) int {
	u.unknown.drops.Add(1)
	if spi < 256 || u.spis[spi] || n >= len(reps) {
		return n
	}
	if now.IsZero() {
		*now = time.Now()
	}
	if !u.unknown.allow(spi, *now) {
		return n
	}
	reps[n] = unknownReport{spi: spi, peer: from.Addr().Unmap()}
	return n + 1
}

// UnknownSPIDrops is how many inbound ESP packets were dropped because no
// inbound SA had their SPI.
func (u *Userspace) UnknownSPIDrops() uint64 { return u.unknown.drops.Load() }
