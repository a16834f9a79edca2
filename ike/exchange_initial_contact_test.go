package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// TestInitialContact: A's first IKE SA to B carries N(INITIAL_CONTACT); a
// second one while the first is up does not. Then A restarts (a fresh
// endpoint, same identity) and connects again: B deletes the SAs A
// forgot, with their Child SAs, without a message (RFC 7296 §2.4).
//
//	A: IKE_AUTH SK{IDi, N(INITIAL_CONTACT), AUTH, SA, TSi, TSr}  -->
//	   (A restarts)
//	A': IKE_AUTH SK{IDi, N(INITIAL_CONTACT), AUTH, ...}           -->  B drops the old SAs
func TestInitialContact(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	authHas := func() bool {
		_, req := p.initiate("gw")
		resp := p.exchange(p.b, req)
		auth := p.exchange(p.a, resp)
		has := hasNotify(innerOf(t, p.b.ep.SA(mustSPIr(t, resp)), auth), wire.INITIAL_CONTACT)
		p.deliver(p.a, p.exchange(p.b, auth))
		return has
	}
	if !authHas() {
		t.Fatal("first SA without INITIAL_CONTACT")
	}
	if authHas() {
		t.Fatal("second SA with INITIAL_CONTACT")
	}
	if p.b.ep.Len() != 2 {
		t.Fatal("B must hold both SAs")
	}
	cfg := DefaultEndpointConfig()
	cfg.Connections = []*Connection{ca}
	p.a.ep = newEndpoint(t, 9, cfg) // A restarts
	p.now = p.now.Add(time.Minute)
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	bout := p.deliver(p.b, p.exchange(p.a, resp))
	if e := events(bout, EventIKEDown); len(e) != 2 || e[0].Reason != "initial-contact" || len(ops(bout, OpDelete)) != 2 {
		t.Fatalf("B: %+v", bout.Events)
	}
	if len(bout.Datagrams) != 1 || p.b.ep.Len() != 1 {
		t.Fatal("B must answer the new SA and keep only it")
	}
}

// TestInvalidESPSPI: B's data plane lost a pair and receives ESP for it; B
// tells A with N(INVALID_SPI) and A removes its stale end (RFC 7296 §1.5).
//
//	B: SK{N(INVALID_SPI, ESP, a's outbound SPI)}  -->
//	                                              <--  A: SK{}
func TestInvalidESPSPI(t *testing.T) {
	p, asa, bsa := establishOne(t, 1, 2)
	stale := bsa.children[0].InSPI
	p.b.out.Reset()
	p.b.ep.UnknownESPSPI(p.now, addrA.Addr(), stale, &p.b.out)
	p.b.ep.UnknownESPSPI(p.now, addrA.Addr(), stale, &p.b.out) // not queued twice
	aout := p.deliver(p.a, p.one(&p.b.out))
	if e := events(aout, EventChildDown); len(e) != 1 || e[0].Reason != "invalid-spi" || len(asa.children) != 0 {
		t.Fatalf("A: %+v", aout.Events)
	}
	p.deliver(p.b, p.one(aout))
	if bsa.tm.inFlight() || len(bsa.tm.queued) != 0 {
		t.Fatal("B has work left")
	}
}
