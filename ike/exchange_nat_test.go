package ike

import (
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestNATDetection: a NAT between A and B rewrites A's source address
// (RFC 7296 §2.23).
//
//	A 10.0.0.1:500 --NAT--> 203.0.113.9:3000 --> B 198.51.100.2:500
//	A: SA, KEi, Ni, N(NAT_D_SRC=h(10.0.0.1:500)), N(NAT_D_DST=h(B:500))  -->
//	B: src hash mismatch → peer behind NAT                               <--  ..., N(NAT_D)x2
//	A: dst hash of B's N(NAT_D_DST) mismatch → we are behind NAT; move to 4500
//	A 10.0.0.1:4500 --NAT--> 203.0.113.9:3001 --> B:4500  HDR, SK{IDi, AUTH, SA, TS}  -->
//	B follows to the new address; ESP in UDP on both sides.
func TestNATDetection(t *testing.T) {
	inside := netip.MustParseAddrPort("10.0.0.1:500")
	public := netip.MustParseAddrPort("203.0.113.9:3000")
	public4500 := netip.MustParseAddrPort("203.0.113.9:3001")
	ca := pskConn("gw", inside, addrB, "k")
	cb := mirror(ca)
	cb.Remote = netip.AddrPort{}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	nat := func(d Datagram) Datagram { // outbound from A
		if d.Src.Port() == 4500 {
			d.Src = public4500
		} else {
			d.Src = public
		}
		return d
	}
	unnat := func(d Datagram) Datagram { // inbound to A
		if d.Dst == public4500 {
			d.Dst = netip.AddrPortFrom(inside.Addr(), 4500)
		} else {
			d.Dst = inside
		}
		return d
	}
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, nat(req))
	bsa := p.b.ep.SA(mustSPIr(t, resp))
	if !bsa.natRemote || bsa.natLocal {
		t.Fatalf("responder: natRemote=%v natLocal=%v", bsa.natRemote, bsa.natLocal)
	}
	auth := p.exchange(p.a, unnat(resp))
	asa := p.a.ep.SA(spi)
	if !asa.natLocal || asa.natRemote {
		t.Fatalf("initiator: natLocal=%v natRemote=%v", asa.natLocal, asa.natRemote)
	}
	if auth.Src.Port() != 4500 || auth.Dst.Port() != 4500 {
		t.Fatalf("IKE_AUTH not moved to 4500: %v -> %v", auth.Src, auth.Dst)
	}
	bout := p.deliver(p.b, nat(auth))
	if len(bout.Datagrams) != 1 || bout.Datagrams[0].Dst != public4500 {
		t.Fatalf("responder did not follow to the NAT-T mapping: %+v", bout.Datagrams)
	}
	bi := ops(bout, OpInstall)
	aout := p.deliver(p.a, unnat(bout.Datagrams[0]))
	ai := ops(aout, OpInstall)
	if len(ai) != 1 || len(bi) != 1 || !ai[0].UDPEncap || !bi[0].UDPEncap {
		t.Fatalf("Child SAs must use UDP encapsulation: A %+v B %+v", ai, bi)
	}
	if bi[0].Remote != public4500 || ai[0].Local.Port() != 4500 {
		t.Errorf("outer addresses: A %v->%v, B %v->%v", ai[0].Local, ai[0].Remote, bi[0].Local, bi[0].Remote)
	}
}

func mustSPIr(t *testing.T, d Datagram) uint64 {
	m, _ := outerPayloads(t, d)
	return m.Header.SPIr
}

// TestForceEncap: no NAT, but A forces UDP encapsulation by faking its
// NAT_DETECTION_SOURCE_IP; both sides move to 4500 and encapsulate.
func TestForceEncap(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.ForceEncap = true
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	if auth.Dst.Port() != 4500 {
		t.Fatalf("forced encapsulation did not move to 4500: %v", auth.Dst)
	}
	auth.Dst = netip.AddrPortFrom(addrB.Addr(), 4500)
	bout := p.deliver(p.b, auth)
	if bi := ops(bout, OpInstall); len(bi) != 1 || !bi[0].UDPEncap {
		t.Fatalf("responder install %+v", bi)
	}
	if _, ps := outerPayloads(t, req); !hasNotify(ps, wire.NAT_DETECTION_SOURCE_IP) {
		t.Fatal("no NAT-D")
	}
}

// TestUnknownNotifyAndVendorIgnored: unknown status notifications and
// vendor IDs in IKE_SA_INIT are ignored (RFC 7296 §3.10.1, §3.12).
//
//	A: SA, KEi, Ni, N(40000), V("petrel-test")  -->
//	B:                                          <--  SA, KEr, Nr (no error)
func TestUnknownNotifyAndVendorIgnored(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, req := p.initiate("gw")
	m, err := wire.Parse(req.Data)
	if err != nil {
		t.Fatal(err)
	}
	m.Payloads = append(m.Payloads, &wire.Notify{NotifyType: 40000, Data: []byte{1, 2}}, &wire.VendorID{Data: []byte("petrel-test")})
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Data = b
	// A signs the octets it sent (RFC 7296 §2.15); make those the
	// extended ones, as if A had sent them.
	p.a.ep.SA(spi).initReq = b
	resp := p.exchange(p.b, req)
	if _, ps := outerPayloads(t, resp); wire.Find(ps, wire.PayloadKE) == nil {
		t.Fatalf("unknown notify or vendor ID refused: %v", ps)
	}
	authResp := p.exchange(p.b, p.exchange(p.a, resp))
	if out := p.deliver(p.a, authResp); len(events(out, EventIKEUp)) != 1 {
		t.Fatal("not established")
	}
}

// TestUnsupportedCriticalAndMajorVersion: an IKE_SA_INIT request with a
// critical payload we do not know, or with major version 3, is answered
// statelessly with UNSUPPORTED_CRITICAL_PAYLOAD (naming the type) or
// INVALID_MAJOR_VERSION (RFC 7296 §2.5); nothing is kept.
func TestUnsupportedCriticalAndMajorVersion(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	_, req := p.initiate("gw")
	m, err := wire.Parse(req.Data)
	if err != nil {
		t.Fatal(err)
	}
	m.Payloads = append(m.Payloads, &wire.RawPayload{PType: 222, Critical: true, Body: []byte{1, 2}})
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := p.deliver(p.b, Datagram{Src: req.Src, Dst: req.Dst, Data: b})
	if len(out.Datagrams) != 1 {
		t.Fatal("critical payload not answered")
	}
	n := wire.FindNotify(outerPayloadsOf(t, out.Datagrams[0]), wire.UNSUPPORTED_CRITICAL_PAYLOAD)
	if n == nil || len(n.Data) != 1 || n.Data[0] != 222 || p.b.ep.Len() != 0 {
		t.Fatalf("want UNSUPPORTED_CRITICAL_PAYLOAD(222), got %v", n)
	}
	v3 := append([]byte(nil), req.Data...)
	v3[17] = 0x30
	out = p.deliver(p.b, Datagram{Src: req.Src, Dst: req.Dst, Data: v3})
	if len(out.Datagrams) != 1 {
		t.Fatal("version 3 not answered")
	}
	rm, ps := outerPayloads(t, out.Datagrams[0])
	if !hasNotify(ps, wire.INVALID_MAJOR_VERSION) || rm.Header.MajorVersion != 2 || p.b.ep.Len() != 0 {
		t.Fatalf("want INVALID_MAJOR_VERSION in a version-2 message, got %v", ps)
	}
}
