package ike

import (
	"bytes"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// Exchange tests for CREATE_CHILD_SA (RFC 7296 §1.3.1) and Child SA deletes
// (§1.4.1) on an established IKE SA.

// twoChildConn is a connection with a second child "gw-web".
func twoChildConn(props [][]wire.Transform) *Connection {
	c := pskConn("gw", addrA, addrB, "k")
	c.Children = append(c.Children, ChildConfig{Name: "gw-web",
		LocalTS: []TrafficSelector{pfx("10.3.0.0/16")}, RemoteTS: []TrafficSelector{pfx("10.4.0.0/16")},
		Proposals: props})
	return c
}

// keysMatch checks that two installs are the two ends of one pair.
func keysMatch(t *testing.T, a, b ChildOp) {
	t.Helper()
	if a.InSPI != b.OutSPI || a.OutSPI != b.InSPI {
		t.Fatalf("SPIs do not pair: A in %08x out %08x, B in %08x out %08x", a.InSPI, a.OutSPI, b.InSPI, b.OutSPI)
	}
	if !bytes.Equal(a.EncrOut, b.EncrIn) || !bytes.Equal(a.EncrIn, b.EncrOut) || len(a.EncrOut) == 0 {
		t.Fatal("keys do not pair")
	}
}

// TestCreateChildNoPFS: the initiator asks for its second child after
// IKE_AUTH, without a key exchange.
//
//	A: HDR, SK{IDi, AUTH, SA, TSi, TSr}               -->  (first child)
//	                                                  <--  HDR, SK{IDr, AUTH, SA, TSi, TSr}
//	A: CREATE_CHILD_SA HDR(mid 2), SK{SA, Ni, TSi, TSr} -->
//	                                                  <--  HDR, SK{SA, Nr, TSi, TSr}
func TestCreateChildNoPFS(t *testing.T) {
	ca := twoChildConn(nil)
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, aout, _ := p.establish("gw")
	if len(aout.Datagrams) != 1 {
		t.Fatalf("A sent %d datagrams after IKE_AUTH, want the CREATE_CHILD_SA", len(aout.Datagrams))
	}
	req := aout.Datagrams[0]
	m, _ := outerPayloads(t, req)
	if m.Header.Exchange != wire.CREATE_CHILD_SA || m.Header.MessageID != 2 {
		t.Fatalf("got %v mid %d", m.Header.Exchange, m.Header.MessageID)
	}
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(asa.spiR)
	if inner := innerOf(t, bsa, req); wire.Find(inner, wire.PayloadKE) != nil || wire.Find(inner, wire.PayloadNonce) == nil {
		t.Fatal("want Ni and no KE without PFS")
	}
	bout := p.deliver(p.b, req)
	bi := ops(bout, OpInstall)
	if len(bi) != 1 || bi[0].Name != "gw-web" || len(bout.Datagrams) != 1 {
		t.Fatalf("B installs %+v", bout.Events)
	}
	bi0 := bi[0]
	aout = p.deliver(p.a, bout.Datagrams[0])
	ai := ops(aout, OpInstall)
	if len(ai) != 1 || ai[0].Name != "gw-web" {
		t.Fatalf("A installs %+v", aout.Events)
	}
	keysMatch(t, ai[0], bi0)
	if ai[0].LocalTS[0] != pfx("10.3.0.0/16") || ai[0].RemoteTS[0] != pfx("10.4.0.0/16") {
		t.Errorf("A's TS %v %v", ai[0].LocalTS, ai[0].RemoteTS)
	}
	if n := len(asa.Children()); n != 2 {
		t.Fatalf("A has %d children", n)
	}
}

// TestCreateChildPFSInvalidKE: the child proposes PFS with ECP-256 first;
// B accepts only Curve25519 and asks for it. A sends the exchange again
// with the next message ID (RFC 7296 §1.3).
//
//	A: CREATE_CHILD_SA mid 2 SK{SA(..ecp256|x25519), Ni, KEi(ecp256), TSi, TSr}  -->
//	                                  <--  SK{N(INVALID_KE_PAYLOAD, x25519)}
//	A: CREATE_CHILD_SA mid 3 SK{SA, Ni', KEi(x25519), TSi, TSr}  -->
//	                                  <--  SK{SA, Nr, KEr(x25519), TSi, TSr}
func TestCreateChildPFSInvalidKE(t *testing.T) {
	esn := tr(wire.TransformESN, 0, 0)
	ca := twoChildConn([][]wire.Transform{{gcm256, ecp256, esn}, {gcm256, x25519, esn}})
	cb := mirror(ca)
	cb.Children[1].Proposals = [][]wire.Transform{{gcm256, x25519, esn}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, aout, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(asa.spiR)
	req := p.one(aout)
	ke, _ := wire.Find(innerOf(t, bsa, req), wire.PayloadKE).(*wire.KE)
	if ke == nil || ke.Group != wire.KEECP256 {
		t.Fatalf("first KE %+v", ke)
	}
	resp := p.exchange(p.b, req)
	n := wire.FindNotify(innerOf(t, asa, resp), wire.INVALID_KE_PAYLOAD)
	if g, ok := n.InvalidKEGroup(); n == nil || !ok || g != wire.KECurve25519 {
		t.Fatalf("B's answer %+v", n)
	}
	if len(p.b.ep.SA(asa.spiR).Children()) != 1 {
		t.Fatal("B installed on INVALID_KE_PAYLOAD")
	}
	req2 := p.exchange(p.a, resp)
	m, _ := outerPayloads(t, req2)
	ke, _ = wire.Find(innerOf(t, bsa, req2), wire.PayloadKE).(*wire.KE)
	if m.Header.MessageID != 3 || ke == nil || ke.Group != wire.KECurve25519 {
		t.Fatalf("retry mid %d KE %+v", m.Header.MessageID, ke)
	}
	bout := p.deliver(p.b, req2)
	bi := ops(bout, OpInstall)
	if len(bi) != 1 || wire.Find(innerOf(t, asa, bout.Datagrams[0]), wire.PayloadKE) == nil {
		t.Fatal("B did not answer with KEr")
	}
	bi0 := bi[0]
	aout = p.deliver(p.a, bout.Datagrams[0])
	ai := ops(aout, OpInstall)
	if len(ai) != 1 {
		t.Fatalf("A: %+v", aout.Events)
	}
	keysMatch(t, ai[0], bi0)
	if p.a.ep.Stats().KERetries != 1 {
		t.Error("KE retry not counted")
	}
}

// TestCreateChildPFSFirstGuess: both accept ECP-256, so the first
// CREATE_CHILD_SA succeeds with a fresh shared secret; its keys differ
// from a no-PFS derivation.
func TestCreateChildPFSFirstGuess(t *testing.T) {
	esn := tr(wire.TransformESN, 0, 0)
	ca := twoChildConn([][]wire.Transform{{gcm256, ecp256, esn}})
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	_, aout, _ := p.establish("gw")
	bout := p.deliver(p.b, p.one(aout))
	bi := ops(bout, OpInstall)
	if len(bi) != 1 {
		t.Fatalf("B: %+v", bout.Events)
	}
	bi0 := bi[0]
	aout = p.deliver(p.a, p.one(bout))
	if ai := ops(aout, OpInstall); len(ai) != 1 {
		t.Fatalf("A: %+v", aout.Events)
	} else {
		keysMatch(t, ai[0], bi0)
	}
}

// TestCreateChildRefused: B's second child's selectors do not overlap:
// TS_UNACCEPTABLE, the IKE SA and the first child stay.
//
//	A: CREATE_CHILD_SA SK{SA, Ni, TSi, TSr}  -->
//	                                        <--  SK{N(TS_UNACCEPTABLE)}
func TestCreateChildRefused(t *testing.T) {
	ca := twoChildConn(nil)
	cb := mirror(ca)
	cb.Children[1].RemoteTS = []TrafficSelector{pfx("172.16.0.0/12")}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, aout, _ := p.establish("gw")
	aout = p.deliver(p.a, p.exchange(p.b, p.one(aout)))
	f := events(aout, EventChildFailed)
	if len(f) != 1 || f[0].Reason != "TS_UNACCEPTABLE" || !p.a.ep.SA(spi).Established() {
		t.Fatalf("events %+v", aout.Events)
	}
	if len(p.a.ep.SA(spi).Children()) != 1 {
		t.Fatal("first child lost")
	}
}
