package ike

import (
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func pfx(s string) TrafficSelector { return TSFromPrefix(netip.MustParsePrefix(s)) }

// TestChildNarrowing: the responder narrows the initiator's selectors to
// its own (RFC 7296 §2.9).
//
//	A: SK{..., SA, TSi(10.1.0.0/16), TSr(0.0.0.0/0)}  -->
//	B (local 10.2.0.0/24, remote 10.1.5.0/24)        <--  SK{..., SA, TSi(10.1.5.0/24), TSr(10.2.0.0/24)}
func TestChildNarrowing(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].LocalTS = []TrafficSelector{pfx("10.1.0.0/16")}
	ca.Children[0].RemoteTS = []TrafficSelector{pfx("0.0.0.0/0")}
	cb := mirror(ca)
	cb.Children[0].LocalTS = []TrafficSelector{pfx("10.2.0.0/24")}
	cb.Children[0].RemoteTS = []TrafficSelector{pfx("10.1.5.0/24")}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, bout := p.establish("gw")
	ai, bi := ops(aout, OpInstall), ops(bout, OpInstall)
	if len(ai) != 1 || len(bi) != 1 {
		t.Fatalf("installs A %d B %d", len(ai), len(bi))
	}
	if ai[0].LocalTS[0] != pfx("10.1.5.0/24") || ai[0].RemoteTS[0] != pfx("10.2.0.0/24") {
		t.Errorf("A got TS %v / %v", ai[0].LocalTS, ai[0].RemoteTS)
	}
	if bi[0].LocalTS[0] != pfx("10.2.0.0/24") || bi[0].RemoteTS[0] != pfx("10.1.5.0/24") {
		t.Errorf("B got TS %v / %v", bi[0].LocalTS, bi[0].RemoteTS)
	}
}

// TestChildTSUnacceptable: no overlap. The Child SA fails, the IKE SA
// stays up (RFC 7296 §1.2).
//
//	A: SK{IDi, AUTH, SA, TSi(10.1/16), TSr(10.2/16)}  -->
//	B (remote 172.16/12):                            <--  SK{IDr, AUTH, N(TS_UNACCEPTABLE)}
func TestChildTSUnacceptable(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	cb := mirror(ca)
	cb.Children[0].RemoteTS = []TrafficSelector{pfx("172.16.0.0/12")}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, aout, bout := p.establish("gw")
	if len(events(bout, EventIKEUp)) != 1 || len(events(aout, EventIKEUp)) != 1 {
		t.Fatal("IKE SA must survive a Child SA failure")
	}
	for _, o := range []*Output{aout, bout} {
		f := events(o, EventChildFailed)
		if len(f) != 1 || len(ops(o, OpInstall)) != 0 {
			t.Fatalf("want one child failure and no install: %+v", o.Events)
		}
	}
	if f := events(aout, EventChildFailed)[0]; f.Reason != "TS_UNACCEPTABLE" {
		t.Errorf("initiator reason %q", f.Reason)
	}
	if sa := p.a.ep.SA(spi); !sa.Established() || len(sa.Children()) != 0 {
		t.Fatal("initiator state after child failure")
	}
}

// TestChildNoProposal: ESP proposals do not overlap: N(NO_PROPOSAL_CHOSEN)
// inside IKE_AUTH; the IKE SA stays up.
func TestChildNoProposal(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].Proposals = [][]wire.Transform{{gcm128, tr(wire.TransformESN, 0, 0)}}
	cb := mirror(ca)
	cb.Children[0].Proposals = [][]wire.Transform{{chacha, tr(wire.TransformESN, 0, 0)}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, _ := p.establish("gw")
	f := events(aout, EventChildFailed)
	if len(events(aout, EventIKEUp)) != 1 || len(f) != 1 || f[0].Reason != "NO_PROPOSAL_CHOSEN" {
		t.Fatalf("events %+v", aout.Events)
	}
}

