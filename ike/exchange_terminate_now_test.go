package ike

import (
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestTerminateNow: the operator's forced delete. A sends its Delete once
// and forgets the IKE SA and its Child SA in the same call; B deletes its
// side on receipt and answers; the answer reaches A for an SPI it no longer
// has and is dropped.
//
//	A: SK{D(IKE)}  -->   (A: child-down, ike-down "terminated", nothing left)
//	               <--   B: SK{}  (B: ike-down "deleted-by-peer")
func TestTerminateNow(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	p.a.out.Reset()
	if err := p.a.ep.TerminateNow(p.now, spi, &p.a.out); err != nil {
		t.Fatal(err)
	}
	out := &p.a.out
	if len(out.Datagrams) != 1 || len(ops(out, OpDelete)) != 1 || p.a.ep.Len() != 0 {
		t.Fatalf("A: %d datagrams, %d deletes, %d SAs left", len(out.Datagrams), len(ops(out, OpDelete)), p.a.ep.Len())
	}
	if e := events(out, EventIKEDown); len(e) != 1 || e[0].Reason != "terminated" {
		t.Fatalf("A events: %+v", out.Events)
	}
	if d, _ := wire.Find(innerOf(t, only(t, p.b.ep), out.Datagrams[0]), wire.PayloadD).(*wire.Delete); d == nil || d.Protocol != wire.ProtoIKE {
		t.Fatal("no IKE Delete sent")
	}
	bout := p.deliver(p.b, out.Datagrams[0])
	if e := events(bout, EventIKEDown); len(e) != 1 || p.b.ep.Len() != 0 {
		t.Fatalf("B: %+v, %d SAs", bout.Events, p.b.ep.Len())
	}
	if aout := p.deliver(p.a, p.one(bout)); len(aout.Datagrams)+len(aout.Ops)+len(aout.Events) != 0 {
		t.Fatalf("A acted on an answer for a forgotten SA: %+v", aout)
	}
	if d, ok := p.a.ep.NextDeadline(); ok {
		t.Fatalf("A still has a timer at %v", d)
	}
	if err := p.a.ep.TerminateNow(p.now, spi, &p.a.out); err != ErrNoSA {
		t.Fatalf("second TerminateNow: %v", err)
	}
}

// TestTerminateNowWhileWaiting: a Delete already waits for an answer that
// does not come (the peer is gone): the forced delete sends nothing more
// and forgets the SA at once instead of waiting out the retransmissions.
func TestTerminateNowWhileWaiting(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	p.a.out.Reset()
	if err := p.a.ep.Terminate(p.now, spi, &p.a.out); err != nil || len(p.a.out.Datagrams) != 1 {
		t.Fatalf("Terminate: %v, %d datagrams", err, len(p.a.out.Datagrams))
	}
	p.a.out.Reset()
	if err := p.a.ep.TerminateNow(p.now, spi, &p.a.out); err != nil {
		t.Fatal(err)
	}
	if len(p.a.out.Datagrams) != 0 || p.a.ep.Len() != 0 || len(events(&p.a.out, EventIKEDown)) != 1 {
		t.Fatalf("A: %d datagrams, %d SAs, events %+v", len(p.a.out.Datagrams), p.a.ep.Len(), p.a.out.Events)
	}
}
