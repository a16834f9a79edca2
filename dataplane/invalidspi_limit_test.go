package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// unknownRig is a userspace data plane on a MemBind whose peer sends it
// bare ESP packets, recording the events it raises.
type unknownRig struct {
	u      *Userspace
	peer   *MemBind
	self   netip.AddrPort
	mu     sync.Mutex
	events []Event
}

func newUnknownRig(t *testing.T) *unknownRig {
	t.Helper()
	r := &unknownRig{self: netip.MustParseAddrPort("192.0.2.1:4500")}
	ours, peer := NewMemBindPair(r.self, netip.MustParseAddrPort("192.0.2.2:4500"))
	r.peer = peer
	r.u = NewUserspace(ours, Options{Workers: 1, OnEvent: func(e Event) {
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
	}})
	t.Cleanup(func() { r.u.Close(); peer.Close() })
	return r
}

// send sends one ESP-looking packet (SPI, sequence number, junk) per SPI.
func (r *unknownRig) send(t *testing.T, spis ...uint32) {
	t.Helper()
	bufs := make([][]byte, 0, len(spis))
	for i, spi := range spis {
		b := make([]byte, 40)
		binary.BigEndian.PutUint32(b, spi)
		binary.BigEndian.PutUint32(b[4:], uint32(i+1))
		bufs = append(bufs, b)
	}
	for len(bufs) > 0 { // in chunks the MemBind queue (1024) holds
		k := min(len(bufs), 256)
		must(t, r.peer.Send(bufs[:k], r.self))
		bufs = bufs[k:]
		r.waitDrops(t, 0) // let the receive loop drain
	}
}

// waitDrops waits until the drop counter reaches want (0: until it stops
// moving for a moment); bounded.
func (r *unknownRig) waitDrops(t *testing.T, want uint64) uint64 {
	t.Helper()
	last, still := r.u.UnknownSPIDrops(), 0
	for range 400 {
		time.Sleep(5 * time.Millisecond)
		n := r.u.UnknownSPIDrops()
		if want != 0 && n >= want {
			return n
		}
		if n == last {
			if still++; want == 0 && still >= 4 {
				return n
			}
		} else {
			last, still = n, 0
		}
	}
	if want != 0 {
		t.Fatalf("drops %d, want %d", r.u.UnknownSPIDrops(), want)
	}
	return last
}

func (r *unknownRig) unknownEvents() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.events {
		if e.Kind == UnknownSPI {
			out = append(out, e)
		}
	}
	return out
}

// One SPI sent many times within a second is reported once, with the
// outer source address; a second later it is reported again. Every packet
// is counted as a drop.
func TestUnknownSPIOncePerSecond(t *testing.T) {
	r := newUnknownRig(t)
	const spi = 0xdead0001
	burst := make([]uint32, 50)
	for i := range burst {
		burst[i] = spi
	}
	start := time.Now()
	r.send(t, burst...)
	r.waitDrops(t, 50)
	ev := r.unknownEvents()
	if len(ev) != 1 || ev[0].SPI != spi || ev[0].Dir != In || ev[0].Peer != netip.MustParseAddr("192.0.2.2") {
		t.Fatalf("after a burst of 50: events %+v", ev)
	}
	if ev[0].Kind.String() != "unknown-spi" {
		t.Errorf("String() = %q", ev[0].Kind.String())
	}
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))
	r.send(t, burst[:5]...)
	r.waitDrops(t, 55)
	if ev := r.unknownEvents(); len(ev) != 2 || ev[1].SPI != spi {
		t.Fatalf("a second later: events %+v", ev)
	}
}

