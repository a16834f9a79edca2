package ike

import (
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// Exchange tests for IKE SA rekeying (RFC 7296 §1.3.2, §2.18) and its
// collisions (§2.8.1).

func (p *pair) rekeyIKE(n *node, sa *SA) Datagram {
	p.t.Helper()
	n.out.Reset()
	if err := n.ep.RekeyIKE(p.now, sa.ourSPI(), &n.out); err != nil {
		p.t.Fatal(err)
	}
	return p.one(&n.out)
}

// only returns the endpoint's single IKE SA.
func only(t *testing.T, ep *Endpoint) *SA {
	t.Helper()
	if ep.Len() != 1 {
		t.Fatalf("%d IKE SAs, want 1", ep.Len())
	}
	var sa *SA
	ep.Range(func(s *SA) bool { sa = s; return false })
	return sa
}

// checkNewSA: one IKE SA per side, the same SPIs, a working child pair,
// and usable keys: a Child SA rekey on the new SA completes.
func checkNewSA(t *testing.T, p *pair, oldA *SA) {
	t.Helper()
	na, nb := only(t, p.a.ep), only(t, p.b.ep)
	if na == oldA || na.spiI != nb.spiI || na.spiR != nb.spiR || !na.Established() || !nb.Established() {
		t.Fatal("new IKE SAs do not match")
	}
	paired(t, na, nb)
	old := na.children[0].InSPI
	del := p.exchange(p.a, p.exchange(p.b, p.rekeyChild(p.a, na, old)))
	p.deliver(p.a, p.exchange(p.b, del))
	paired(t, na, nb)
	if na.children[0].InSPI == old {
		t.Fatal("child not rekeyed on the new IKE SA")
	}
}

// TestIKERekey: A (and then, on a fresh pair, B) rekeys the IKE SA. The new
// SA starts at message ID 0, takes the Child SA, and the old one is deleted
// by the rekey's initiator.
//
//	I: old SA, mid 2: SK{SA(SPIi'), Ni, KEi}  -->
//	                                          <--  SK{SA(SPIr'), Nr, KEr}
//	I: old SA, mid 3: SK{D(IKE)}              -->
//	                                          <--  SK{}
//	I: new SA, mid 0: SK{N(REKEY_SA), SA, Ni, TSi, TSr}  -->  ...
func TestIKERekey(t *testing.T) {
	for _, aStarts := range []bool{true, false} {
		p, asa, bsa := establishOne(t, 1, 2)
		ini, res, isa, rsa := p.a, p.b, asa, bsa
		if !aStarts {
			ini, res, isa, rsa = p.b, p.a, bsa, asa
		}
		req := p.rekeyIKE(ini, isa)
		s, _ := wire.Find(innerOf(t, rsa, req), wire.PayloadSA).(*wire.SA)
		if s == nil || s.Proposals[0].Protocol != wire.ProtoIKE || len(s.Proposals[0].SPI) != 8 ||
			wire.Find(innerOf(t, rsa, req), wire.PayloadTSi) != nil {
			t.Fatalf("rekey request SA %+v", s)
		}
		rout := p.deliver(res, req)
		if res.ep.Len() != 2 || len(rsa.children) != 0 || len(events(rout, EventIKERekeyed)) != 1 {
			t.Fatal("responder must move its child to the new SA")
		}
		iout := p.deliver(ini, p.one(rout))
		if ini.ep.Len() != 2 || len(isa.children) != 0 || len(events(iout, EventIKERekeyed)) != 1 {
			t.Fatal("initiator must move its child to the new SA")
		}
		del := p.one(iout)
		if d, _ := wire.Find(innerOf(t, rsa, del), wire.PayloadD).(*wire.Delete); d == nil || d.Protocol != wire.ProtoIKE {
			t.Fatal("initiator must delete the old SA")
		}
		rout = p.deliver(res, del)
		if e := events(rout, EventIKEDown); len(e) != 1 || e[0].Reason != "rekeyed" || len(ops(rout, OpDelete)) != 0 {
			t.Fatalf("responder: %+v", rout)
		}
		iout = p.deliver(ini, p.one(rout))
		if e := events(iout, EventIKEDown); len(e) != 1 || e[0].Reason != "rekeyed" || len(ops(iout, OpDelete)) != 0 {
			t.Fatalf("initiator: %+v", iout)
		}
		n := only(t, ini.ep)
		if n.initiator != true || n.tm.nextMID != 0 {
			t.Fatalf("new SA: initiator %v next mid %d", n.initiator, n.tm.nextMID)
		}
		if aStarts {
			checkNewSA(t, p, asa)
		} else {
			paired(t, only(t, p.a.ep), only(t, p.b.ep))
		}
	}
}

// ikeRekeyCollision: both ends rekey the IKE SA at once (RFC 7296 §2.8.1).
//
//	A: SK{SA(a'), Ni_A, KEi}  -->     <--  B: SK{SA(b'), Ni_B, KEi}
//	A answers: SK{SA, Nr_A, KEr} -->  <--  B answers: SK{SA, Nr_B, KEr}
//	loser, on its redundant new SA: SK{D(IKE)}  -->  <--  SK{}
//	winner, on the old SA:          SK{D(IKE)}  -->  <--  SK{}
func ikeRekeyCollision(t *testing.T, seedA, seedB uint64, aFirst bool) (aWon bool) {
	p, asa, bsa := establishOne(t, seedA, seedB)
	reqA, reqB := p.rekeyIKE(p.a, asa), p.rekeyIKE(p.b, bsa)
	respA := p.exchange(p.a, reqB)
	respB := p.exchange(p.b, reqA)
	var aout, bout Output
	if aFirst {
		aout = copyOut(p.deliver(p.a, respB))
		bout = copyOut(p.deliver(p.b, respA))
	} else {
		bout = copyOut(p.deliver(p.b, respA))
		aout = copyOut(p.deliver(p.a, respB))
	}
	if len(aout.Datagrams) != 1 || len(bout.Datagrams) != 1 {
		t.Fatalf("each side sends one delete: A %d B %d", len(aout.Datagrams), len(bout.Datagrams))
	}
	m, _ := outerPayloads(t, aout.Datagrams[0])
	aWon = m.Header.SPIi == asa.spiI && m.Header.SPIr == asa.spiR
	// Deliver each delete and its answer.
	p.deliver(p.a, p.exchange(p.b, aout.Datagrams[0]))
	p.deliver(p.b, p.exchange(p.a, bout.Datagrams[0]))
	na, nb := only(t, p.a.ep), only(t, p.b.ep)
	if na == asa || nb == bsa {
		t.Fatal("the old SA survived")
	}
	paired(t, na, nb)
	return aWon
}

func copyOut(o *Output) Output {
	return Output{Datagrams: append([]Datagram(nil), o.Datagrams...), Ops: append([]ChildOp(nil), o.Ops...),
		Events: append([]Event(nil), o.Events...)}
}

// TestIKERekeyCollision: both tie-break outcomes, with either side's
// response arriving first; exactly one new IKE SA survives, with the child.
func TestIKERekeyCollision(t *testing.T) {
	seen := map[[2]bool]bool{}
	for seed := uint64(1); seed < 40 && len(seen) < 4; seed++ {
		for _, aFirst := range []bool{true, false} {
			seen[[2]bool{ikeRekeyCollision(t, seed, seed+100, aFirst), aFirst}] = true
		}
	}
	if len(seen) != 4 {
		t.Fatalf("outcomes seen %v", seen)
	}
}
