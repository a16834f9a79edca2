package ike

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

// A deterministic simulation of two endpoints over a lossy network with a
// fake clock: the core's lifetimes drive rekeys from both ends; datagrams
// are dropped, duplicated and delayed (reordered) at random. It checks the
// end state the lossy loopback test in ike/udp checks, in simulated time.

type simPacket struct {
	at  time.Time
	seq int
	to  int
	d   Datagram
}

type sim struct {
	t         *testing.T
	rng       *rand.Rand
	now       time.Time
	eps       [2]*Endpoint
	in        [2]map[uint32]ChildOp
	ikeSAs    [2]map[uint64]bool
	queue     []simPacket
	seq       int
	counts    map[EventKind][2]int
	reasons   map[string]int
	loss      float64
	log       []string
	installed map[uint32]time.Time
}

func (s *sim) apply(side int, o *Output) {
	for _, op := range o.Ops {
		switch op.Kind {
		case OpInstall:
			if _, dup := s.in[side][op.InSPI]; dup {
				s.t.Fatalf("side %d installs %08x twice", side, op.InSPI)
			}
			s.in[side][op.InSPI] = op
			s.installed[op.InSPI] = s.now
		case OpActivate, OpDeactivate, OpUpdate:
			if _, ok := s.in[side][op.InSPI]; !ok {
				s.t.Fatalf("side %d %v %08x, which it does not have", side, op.Kind, op.InSPI)
			}
		case OpDelete:
			delete(s.in[side], op.InSPI)
		}
	}
	for _, e := range o.Events {
		c := s.counts[e.Kind]
		c[side]++
		s.counts[e.Kind] = c
		s.reasons[e.Kind.String()+":"+e.Reason]++
		if testing.Verbose() {
			s.log = append(s.log, fmt.Sprintf("%v side %d %v %q ike %x/%x in %08x out %08x old %08x", s.now.Sub(t0), side, e.Kind, e.Reason, e.SPIi&0xffff, e.SPIr&0xffff, e.InSPI, e.OutSPI, e.OldInSPI))
		}
		switch e.Kind {
		case EventIKEUp, EventIKERekeyed:
			s.ikeSAs[side][ourSPIOf(e)] = true
		case EventIKEDown:
			delete(s.ikeSAs[side], ourSPIOf(e))
		}
	}
	for _, d := range o.Datagrams {
		if s.rng.Float64() < s.loss {
			continue
		}
		copies := 1
		if s.rng.Float64() < 0.1 {
			copies = 2
		}
		for range copies {
			delay := time.Millisecond
			if s.rng.Float64() < 0.2 {
				delay += time.Duration(s.rng.IntN(20)) * time.Millisecond
			}
			s.seq++
			s.queue = append(s.queue, simPacket{at: s.now.Add(delay), seq: s.seq, to: 1 - side, d: Datagram{Src: d.Src, Dst: d.Dst, Data: append([]byte(nil), d.Data...)}})
		}
	}
	o.Reset()
}

func ourSPIOf(e Event) uint64 {
	if e.Initiator {
		return e.SPIi
	}
	return e.SPIr
}

// step runs the next event (packet or timer); false when nothing is left
// before until.
func (s *sim) step(until time.Time) bool {
	next, kind := until, -1
	sort.Slice(s.queue, func(i, j int) bool {
		if s.queue[i].at.Equal(s.queue[j].at) {
			return s.queue[i].seq < s.queue[j].seq
		}
		return s.queue[i].at.Before(s.queue[j].at)
	})
	if len(s.queue) > 0 && s.queue[0].at.Before(next) {
		next, kind = s.queue[0].at, 2
	}
	for i, ep := range s.eps {
		if d, ok := ep.NextDeadline(); ok && d.Before(next) {
			next, kind = d, i
		}
	}
	if kind < 0 {
		s.now = until
		return false
	}
	if next.After(s.now) {
		s.now = next
	}
	var o Output
	if kind == 2 {
		p := s.queue[0]
		s.queue = s.queue[1:]
		s.eps[p.to].HandleDatagram(s.now, p.d.Src, p.d.Dst, p.d.Data, &o)
		s.apply(p.to, &o)
		return true
	}
	s.eps[kind].Tick(s.now, &o)
	s.apply(kind, &o)
	return true
}

