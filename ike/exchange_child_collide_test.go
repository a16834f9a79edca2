package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// TestChildRekeyVsDelete: A rekeys a pair that B is deleting (RFC 7296
// §2.25). B refuses the rekey with TEMPORARY_FAILURE; A answers B's delete;
// the pair is gone on both sides and A does not retry.
//
//	A: SK{N(REKEY_SA, a1), SA, Ni, TSi, TSr}  -->   <--  B: SK{D(ESP, b1)}
//	A: SK{D(ESP, a1)}                          -->   <--  B: SK{N(TEMPORARY_FAILURE)}
func TestChildRekeyVsDelete(t *testing.T) {
	p, asa, bsa := establishOne(t, 1, 2)
	req := p.rekeyChild(p.a, asa, asa.children[0].InSPI)
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{bsa.children[0].InSPI}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	del := p.one(&p.b.out)
	aresp := p.exchange(p.a, del)
	if len(asa.children) != 0 {
		t.Fatal("A kept the pair B deleted")
	}
	bresp := p.exchange(p.b, req)
	if !hasNotify(innerOf(t, asa, bresp), wire.TEMPORARY_FAILURE) {
		t.Fatal("B must refuse with TEMPORARY_FAILURE")
	}
	p.deliver(p.b, aresp)
	if o := p.deliver(p.a, bresp); len(o.Datagrams) != 0 || len(asa.tm.delayed) != 0 {
		t.Fatal("A must not retry the rekey of a deleted pair")
	}
	if len(asa.children)+len(bsa.children) != 0 || !asa.Established() || !bsa.Established() {
		t.Fatal("pair must be gone, IKE SA up")
	}
}

// TestChildRekeyNotFound: B no longer knows the pair A rekeys (it lost it,
// say, to a restart of its data plane); B answers CHILD_SA_NOT_FOUND naming
// the SPI and A removes its end (RFC 7296 §2.25).
//
//	A: SK{N(REKEY_SA, a1), SA, Ni, TSi, TSr}  -->
//	                                          <--  SK{N(CHILD_SA_NOT_FOUND, ESP, a1)}
func TestChildRekeyNotFound(t *testing.T) {
	p, asa, bsa := establishOne(t, 1, 2)
	a1 := asa.children[0].InSPI
	bsa.children = nil
	resp := p.exchange(p.b, p.rekeyChild(p.a, asa, a1))
	n := wire.FindNotify(innerOf(t, asa, resp), wire.CHILD_SA_NOT_FOUND)
	if n == nil || n.Protocol != wire.ProtoESP || len(n.SPI) != 4 {
		t.Fatalf("B's answer %+v", n)
	}
	aout := p.deliver(p.a, resp)
	if len(asa.children) != 0 || len(ops(aout, OpDelete)) != 1 || len(aout.Datagrams) != 0 {
		t.Fatalf("A: %+v", aout)
	}
}

// TestChildRekeyTemporaryFailure: B is busy with the pair and answers
// TEMPORARY_FAILURE; A retries after a random 1-5 s (RFC 7296 §2.25) with
// the next message ID and succeeds.
//
//	A: mid 2 SK{N(REKEY_SA, a1), ...}  -->   <--  SK{N(TEMPORARY_FAILURE)}
//	   ... 1-5 s ...
//	A: mid 3 SK{N(REKEY_SA, a1), ...}  -->   <--  SK{SA, Nr, TSi, TSr}
func TestChildRekeyTemporaryFailure(t *testing.T) {
	p, asa, bsa := establishOne(t, 1, 2)
	a1 := asa.children[0].InSPI
	bsa.children[0].rekeyed = true // B is replacing it (state forced)
	resp := p.exchange(p.b, p.rekeyChild(p.a, asa, a1))
	if o := p.deliver(p.a, resp); len(o.Datagrams) != 0 || len(o.Events) != 0 {
		t.Fatalf("A: %+v", o)
	}
	bsa.children[0].rekeyed = false
	d, ok := p.a.ep.NextDeadline()
	if wait := d.Sub(p.now); !ok || wait < time.Second || wait > 5*time.Second {
		t.Fatalf("retry in %v", wait)
	}
	p.now = d
	p.a.out.Reset()
	p.a.ep.Tick(p.now, &p.a.out)
	req := p.one(&p.a.out)
	if m, _ := outerPayloads(t, req); m.Header.MessageID != 3 {
		t.Fatalf("retry mid %d", m.Header.MessageID)
	}
	del := p.exchange(p.a, p.exchange(p.b, req))
	p.deliver(p.a, p.exchange(p.b, del))
	paired(t, asa, bsa)
	if asa.children[0].InSPI == a1 {
		t.Fatal("not rekeyed")
	}
}
