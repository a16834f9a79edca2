package ike

import (
	"bytes"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestHandshakePSK drives a full IKE_SA_INIT + IKE_AUTH with a first Child
// SA:
//
//	A (initiator)                          B (responder)
//	HDR, SA, KEi, Ni, N(NAT_D)x2,
//	  N(FRAG_SUP), N(SIG_HASH)       -->
//	                                 <--   HDR, SA, KEr, Nr, N(NAT_D)x2,
//	                                         N(FRAG_SUP), N(SIG_HASH)
//	HDR, SK{IDi, AUTH, SAi2,
//	  TSi, TSr}                      -->
//	                                 <--   HDR, SK{IDr, AUTH, SAr2, TSi, TSr}
func TestHandshakePSK(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "s3cret")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})

	spi, req := p.initiate("gw")
	m, ps := outerPayloads(t, req)
	if m.Header.Exchange != wire.IKE_SA_INIT || m.Header.MessageID != 0 || !m.Header.Flags.Initiator() || m.Header.SPIr != 0 {
		t.Fatalf("bad IKE_SA_INIT header %+v", m.Header)
	}
	for _, n := range []wire.NotifyType{wire.NAT_DETECTION_SOURCE_IP, wire.NAT_DETECTION_DESTINATION_IP,
		wire.IKEV2_FRAGMENTATION_SUPPORTED, wire.SIGNATURE_HASH_ALGORITHMS} {
		if !hasNotify(ps, n) {
			t.Errorf("IKE_SA_INIT request lacks %v", n)
		}
	}
	resp := p.exchange(p.b, req)
	if p.b.ep.HalfOpen() != 1 {
		t.Fatalf("responder half-open = %d", p.b.ep.HalfOpen())
	}
	m, ps = outerPayloads(t, resp)
	if !m.Header.IsResponse() || m.Header.SPIr == 0 || wire.Find(ps, wire.PayloadKE) == nil {
		t.Fatalf("bad IKE_SA_INIT response %+v", m.Header)
	}
	if !hasNotify(ps, wire.IKEV2_FRAGMENTATION_SUPPORTED) {
		t.Error("responder did not echo fragmentation support")
	}
	auth := p.exchange(p.a, resp)
	m, _ = outerPayloads(t, auth)
	if m.Header.Exchange != wire.IKE_AUTH || m.Header.MessageID != 1 || m.Encrypted() == nil {
		t.Fatalf("bad IKE_AUTH request %+v", m.Header)
	}
	bOut := p.deliver(p.b, auth)
	if len(bOut.Datagrams) != 1 {
		t.Fatalf("responder sent %d datagrams", len(bOut.Datagrams))
	}
	if len(events(bOut, EventIKEUp)) != 1 || len(events(bOut, EventChildUp)) != 1 {
		t.Fatalf("responder events %+v", bOut.Events)
	}
	bInstall := ops(bOut, OpInstall)
	authResp := bOut.Datagrams[0]
	aOut := p.deliver(p.a, authResp)
	if len(events(aOut, EventIKEUp)) != 1 || len(events(aOut, EventChildUp)) != 1 {
		t.Fatalf("initiator events %+v", aOut.Events)
	}
	aInstall := ops(aOut, OpInstall)
	if len(aInstall) != 1 || len(bInstall) != 1 {
		t.Fatalf("installs: A %d, B %d", len(aInstall), len(bInstall))
	}
	ai, bi := aInstall[0], bInstall[0]
	if ai.InSPI != bi.OutSPI || ai.OutSPI != bi.InSPI {
		t.Errorf("SPIs do not pair: A in %x out %x, B in %x out %x", ai.InSPI, ai.OutSPI, bi.InSPI, bi.OutSPI)
	}
	if !bytes.Equal(ai.EncrOut, bi.EncrIn) || !bytes.Equal(ai.EncrIn, bi.EncrOut) || bytes.Equal(ai.EncrIn, ai.EncrOut) {
		t.Error("Child SA keys do not pair up")
	}
	if ai.Encr != wire.EncrAES_GCM_16 || ai.EncrKeyBits != 256 || ai.Mode != ModeTunnel || ai.ESN || ai.UDPEncap {
		t.Errorf("unexpected child parameters %+v", ai)
	}
	if got := ai.LocalTS[0].String(); got != "10.1.0.0-10.1.255.255" {
		t.Errorf("A local TS %s", got)
	}
	sa := p.a.ep.SA(spi)
	if sa == nil || !sa.Established() || sa.tm.inFlight() {
		t.Fatal("initiator SA not established")
	}
	if p.b.ep.HalfOpen() != 0 || p.b.ep.Len() != 1 {
		t.Errorf("responder half-open %d, SAs %d", p.b.ep.HalfOpen(), p.b.ep.Len())
	}
	if sa.ni != nil || sa.initReq != nil || sa.skpi != nil {
		t.Error("initiator kept IKE_AUTH-only material")
	}
	if encr, prf, integ, ke := sa.Algorithms(); encr != gcm256 || prf != prf256 || integ != (wire.Transform{}) || ke != wire.KECurve25519 {
		t.Errorf("algorithms %v %v %v %v", encr, prf, integ, ke)
	}
	if !sa.Initiator() || sa.LocalSPI() != spi {
		t.Error("role or local SPI")
	}
	if !sa.PeerSignatureHash(wire.HashSHA2_256) || sa.PeerSignatureHash(wire.HashSHA1) || !sa.peerFrag {
		t.Error("SIGNATURE_HASH_ALGORITHMS / fragmentation support not recorded")
	}
	if _, ok := p.a.ep.NextDeadline(); ok {
		t.Error("initiator still has a timer armed")
	}
}
