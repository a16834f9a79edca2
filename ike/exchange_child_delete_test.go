package ike

import (
	"slices"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// establishTwo brings up gw with both children (IKE_AUTH, then one
// CREATE_CHILD_SA) and returns A's and B's IKE SAs.
func establishTwo(t *testing.T) (*pair, *SA, *SA) {
	t.Helper()
	ca := twoChildConn(nil)
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, aout, _ := p.establish("gw")
	p.deliver(p.a, p.exchange(p.b, p.one(aout)))
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(asa.spiR)
	if len(asa.children) != 2 || len(bsa.children) != 2 {
		t.Fatalf("children A %d B %d", len(asa.children), len(bsa.children))
	}
	return p, asa, bsa
}

func inSPIs(sa *SA) []uint32 {
	var out []uint32
	for _, c := range sa.children {
		out = append(out, c.InSPI)
	}
	return out
}

// TestDeleteTwoChildren: A deletes both pairs in one request; B answers
// with the paired SPIs of its own inbound SAs (RFC 7296 §1.4.1).
//
//	A: INFORMATIONAL SK{D(ESP, a1, a2)}  -->
//	                                     <--  SK{D(ESP, b1, b2)}
func TestDeleteTwoChildren(t *testing.T) {
	p, asa, bsa := establishTwo(t)
	aIn, bIn := inSPIs(asa), inSPIs(bsa)
	p.a.out.Reset()
	if err := p.a.ep.DeleteChild(p.now, asa.ourSPI(), aIn, &p.a.out); err != nil {
		t.Fatal(err)
	}
	req := p.one(&p.a.out)
	d, _ := wire.Find(innerOf(t, bsa, req), wire.PayloadD).(*wire.Delete)
	if d == nil || !slices.Equal(d.SPIs, aIn) {
		t.Fatalf("A's delete %+v", d)
	}
	bout := p.deliver(p.b, req)
	if len(ops(bout, OpDelete)) != 2 || len(events(bout, EventChildDown)) != 2 {
		t.Fatalf("B: %+v", bout.Ops)
	}
	d, _ = wire.Find(innerOf(t, asa, bout.Datagrams[0]), wire.PayloadD).(*wire.Delete)
	if d == nil || !slices.Equal(d.SPIs, bIn) {
		t.Fatalf("B's answer %+v, want %v", d, bIn)
	}
	aout := p.deliver(p.a, p.one(bout))
	if len(ops(aout, OpDelete)) != 2 || len(asa.children) != 0 || len(bsa.children) != 0 || !asa.Established() {
		t.Fatalf("A: %+v", aout.Ops)
	}
	if e := events(aout, EventChildDown); e[0].Reason != "deleted" {
		t.Errorf("reason %q", e[0].Reason)
	}
}

// TestDeleteChildByResponder: B, the IKE responder, deletes one pair.
//
//	                                   <--  B: INFORMATIONAL SK{D(ESP, b2)}
//	A: SK{D(ESP, a2)}                  -->
func TestDeleteChildByResponder(t *testing.T) {
	p, asa, bsa := establishTwo(t)
	b2, a2 := bsa.children[1].InSPI, asa.children[1].InSPI
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{b2}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	resp := p.exchange(p.a, p.one(&p.b.out))
	d, _ := wire.Find(innerOf(t, bsa, resp), wire.PayloadD).(*wire.Delete)
	if d == nil || !slices.Equal(d.SPIs, []uint32{a2}) {
		t.Fatalf("A's answer %+v", d)
	}
	bout := p.deliver(p.b, resp)
	if len(ops(bout, OpDelete)) != 1 || len(asa.children) != 1 || len(bsa.children) != 1 {
		t.Fatal("one pair must remain on each side")
	}
	if asa.children[0].InSPI != bsa.children[0].OutSPI {
		t.Fatal("the wrong pair remained")
	}
}

// TestDeleteChildCrossing: both ends delete the same pair at once. Each
// deletes it while answering the other's request and leaves it out of the
// response (RFC 7296 §1.4.1); each response then finds nothing left.
//
//	A: SK{D(ESP, a1)}  -->   <--  B: SK{D(ESP, b1)}
//	A: SK{}            -->   <--  B: SK{}
func TestDeleteChildCrossing(t *testing.T) {
	p, asa, bsa := establishTwo(t)
	a1, b1 := asa.children[0].InSPI, bsa.children[0].InSPI
	p.a.out.Reset()
	p.b.out.Reset()
	if err := p.a.ep.DeleteChild(p.now, asa.ourSPI(), []uint32{a1}, &p.a.out); err != nil {
		t.Fatal(err)
	}
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{b1}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	areq, breq := p.one(&p.a.out), p.one(&p.b.out)
	aout := p.deliver(p.a, breq)
	aresp := p.one(aout)
	if len(ops(aout, OpDelete)) != 1 || wire.Find(innerOf(t, bsa, aresp), wire.PayloadD) != nil {
		t.Fatal("A must delete the pair and answer without D")
	}
	bout := p.deliver(p.b, areq)
	bresp := p.one(bout)
	if len(ops(bout, OpDelete)) != 1 || wire.Find(innerOf(t, asa, bresp), wire.PayloadD) != nil {
		t.Fatal("B must delete the pair and answer without D")
	}
	if o := p.deliver(p.a, bresp); len(o.Ops) != 0 || len(o.Datagrams) != 0 {
		t.Fatalf("A's response handling: %+v", o)
	}
	if o := p.deliver(p.b, aresp); len(o.Ops) != 0 || len(o.Datagrams) != 0 {
		t.Fatalf("B's response handling: %+v", o)
	}
	if len(asa.children) != 1 || len(bsa.children) != 1 || !asa.Established() || !bsa.Established() {
		t.Fatal("the other pair and the IKE SA must remain")
	}
}
