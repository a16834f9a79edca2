package udp

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// lossy drops, duplicates and reorders (delays) outgoing datagrams.
type lossy struct {
	PacketConn
	mu                  sync.Mutex
	rng                 *rand.Rand
	drop, dup, reorder  float64
	sent, dropped, dups atomic.Int64
	pending             sync.WaitGroup
}

func (l *lossy) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	l.mu.Lock()
	drop := l.rng.Float64() < l.drop
	dup := l.rng.Float64() < l.dup
	delay := time.Duration(0)
	if l.rng.Float64() < l.reorder {
		delay = time.Duration(1+l.rng.IntN(20)) * time.Millisecond
	}
	l.mu.Unlock()
	l.sent.Add(1)
	if drop {
		l.dropped.Add(1)
		return len(b), nil
	}
	copies := 1
	if dup {
		copies = 2
		l.dups.Add(1)
	}
	for i := 0; i < copies; i++ {
		if delay == 0 || i > 0 {
			l.PacketConn.WriteToUDPAddrPort(b, addr)
			continue
		}
		c := append([]byte(nil), b...)
		l.pending.Add(1)
		time.AfterFunc(delay, func() {
			defer l.pending.Done()
			l.PacketConn.WriteToUDPAddrPort(c, addr)
		})
	}
	return len(b), nil
}

type side struct {
	srv                       *Server
	up, childUp, down, failed atomic.Int64
	mu                        sync.Mutex
	done                      map[uint64]chan struct{}
	early                     map[uint64]bool
	installs, deletes         atomic.Int64
}

func (s *side) output(ops []ike.ChildOp, evs []ike.Event) {
	for _, op := range ops {
		if op.Kind == ike.OpInstall {
			s.installs.Add(1)
		} else {
			s.deletes.Add(1)
		}
	}
	for _, e := range evs {
		var finished bool
		switch e.Kind {
		case ike.EventIKEUp:
			s.up.Add(1)
		case ike.EventChildUp:
			s.childUp.Add(1)
			finished = true
		case ike.EventIKEDown:
			s.down.Add(1)
			finished = true
		case ike.EventChildFailed:
			s.failed.Add(1)
			finished = true
		}
		if finished && e.Initiator {
			s.mu.Lock()
			if c := s.done[e.SPIi]; c != nil {
				close(c)
				delete(s.done, e.SPIi)
			} else {
				s.early[e.SPIi] = true // finished before Initiate returned
			}
			s.mu.Unlock()
		}
	}
}