// A flood of distinct SPIs is capped at unknownSPIPerSec reports, with no
// state beyond the fixed table; reserved SPIs (< 256) and SPIs allocated
// for a negotiation are never reported, and all of them count as drops.
func TestUnknownSPIFloodCapped(t *testing.T) {
	r := newUnknownRig(t)
	pending, err := r.u.AllocateSPI()
	must(t, err)
	r.send(t, 0, 1, 255, pending) // first in the second: the cap is not what stops them
	flood := make([]uint32, 2000)
	for i := range flood {
		flood[i] = 0x10000000 + uint32(i)*7919
	}
	start := time.Now()
	r.send(t, flood...)
	r.waitDrops(t, 2004)
	ev := r.unknownEvents()
	if time.Since(start) < 900*time.Millisecond && len(ev) != unknownSPIPerSec {
		t.Fatalf("flood of %d SPIs within a second: %d reports, want %d", len(flood), len(ev), unknownSPIPerSec)
	}
	if len(ev) > 2*unknownSPIPerSec {
		t.Fatalf("flood of %d SPIs: %d reports", len(flood), len(ev))
	}
	seen := map[uint32]bool{}
	for _, e := range ev {
		if e.SPI < 256 || e.SPI == pending || seen[e.SPI] {
			t.Fatalf("reported SPI %#x (pending %#x), events %+v", e.SPI, pending, ev)
		}
		seen[e.SPI] = true
	}
}

// The limiter with a fake clock: per-SPI second, slots not evicted while
// young, the global cap per one-second window.
func TestUnknownSPILimiter(t *testing.T) {
	var l unknownSPIs
	t0 := time.Unix(1000, 0)
	if !l.allow(0xabc, t0) || l.allow(0xabc, t0.Add(999*time.Millisecond)) || !l.allow(0xabc, t0.Add(time.Second)) {
		t.Fatal("per-SPI second")
	}
	// Another SPI in the same slot waits for the slot's second too.
	other := uint32(0xabc)
	for s := uint32(1); ; s++ {
		if spiSlot(s) == spiSlot(0xabc) && s != 0xabc {
			other = s
			break
		}
	}
	if l.allow(other, t0.Add(1500*time.Millisecond)) || !l.allow(other, t0.Add(2*time.Second)) {
		t.Fatal("slot collision")
	}
	if l.allow(0xabc, t0.Add(2500*time.Millisecond)) {
		t.Fatal("an SPI evicted by a collision was reported again within its second")
	}
	// The global cap: distinct slots, one window.
	t1 := t0.Add(10 * time.Second)
	got := 0
	for s := uint32(0); s < unknownSPISlots*4 && got <= unknownSPIPerSec; s++ {
		if l.allow(0x1000+s, t1.Add(time.Duration(s)*time.Microsecond)) {
			got++
		}
	}
	if got != unknownSPIPerSec {
		t.Fatalf("%d reports in one second, want %d", got, unknownSPIPerSec)
	}
	if !l.allow(0x7777777, t1.Add(1100*time.Millisecond)) {
		t.Fatal("next window refused")
	}
}

// Counting and limiting an unknown SPI allocates nothing.
func TestUnknownSPINoAlloc(t *testing.T) {
	a, _ := NewMemBindPair(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	u := NewUserspace(a, Options{Workers: 1})
	defer u.Close()
	from := netip.MustParseAddrPort("[2001:db8::2]:4500")
	var reps [4]unknownReport
	spi := uint32(0x20000000)
	allocs := testing.AllocsPerRun(1000, func() {
		var now time.Time
		u.mu.RLock()
		u.noteUnknownSPI(spi, from, &now, reps[:], 0)
		u.mu.RUnlock()
		spi += 12345
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per unknown SPI", allocs)
	}
	if u.UnknownSPIDrops() < 1000 {
		t.Fatalf("drops %d", u.UnknownSPIDrops())
	}
}

// BenchmarkUnknownSPIFlood is the receive loop's cost per packet of a
// flood of distinct unknown SPIs (count, limiter, no report most times).
func BenchmarkUnknownSPIFlood(b *testing.B) {
	a, _ := NewMemBindPair(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	u := NewUserspace(a, Options{Workers: 1})
	defer u.Close()
	from := netip.MustParseAddrPort("192.0.2.2:4500")
	var reps [4]unknownReport
	spi := uint32(0x20000000)
	b.ReportAllocs()
	for b.Loop() {
		now := time.Time{}
		u.mu.RLock()
		u.noteUnknownSPI(spi, from, &now, reps[:], 0)
		u.mu.RUnlock()
		spi += 7919
	}
}
