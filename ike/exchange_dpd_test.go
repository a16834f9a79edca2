package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// Exchange tests for liveness checks and dead peers (RFC 7296 §2.4).

func dpdPair(t *testing.T, action DPDAction) (*pair, *SA, *SA) {
	t.Helper()
	ca := pskConn("gw", addrA, addrB, "k")
	ca.DPDDelay = 30 * time.Second
	ca.Children[0].DPDAction = action
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	p.b.ep.cfg.Connections[0].DPDDelay = 0
	spi, _, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	return p, asa, p.b.ep.SA(asa.spiR)
}

func (p *pair) tick(n *node) *Output {
	p.t.Helper()
	n.out.Reset()
	n.ep.Tick(p.now, &n.out)
	return &n.out
}

// TestDPDQuiet: after 30 s with nothing from B, A sends an empty
// INFORMATIONAL; B answers; the next check is 30 s after that answer. A
// message from B in between pushes the check back.
//
//	(30 s quiet)  A: HDR(mid 2), SK{}  -->
//	                                   <--  HDR(mid 2, response), SK{}
func TestDPDQuiet(t *testing.T) {
	p, asa, bsa := dpdPair(t, DPDClear)
	d, ok := p.a.ep.NextDeadline()
	if !ok || d != t0.Add(30*time.Second) {
		t.Fatalf("first check at %v", d)
	}
	p.now = d
	req := p.one(p.tick(p.a))
	if m, _ := outerPayloads(t, req); m.Header.Exchange != wire.INFORMATIONAL || len(innerOf(t, bsa, req)) != 0 {
		t.Fatal("want an empty INFORMATIONAL")
	}
	p.now = p.now.Add(time.Second)
	if o := p.deliver(p.a, p.exchange(p.b, req)); len(o.Datagrams)+len(o.Events) != 0 {
		t.Fatalf("A: %+v", o)
	}
	if d, _ := p.a.ep.NextDeadline(); d != p.now.Add(30*time.Second) {
		t.Fatalf("next check at %v", d.Sub(p.now))
	}
	// B talks (a Child SA delete) 10 s later: no check for 30 s from then.
	p.now = p.now.Add(10 * time.Second)
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{bsa.children[0].InSPI}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	p.deliver(p.b, p.exchange(p.a, p.one(&p.b.out)))
	if d, _ := p.a.ep.NextDeadline(); d != p.now.Add(30*time.Second) {
		t.Fatalf("check not pushed back: in %v", d.Sub(p.now))
	}
	_ = asa
}

// silence runs A's timers with B gone until A gives up, and returns all of
// A's events.
func silence(t *testing.T, p *pair) []Event {
	t.Helper()
	var evs []Event
	for i := 0; i < 20; i++ {
		d, ok := p.a.ep.NextDeadline()
		if !ok {
			break
		}
		p.now = d
		o := p.tick(p.a)
		evs = append(evs, o.Events...)
		if len(events(o, EventPeerDead)) > 0 {
			return evs
		}
	}
	t.Fatal("A never declared B dead")
	return nil
}

// TestDPDDead: B stops answering; A's check is retransmitted on its
// schedule and, when it runs out, B is dead: peer-dead ("clear"), the
// Child SA and the IKE SA go with reason dead-peer.
//
//	A: SK{}  -->  (lost) ×6, then give up
func TestDPDDead(t *testing.T) {
	p, _, _ := dpdPair(t, DPDClear)
	evs := silence(t, p)
	o := &Output{Events: evs}
	if e := events(o, EventPeerDead); len(e) != 1 || e[0].Reason != "clear" {
		t.Fatalf("events %+v", evs)
	}
	if e := events(o, EventIKEDown); len(e) != 1 || e[0].Reason != "dead-peer" || len(events(o, EventChildDown)) != 1 {
		t.Fatalf("events %+v", evs)
	}
	if p.a.ep.Len() != 0 {
		t.Fatal("SA left behind")
	}
}

// TestDPDRestart: with dpd action restart the connection is initiated
// again at once: a new IKE_SA_INIT goes out.
func TestDPDRestart(t *testing.T) {
	p, asa, _ := dpdPair(t, DPDRestart)
	silence(t, p)
	if e := events(&p.a.out, EventPeerDead); len(e) != 1 || e[0].Reason != "restart" {
		t.Fatalf("events %+v", p.a.out.Events)
	}
	last := p.a.out.Datagrams[len(p.a.out.Datagrams)-1]
	if m, _ := outerPayloads(t, last); m.Header.Exchange != wire.IKE_SA_INIT || p.a.ep.Len() != 1 || p.a.ep.SA(asa.spiI) != nil {
		t.Fatal("no new IKE_SA_INIT after restart")
	}
}