// TestChildTransportESN: transport mode (USE_TRANSPORT_MODE) and extended
// sequence numbers negotiated.
//
//	A: SK{..., N(USE_TRANSPORT_MODE), SA{gcm256, ESN|NO_ESN}, TSi(A), TSr(B)}  -->
//	B:                                                      <--  SK{..., N(USE_TRANSPORT_MODE), SA{gcm256, ESN}, ...}
func TestChildTransportESN(t *testing.T) {
	esn, noESN := tr(wire.TransformESN, 1, 0), tr(wire.TransformESN, 0, 0)
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].Mode = ModeTransport
	ca.Children[0].LocalTS, ca.Children[0].RemoteTS = nil, nil // the hosts themselves
	ca.Children[0].Proposals = [][]wire.Transform{{gcm256, esn, noESN}}
	cb := mirror(ca)
	cb.Children[0].Proposals = [][]wire.Transform{{gcm256, esn}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, bout := p.establish("gw")
	ai, bi := ops(aout, OpInstall), ops(bout, OpInstall)
	if len(ai) != 1 || len(bi) != 1 {
		t.Fatalf("installs A %d B %d", len(ai), len(bi))
	}
	for _, op := range []ChildOp{ai[0], bi[0]} {
		if op.Mode != ModeTransport || !op.ESN {
			t.Errorf("mode %v ESN %v", op.Mode, op.ESN)
		}
	}
	if ai[0].LocalTS[0] != TSHost(addrA.Addr()) || ai[0].RemoteTS[0] != TSHost(addrB.Addr()) {
		t.Errorf("transport TS %v %v", ai[0].LocalTS, ai[0].RemoteTS)
	}
	// A responder configured for tunnel mode declines transport: tunnel.
	cb.Children[0].Mode = ModeTunnel
	p = newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, _ = p.establish("gw")
	if ai := ops(aout, OpInstall); len(ai) != 1 || ai[0].Mode != ModeTunnel {
		t.Fatalf("declined transport: %+v", ai)
	}
}

// TestChildIPCompDeclined: A offers IPComp; B (no IPComp) declines by not
// answering IPCOMP_SUPPORTED (RFC 7296 §2.22) and the Child SA comes up
// without it.
//
//	A: SK{..., N(IPCOMP_SUPPORTED), SA, TSi, TSr}  -->
//	B:                                            <--  SK{..., SA, TSi, TSr}   (no IPCOMP_SUPPORTED)
func TestChildIPCompDeclined(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].IPComp = true
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(mustSPIr(t, resp))
	if in := innerOfResponder(t, bsa, auth); !hasNotify(in, wire.IPCOMP_SUPPORTED) {
		t.Fatal("A did not offer IPComp")
	}
	bout := p.deliver(p.b, auth)
	if in := innerOf(t, asa, bout.Datagrams[0]); hasNotify(in, wire.IPCOMP_SUPPORTED) || wire.Find(in, wire.PayloadSA) == nil {
		t.Fatalf("B must decline IPComp and accept the Child SA: %v", in)
	}
	aout := p.deliver(p.a, bout.Datagrams[0])
	if len(ops(aout, OpInstall)) != 1 {
		t.Fatal("Child SA not installed")
	}
}

// innerOfResponder decrypts a request with the responder's SA.
func innerOfResponder(t *testing.T, sa *SA, d Datagram) []wire.Payload { return innerOf(t, sa, d) }

// TestTerminate: A deletes the IKE SA; both sides remove it and its Child
// SA (RFC 7296 §1.4.1).
//
//	A: HDR, SK{D(IKE)}  -->
//	B:                 <--  HDR, SK{}
func TestTerminate(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	p.a.out.Reset()
	if err := p.a.ep.Terminate(p.now, spi, &p.a.out); err != nil {
		t.Fatal(err)
	}
	del := p.one(&p.a.out)
	bout := p.deliver(p.b, del)
	if len(bout.Datagrams) != 1 || len(ops(bout, OpDelete)) != 1 || len(events(bout, EventIKEDown)) != 1 || p.b.ep.Len() != 0 {
		t.Fatalf("responder: %+v", bout.Events)
	}
	aout := p.deliver(p.a, bout.Datagrams[0])
	if len(ops(aout, OpDelete)) != 1 || len(events(aout, EventIKEDown)) != 1 || p.a.ep.Len() != 0 {
		t.Fatalf("initiator: %+v", aout.Events)
	}
	if _, ok := p.a.ep.NextDeadline(); ok {
		t.Error("timer left")
	}
}
