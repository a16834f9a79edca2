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
	if in := innerOf(t, bsa, auth); !hasNotify(in, wire.IPCOMP_SUPPORTED) {
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

// TestAsymmetricPSK: local and remote authentication are configured
// independently: each side proves itself with its own key and checks the
// peer's.
//
//	A: SK{IDi, AUTH(prf(key "a-key"))}  -->  B checks with "a-key"
//	                                   <--  SK{IDr, AUTH(prf(key "b-key"))}, A checks with "b-key"
func TestAsymmetricPSK(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "")
	ca.LocalAuth, ca.RemoteAuth = &PSK{Secret: []byte("a-key")}, &PSK{Secret: []byte("b-key")}
	cb := mirror(ca)
	cb.LocalAuth, cb.RemoteAuth = &PSK{Secret: []byte("b-key")}, &PSK{Secret: []byte("a-key")}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, bout := p.establish("gw")
	if len(events(aout, EventIKEUp)) != 1 || len(events(bout, EventIKEUp)) != 1 {
		t.Fatal("asymmetric PSK failed")
	}
	// B verifying A with the wrong key fails even though B's own key is right.
	cb.RemoteAuth = &PSK{Secret: []byte("b-key")}
	p = newPair(t, []*Connection{ca}, []*Connection{cb})
	_, _, bout = p.establish("gw")
	if len(events(bout, EventIKEUp)) != 0 {
		t.Fatal("B accepted A's proof with its own key")
	}
}

// TestPeerDeletesChild, then a hand-made CREATE_CHILD_SA: B answers D(ESP)
// for its Child SA with D(ESP) naming its own inbound SPI and removes the
// pair (RFC 7296 §1.4.1); a CREATE_CHILD_SA creates a new pair (§1.3.1).
//
//	A: SK{D(ESP, B's inbound SPI... as A's outbound)}  -->
//	                                  <--  SK{D(ESP, B's inbound SPI)}
//	A: CREATE_CHILD_SA SK{SA, Ni, TSi, TSr}  -->
//	                                  <--  SK{SA, Nr, TSi, TSr}
func TestPeerDeletesChild(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, aout, bout := p.establish("gw")
	asa := p.a.ep.SA(spi)
	ai, bi := ops(aout, OpInstall)[0], ops(bout, OpInstall)[0]
	req := func(mid uint32, exch wire.ExchangeType, inner ...wire.Payload) Datagram {
		m := wire.Message{Header: wire.Header{SPIi: asa.spiI, SPIr: asa.spiR, Exchange: exch, MessageID: mid, Flags: wire.FlagInitiator}}
		m.Inner = inner
		b, err := m.Encode(asa.prot)
		if err != nil {
			t.Fatal(err)
		}
		return Datagram{Src: addrA, Dst: addrB, Data: b}
	}
	// D(ESP) carries the SPI of the deleting side's inbound SA.
	out := p.deliver(p.b, req(2, wire.INFORMATIONAL, &wire.Delete{Protocol: wire.ProtoESP, SPIs: []uint32{ai.InSPI}}))
	del := ops(out, OpDelete)
	if len(del) != 1 || del[0].InSPI != bi.InSPI || len(events(out, EventChildDown)) != 1 {
		t.Fatalf("B did not remove its Child SA: %+v", out.Ops)
	}
	d, _ := wire.Find(innerOf(t, asa, out.Datagrams[0]), wire.PayloadD).(*wire.Delete)
	if d == nil || len(d.SPIs) != 1 || d.SPIs[0] != bi.InSPI {
		t.Fatalf("B's answer %+v", d)
	}
	sa := toWireSA([][]wire.Transform{{gcm256, tr(wire.TransformESN, 0, 0)}}, wire.ProtoESP, []byte{1, 2, 3, 4})
	out = p.deliver(p.b, req(3, wire.CREATE_CHILD_SA, sa, &wire.Nonce{Data: make([]byte, 32)},
		toWireTS([]TrafficSelector{pfx("10.1.0.0/16")}, false), toWireTS([]TrafficSelector{pfx("10.2.0.0/16")}, true)))
	if len(out.Datagrams) != 1 || wire.Find(innerOf(t, asa, out.Datagrams[0]), wire.PayloadSA) == nil ||
		len(ops(out, OpInstall)) != 1 || p.b.ep.Len() != 1 {
		t.Fatal("CREATE_CHILD_SA did not create a Child SA")
	}
}

// TestChildPFSGroupsIgnoredInIKEAuth: ESP proposals configured with a PFS
// group (as strongSwan's esp_proposals = aes256gcm16-ecp256 sends them) still
// match in IKE_AUTH, where the first Child SA has no key exchange of its
// own (RFC 7296 §1.2); A sends no KE transform there.
func TestChildPFSGroupsIgnoredInIKEAuth(t *testing.T) {
	esp := tr(wire.TransformESN, 0, 0)
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Children[0].Proposals = [][]wire.Transform{{gcm256, ecp256, esp}}
	cb := mirror(ca)
	cb.Children[0].Proposals = [][]wire.Transform{{gcm256, esp}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	bsa := p.b.ep.SA(mustSPIr(t, resp))
	sa, _ := wire.Find(innerOf(t, bsa, auth), wire.PayloadSA).(*wire.SA)
	for _, tt := range sa.Proposals[0].Transforms {
		if tt.Type.IsKE() {
			t.Fatal("KE transform sent in IKE_AUTH")
		}
	}
	bout := p.deliver(p.b, auth)
	aout := p.deliver(p.a, bout.Datagrams[0])
	if len(ops(aout, OpInstall)) != 1 || p.a.ep.SA(spi) == nil {
		t.Fatalf("Child SA not up: %+v", aout.Events)
	}
	// And the other way round: only the responder's config has the group.
	ca2 := pskConn("gw", addrA, addrB, "k")
	ca2.Children[0].Proposals = [][]wire.Transform{{gcm256, esp}}
	cb2 := mirror(ca2)
	cb2.Children[0].Proposals = [][]wire.Transform{{gcm256, ecp256, esp}}
	p2 := newPair(t, []*Connection{ca2}, []*Connection{cb2})
	_, aout2, _ := p2.establish("gw")
	if len(ops(aout2, OpInstall)) != 1 {
		t.Fatalf("Child SA not up: %+v", aout2.Events)
	}
}

// TestPeerWithoutKE: received ESP proposals lose their KE transforms.
func TestPeerWithoutKE(t *testing.T) {
	in := []wire.Proposal{{Number: 1, Protocol: wire.ProtoESP, Transforms: []wire.ProposalTransform{{Transform: gcm256}, {Transform: ecp256}, {Transform: x25519}}}}
	out := peerWithoutKE(in)
	if len(out[0].Transforms) != 1 || len(in[0].Transforms) != 3 {
		t.Fatalf("got %v, input changed: %v", out, in)
	}
	sel, ok := selectProposal([][]wire.Transform{{gcm256}}, out, wire.ProtoESP, PreferLocal, espAcceptable)
	if !ok || len(sel.transforms) != 1 {
		t.Fatal("no match after stripping KE")
	}
}