func (s *sim) settled(children int) bool {
	if len(s.ikeSAs[0]) != 1 || len(s.ikeSAs[1]) != 1 || len(s.in[0]) != children || len(s.in[1]) != children ||
		s.eps[0].Len() != 1 || s.eps[1].Len() != 1 {
		return false
	}
	for spi, op := range s.in[0] {
		b, ok := s.in[1][op.OutSPI]
		if !ok || b.OutSPI != spi || b.Name != op.Name {
			return false
		}
	}
	return true
}

func runSim(t *testing.T, seed uint64, want int) *sim {
	ca := twoChildConn(nil)
	ca.Retransmit = Retransmit{Timeout: 50 * time.Millisecond, Base: 1.5, Tries: 12}
	ca.RekeyTime = 300 * time.Millisecond
	ca.Children[0].RekeyTime, ca.Children[0].LifeTime = 150*time.Millisecond, time.Hour
	ca.Children[1].RekeyTime, ca.Children[1].LifeTime = 200*time.Millisecond, time.Hour
	cb := mirror(ca)
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	p.a.ep.rand, p.b.ep.rand = seeded(seed), seeded(seed+1000)
	s := &sim{t: t, rng: rand.New(rand.NewPCG(seed, 3)), now: t0, eps: [2]*Endpoint{p.a.ep, p.b.ep},
		counts: map[EventKind][2]int{}, reasons: map[string]int{}, loss: 0.2, installed: map[uint32]time.Time{}}
	for i := range 2 {
		s.in[i], s.ikeSAs[i] = map[uint32]ChildOp{}, map[uint64]bool{}
	}
	var o Output
	if _, err := p.a.ep.Initiate(s.now, "gw", &o); err != nil {
		t.Fatal(err)
	}
	s.apply(0, &o)
	enough := func() bool {
		c, i := s.counts[EventChildRekeyed], s.counts[EventIKERekeyed]
		return min(c[0], c[1]) >= want && min(i[0], i[1]) >= want
	}
	for end := t0.Add(time.Hour); !enough() && s.now.Before(end); {
		s.step(end)
	}
	if !enough() {
		t.Fatalf("seed %d: rekeys child %v IKE %v by %v; %v", seed, s.counts[EventChildRekeyed], s.counts[EventIKERekeyed], s.now.Sub(t0), s.reasons)
	}
	// Stop rekeying, let everything finish.
	for _, c := range []*Connection{ca, cb} {
		c.RekeyTime = 0
		for i := range c.Children {
			c.Children[i].RekeyTime = 0
		}
	}
	for end := s.now.Add(2 * time.Minute); s.step(end); {
	}
	return s
}

// TestSimRekeyLossy: 100 Child SA and 100 IKE SA rekeys seen by each side,
// started from both ends, 20% loss, 10% duplication, 20% reordering, in
// simulated time; then exactly one IKE SA and one pair per child remain,
// matching on both sides.
func TestSimRekeyLossy(t *testing.T) {
	seeds := 5
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		s := runSim(t, seed, 100)
		if !s.settled(2) && testing.Verbose() {
			var ages []string
			for spi, op := range s.in[0] {
				_, paired := s.in[1][op.OutSPI]
				ages = append(ages, fmt.Sprintf("%s %08x paired=%v at %v", op.Name, spi, paired, s.installed[spi].Sub(t0)))
			}
			sort.Strings(ages)
			t.Log(strings.Join(ages, "\n"))
			n := 0
			for spi := range s.in[0] {
				if n++; n > 3 {
					break
				}
				for _, l := range s.log {
					if strings.Contains(l, fmt.Sprintf("%08x", spi)) || strings.Contains(l, fmt.Sprintf("%08x", s.in[0][spi].OutSPI)) {
						t.Log(l)
					}
				}
				t.Log("--")
			}
		}
		if !s.settled(2) {
			t.Fatalf("seed %d: IKE SAs A %d B %d (endpoint %d/%d), pairs A %d B %d; events %v",
				seed, len(s.ikeSAs[0]), len(s.ikeSAs[1]), s.eps[0].Len(), s.eps[1].Len(), len(s.in[0]), len(s.in[1]), s.reasons)
		}
		if d := s.counts[EventPeerDead]; d != [2]int{} {
			t.Errorf("seed %d: peer dead %v", seed, d)
		}
		t.Logf("seed %d: %v simulated; child rekeys %v, IKE rekeys %v", seed, s.now.Sub(t0).Round(time.Second),
			s.counts[EventChildRekeyed], s.counts[EventIKERekeyed])
	}
}
