package ike

import (
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestIKERekeyVsChildRekey: A rekeys the IKE SA while B rekeys a Child SA
// (RFC 7296 §2.25). Each refuses the other with TEMPORARY_FAILURE (B has a
// request in flight; A is rekeying the IKE SA); both retry after a random
// delay and both rekeys complete, on one IKE SA with one pair.
//
//	A: SK{SA(IKE), Ni, KEi}            -->   <--  B: SK{N(REKEY_SA), SA, Ni, TSi, TSr}
//	A: SK{N(TEMPORARY_FAILURE)}        -->   <--  B: SK{N(TEMPORARY_FAILURE)}
//	... 1-5 s later each retries; the first retry wins the window ...
func TestIKERekeyVsChildRekey(t *testing.T) {
	p, asa, bsa := establishOne(t, 1, 2)
	oldChild := asa.children[0].InSPI
	reqA := p.rekeyIKE(p.a, asa)
	reqB := p.rekeyChild(p.b, bsa, bsa.children[0].InSPI)
	respB := p.exchange(p.b, reqA)
	respA := p.exchange(p.a, reqB)
	if !hasNotify(innerOf(t, asa, respB), wire.TEMPORARY_FAILURE) || !hasNotify(innerOf(t, bsa, respA), wire.TEMPORARY_FAILURE) {
		t.Fatal("both must refuse with TEMPORARY_FAILURE")
	}
	if o := p.deliver(p.a, respB); len(o.Datagrams) != 0 {
		t.Fatal("A retried at once")
	}
	if o := p.deliver(p.b, respA); len(o.Datagrams) != 0 {
		t.Fatal("B retried at once")
	}
	// Run both to completion in time order, delivering everything.
	var inflight []Datagram
	for i := 0; i < 40; i++ {
		for len(inflight) > 0 {
			d := inflight[0]
			inflight = inflight[1:]
			to := p.b
			if d.Dst == addrA {
				to = p.a
			}
			inflight = append(inflight, p.deliver(to, d).Datagrams...)
		}
		da, oka := p.a.ep.NextDeadline()
		db, okb := p.b.ep.NextDeadline()
		if !oka && !okb {
			break
		}
		n := p.a
		if !oka || (okb && db.Before(da)) {
			n, da = p.b, db
		}
		p.now = da
		inflight = append(inflight, p.tick(n).Datagrams...)
		if p.now.Sub(t0) > 30e9 {
			break
		}
	}
	na, nb := only(t, p.a.ep), only(t, p.b.ep)
	if na == asa || nb == bsa {
		t.Fatal("IKE SA not rekeyed")
	}
	paired(t, na, nb)
	if na.children[0].InSPI == oldChild {
		t.Fatal("Child SA not rekeyed")
	}
}
