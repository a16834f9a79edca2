package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// Exchange tests for lifetimes (RFC 7296 §2.8): soft limits rekey, hard
// limits delete, by time (with jitter) and by the data plane's counters;
// reauthentication replaces the IKE SA make-before-break (§2.8.3).

// TestChildRekeyOnTime: RekeyTime 60 s: A rekeys between 54 and 60 s
// (jitter), B (RekeyTime 0) never does on its own.
//
//	(≈57 s)  A: SK{N(REKEY_SA), SA, Ni, TSi, TSr}  -->  <--  SK{SA, Nr, TSi, TSr}
//	         A: SK{D(ESP, old)}                    -->  <--  SK{D(ESP, old)}
func TestChildRekeyOnTime(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].RekeyTime = time.Minute
	cb := mirror(ca)
	cb.Children[0].RekeyTime = 0
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, _, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(asa.spiR)
	d, ok := p.a.ep.NextDeadline()
	if wait := d.Sub(t0); !ok || wait < 54*time.Second || wait > time.Minute {
		t.Fatalf("rekey after %v", wait)
	}
	if _, ok := p.b.ep.NextDeadline(); ok {
		t.Fatal("B has a timer without lifetimes")
	}
	old := asa.children[0].InSPI
	p.now = d
	req := p.one(p.tick(p.a))
	if wire.FindNotify(innerOf(t, bsa, req), wire.REKEY_SA) == nil {
		t.Fatal("not a rekey")
	}
	del := p.exchange(p.a, p.exchange(p.b, req))
	p.deliver(p.a, p.exchange(p.b, del))
	paired(t, asa, bsa)
	if asa.children[0].InSPI == old {
		t.Fatal("not rekeyed")
	}
}

// TestChildHardLifetime: B's copy has a hard limit of 30 s and no rekey;
// at 30 s B deletes the pair.
//
//	(30 s)  B: SK{D(ESP, b1)}  -->  <--  A: SK{D(ESP, a1)}
func TestChildHardLifetime(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	cb := mirror(ca)
	cb.Children[0].LifeTime = 30 * time.Second
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, _, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	d, _ := p.b.ep.NextDeadline()
	if d != t0.Add(30*time.Second) {
		t.Fatalf("expiry at %v", d)
	}
	p.now = d
	bout := p.tick(p.b)
	if len(bout.Datagrams) != 1 {
		t.Fatal("no delete")
	}
	bout = p.deliver(p.b, p.exchange(p.a, p.one(bout)))
	if e := events(bout, EventChildDown); len(e) != 1 || e[0].Reason != "expired" || len(asa.children) != 0 {
		t.Fatalf("B: %+v", bout.Events)
	}
}

// TestChildVolumeLimits: the daemon reports counters; past RekeyBytes the
// pair is rekeyed (once), past LifePackets deleted.
func TestChildVolumeLimits(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].RekeyBytes, ca.Children[0].LifePackets = 1000, 50
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	a1 := asa.children[0].InSPI
	p.a.out.Reset()
	p.a.ep.ChildUsage(p.now, []ChildUsage{{InSPI: a1, Bytes: 999, Packets: 10}}, &p.a.out)
	if len(p.a.out.Datagrams) != 0 {
		t.Fatal("rekey below the limit")
	}
	p.a.ep.ChildUsage(p.now, []ChildUsage{{InSPI: a1, Bytes: 1000, Packets: 11}}, &p.a.out)
	req := p.one(&p.a.out)
	p.a.out.Reset()
	p.a.ep.ChildUsage(p.now, []ChildUsage{{InSPI: a1, Bytes: 2000, Packets: 12}}, &p.a.out)
	if len(p.a.out.Datagrams) != 0 || len(asa.tm.queued) != 0 {
		t.Fatal("second rekey for the same pair")
	}
	del := p.exchange(p.a, p.exchange(p.b, req))
	p.deliver(p.a, p.exchange(p.b, del))
	a2 := asa.children[0].InSPI
	p.a.out.Reset()
	p.a.ep.ChildUsage(p.now, []ChildUsage{{InSPI: a2, Bytes: 10, Packets: 50}}, &p.a.out)
	d, _ := wire.Find(innerOf(t, p.b.ep.SA(asa.spiR), p.one(&p.a.out)), wire.PayloadD).(*wire.Delete)
	if d == nil || d.SPIs[0] != a2 {
		t.Fatalf("want delete of %08x: %+v", a2, d)
	}
}

// TestReauth: ReauthTime: A builds a fresh IKE SA with IKE_SA_INIT and
// IKE_AUTH while the old one keeps the child; once the new one is up, A
// deletes the old (RFC 7296 §2.8.3).
//
//	A: IKE_SA_INIT, IKE_AUTH (new SA, new child)  -->  <--  ...
//	A: old SA: SK{D(IKE)}                          -->  <--  SK{}
func TestReauth(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.ReauthTime = time.Hour
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	d, _ := p.a.ep.NextDeadline()
	p.now = d
	init := p.one(p.tick(p.a))
	if m, _ := outerPayloads(t, init); m.Header.Exchange != wire.IKE_SA_INIT || p.a.ep.Len() != 2 {
		t.Fatal("no fresh IKE_SA_INIT")
	}
	auth := p.exchange(p.a, p.exchange(p.b, init))
	bout := p.deliver(p.b, auth)
	if len(ops(bout, OpInstall)) != 1 || len(ops(bout, OpDelete)) != 0 {
		t.Fatal("B must install the new child before anything is deleted")
	}
	// B answers the reauthentication: A installs the new pair only when
	// the answer arrives, so B keeps sending on the old one (the daemon
	// activates the new one on traffic or when the old one goes).
	if !ops(bout, OpInstall)[0].DeferOut {
		t.Fatal("B's new outbound SA not deferred while the old pair lives")
	}
	aout := p.deliver(p.a, p.one(bout))
	if len(ops(aout, OpInstall)) != 1 || len(aout.Datagrams) != 1 {
		t.Fatalf("A: %+v", aout)
	}
	if ops(aout, OpInstall)[0].DeferOut {
		t.Fatal("the reauthentication's initiator must send on the new pair at once")
	}
	del := p.one(aout)
	if m, _ := outerPayloads(t, del); m.Header.SPIi != spi {
		t.Fatal("delete not on the old SA")
	}
	bout = p.deliver(p.b, del)
	aout = p.deliver(p.a, p.one(bout))
	if len(ops(aout, OpDelete)) != 1 || p.a.ep.Len() != 1 || p.b.ep.Len() != 1 || p.a.ep.SA(spi) != nil {
		t.Fatalf("A: %+v", aout)
	}
	paired(t, only(t, p.a.ep), only(t, p.b.ep))
}