// TestLoopbackLossy: two Servers on loopback UDP, every socket losing 20%
// of datagrams, duplicating 10% and delaying (reordering) 20%, establish n
// IKE SAs with a Child SA each (at most 64 in flight), then delete them
// all. Afterwards no SA, timer or goroutine is left.
func TestLoopbackLossy(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	baseline := runtime.NumGoroutine()
	lo := netip.MustParseAddr("127.0.0.1")
	var wraps []*lossy
	var wrapMu sync.Mutex
	seed := uint64(1)
	wrap := func(c PacketConn) PacketConn {
		wrapMu.Lock()
		defer wrapMu.Unlock()
		seed++
		l := &lossy{PacketConn: c, rng: rand.New(rand.NewPCG(seed, 7)), drop: 0.2, dup: 0.1, reorder: 0.2}
		wraps = append(wraps, l)
		return l
	}
	psk := &ike.PSK{Secret: []byte("loopback")}
	retr := ike.Retransmit{Timeout: 100 * time.Millisecond, Base: 1.5, Tries: 10}
	child := ike.ChildConfig{Name: "c", LocalTS: []ike.TrafficSelector{ike.TSHost(lo)}, RemoteTS: []ike.TrafficSelector{ike.TSHost(lo)}}

	b := &side{done: map[uint64]chan struct{}{}, early: map[uint64]bool{}}
	bcfg := ike.DefaultEndpointConfig()
	bcfg.InvalidSPIRate = 10000 // answers lost deletes quickly (RFC 7296 §2.21.4)
	bcfg.Connections = []*ike.Connection{{Name: "in", LocalAuth: psk, RemoteAuth: psk, Retransmit: retr,
		LocalID: ike.IDFQDN("b.test"), RemoteID: ike.IDFQDN("a.test"), Children: []ike.ChildConfig{child}}}
	var err error
	b.srv, err = New(Config{Endpoint: bcfg, IKE: []netip.AddrPort{netip.AddrPortFrom(lo, 0)},
		NATT: []netip.AddrPort{netip.AddrPortFrom(lo, 0)}, Shards: 2, Wrap: wrap, Output: b.output})
	if err != nil {
		t.Fatal(err)
	}
	bIKE, bNATT := b.srv.Addrs()

	a := &side{done: map[uint64]chan struct{}{}, early: map[uint64]bool{}}
	acfg := ike.DefaultEndpointConfig()
	aconn := &ike.Connection{Name: "out", Remote: bIKE[0], RemoteNATTPort: bNATT[0].Port(), LocalAuth: psk, RemoteAuth: psk,
		Retransmit: retr, LocalID: ike.IDFQDN("a.test"), RemoteID: ike.IDFQDN("b.test"), Children: []ike.ChildConfig{child},
		Proposals: [][]wire.Transform{{{Type: wire.TransformENCR, ID: uint16(wire.EncrAES_GCM_16), KeyLength: 256},
			{Type: wire.TransformPRF, ID: uint16(wire.PRF_HMAC_SHA2_256)}, {Type: wire.TransformKE, ID: uint16(wire.KECurve25519)}}}}
	acfg.Connections = []*ike.Connection{aconn}
	// Local is filled in once A's port is known; Connection is read only
	// by Initiate, after New.
	a.srv, err = New(Config{Endpoint: acfg, IKE: []netip.AddrPort{netip.AddrPortFrom(lo, 0)},
		NATT: []netip.AddrPort{netip.AddrPortFrom(lo, 0)}, Shards: 2, Wrap: wrap, Output: a.output})
	if err != nil {
		t.Fatal(err)
	}
	aIKE, _ := a.srv.Addrs()
	aconn.Local = aIKE[0]

	start := time.Now()
	sem := make(chan struct{}, 64)
	var spis []uint64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		done := make(chan struct{})
		spi, err := a.srv.Initiate("out")
		if err != nil {
			t.Fatal(err)
		}
		a.mu.Lock()
		if a.early[spi] {
			close(done)
		} else {
			a.done[spi] = done
		}
		a.mu.Unlock()
		spis = append(spis, spi)
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Errorf("SA %x did not finish", spi)
			}
			<-sem
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var sent, dropped, dups int64
	for _, l := range wraps {
		sent, dropped, dups = sent+l.sent.Load(), dropped+l.dropped.Load(), dups+l.dups.Load()
	}
	ast, asas, _ := a.srv.Stats()
	bst, bsas, _ := b.srv.Stats()
	t.Logf("%d SAs in %v (%.0f/s); datagrams sent %d, dropped %d, duplicated %d; A retransmitted %d, B answered %d from cache, cookies %d",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), sent, dropped, dups, ast.Retransmitted, bst.Retransmits, bst.CookiesSent)
	if got := a.childUp.Load(); got != int64(n) || a.up.Load() != int64(n) || a.down.Load() != 0 {
		t.Fatalf("A: %d IKE up, %d Child up, %d down, %d child failures", a.up.Load(), got, a.down.Load(), a.failed.Load())
	}
	if b.childUp.Load() != int64(n) || asas != n || bsas != n {
		t.Fatalf("B: %d Child up; SAs A %d B %d", b.childUp.Load(), asas, bsas)
	}

	// Teardown through the same lossy transport.
	for _, spi := range spis {
		if err := a.srv.Terminate(spi); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, asas, atimers := a.srv.Stats()
		_, bsas, btimers := b.srv.Stats()
		if asas+bsas+atimers+btimers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after teardown: SAs A %d B %d, timers A %d B %d", asas, bsas, atimers, btimers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.deletes.Load() != int64(n) || b.deletes.Load() != int64(n) {
		t.Errorf("Child SA deletes: A %d B %d", a.deletes.Load(), b.deletes.Load())
	}
	a.srv.Close()
	b.srv.Close()
	for _, l := range wraps {
		l.pending.Wait()
	}
	for i := 0; runtime.NumGoroutine() > baseline; i++ {
		if i > 100 {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d > baseline %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
