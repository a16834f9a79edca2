package dataplane

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

// memTUN is an in-memory tun.Device: Read hands out copies of one IPv4/UDP
// packet (up to a budget), Write counts what arrives. It stands in for the
// kernel, not for a peer: both data planes and their ESP are real.
type memTUN struct {
	pkt    []byte
	budget atomic.Int64
	got    atomic.Int64
	closed chan struct{}
	events chan tun.Event
	batch  int
}

func newMemTUN(pkt []byte, batch int) *memTUN {
	return &memTUN{pkt: pkt, closed: make(chan struct{}), events: make(chan tun.Event), batch: batch}
}

func (m *memTUN) File() *os.File { return nil }
func (m *memTUN) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	for {
		select {
		case <-m.closed:
			return 0, os.ErrClosed
		default:
		}
		n := 0
		for n < len(bufs) && m.budget.Add(-1) >= 0 {
			sizes[n] = copy(bufs[n][off:], m.pkt)
			n++
		}
		if n > 0 {
			return n, nil
		}
		m.budget.Store(0)
		time.Sleep(time.Millisecond)
	}
}
func (m *memTUN) Write(bufs [][]byte, off int) (int, error) {
	m.got.Add(int64(len(bufs)))
	return len(bufs), nil
}
func (m *memTUN) MTU() (int, error)        { return 1500, nil }
func (m *memTUN) Name() (string, error)    { return "mem", nil }
func (m *memTUN) Events() <-chan tun.Event { return m.events }
func (m *memTUN) BatchSize() int           { return m.batch }
func (m *memTUN) Close() error {
	select {
	case <-m.closed:
	default:
		close(m.closed)
	}
	return nil
}

func udpPacket(src, dst netip.Addr, size int) []byte {
	p := make([]byte, size)
	p[0], p[9] = 0x45, protoUDP
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[8] = 64
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[10:], ipChecksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:], 5000)
	binary.BigEndian.PutUint16(p[22:], 5001)
	binary.BigEndian.PutUint16(p[24:], uint16(size-20))
	return p
}

// BenchmarkDataPath pushes 1400-octet packets from A's device through
// A's outbound pipeline (policy lookup, seal on the workers, ordered
// send), an in-memory link, and B's inbound pipeline (open, selector
// check, ordered write). One op is one packet end to end; allocs/op is per
// packet and includes MemBind's copy.
func BenchmarkDataPath(b *testing.B) {
	for _, w := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) { benchDataPath(b, w) })
	}
}

func benchDataPath(b *testing.B, workers int) {
	c := defaultPair()
	a := &node{inner: netip.MustParseAddr(c.aInner), outer: netip.MustParseAddrPort(c.aOuter)}
	n := &node{inner: netip.MustParseAddr(c.bInner), outer: netip.MustParseAddrPort(c.bOuter)}
	ba, bb := NewMemBindPair(a.outer, n.outer)
	a.dp, n.dp = NewUserspace(ba, Options{Workers: workers}), NewUserspace(bb, Options{Workers: workers})
	defer a.dp.Close()
	defer n.dp.Close()
	t := &testing.T{}
	installSA(t, c, a, n, 0xa0000001, 1, c.aTS, c.bTS)
	must(t, a.dp.AddPolicy(Policy{Local: MustSelector(c.aTS), Remote: MustSelector(c.bTS), ReqID: 1}))
	src := newMemTUN(udpPacket(a.inner, n.inner, 1400), 64)
	dst := newMemTUN(nil, 64)
	must(t, a.dp.AttachDevice(src, 0))
	must(t, n.dp.AttachDevice(dst, 0))

	// Warm the pools, then measure.
	src.budget.Store(5000)
	for deadline := time.Now().Add(5 * time.Second); dst.got.Load() < 4000 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	b.SetBytes(1400)
	b.ReportAllocs()
	b.ResetTimer()
	start := dst.got.Load()
	sent := int64(0)
	for sent < int64(b.N) {
		// Keep a bounded number in flight so the 1024-packet MemBind
		// queue is not overrun.
		if sent-(dst.got.Load()-start) < 512 {
			src.budget.Add(64)
			sent += 64
			continue
		}
		time.Sleep(20 * time.Microsecond)
	}
	for deadline := time.Now().Add(5 * time.Second); dst.got.Load()-start < int64(b.N)*9/10 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(dst.got.Load()-start)/float64(sent), "delivered/sent")
}
