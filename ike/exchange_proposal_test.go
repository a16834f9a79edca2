package ike

import (
	"encoding/binary"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func tr(t wire.TransformType, id uint16, bits uint16) wire.Transform {
	return wire.Transform{Type: t, ID: id, KeyLength: bits}
}

var (
	gcm256  = tr(wire.TransformENCR, uint16(wire.EncrAES_GCM_16), 256)
	gcm128  = tr(wire.TransformENCR, uint16(wire.EncrAES_GCM_16), 128)
	cbc256  = tr(wire.TransformENCR, uint16(wire.EncrAES_CBC), 256)
	chacha  = tr(wire.TransformENCR, uint16(wire.EncrCHACHA20_POLY1305), 0)
	prf256  = tr(wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_256), 0)
	prf384  = tr(wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_384), 0)
	hmac256 = tr(wire.TransformINTEG, uint16(wire.IntegHMAC_SHA2_256_128), 0)
	x25519  = tr(wire.TransformKE, uint16(wire.KECurve25519), 0)
	ecp256  = tr(wire.TransformKE, uint16(wire.KEECP256), 0)
	ecp384  = tr(wire.TransformKE, uint16(wire.KEECP384), 0)
	modp2k  = tr(wire.TransformKE, uint16(wire.KEMODP2048), 0)
)

// chosenIKE returns the transforms B chose in its IKE_SA_INIT response.
func chosenIKE(t *testing.T, d Datagram) []wire.Transform {
	t.Helper()
	_, ps := outerPayloads(t, d)
	sa, _ := wire.Find(ps, wire.PayloadSA).(*wire.SA)
	if sa == nil || len(sa.Proposals) != 1 {
		t.Fatalf("response has no single-proposal SA: %v", ps)
	}
	return peerTransforms(&sa.Proposals[0])
}

// TestProposalSelection: several proposals, each with several ORed
// transforms per type (RFC 7296 §2.7, §3.3.6); the responder's policy decides
// whose order wins.
//
//	A: SA{ P1: ENCR(chacha|gcm128) PRF(384|256) KE(ecp256|x25519),
//	       P2: ENCR(cbc256) PRF(256) INTEG(hmac256) KE(x25519) }  -->
//	B: P1: ENCR(gcm256|gcm128|chacha) PRF(256|384) KE(x25519|ecp256)
//	B (PreferLocal):  <--  SA{P1: gcm128 prf256 ecp256}
//	B (PreferPeer):   <--  SA{P1: chacha prf384 ecp256}
//
// With PreferLocal B's own first KE choice is x25519, but A's KE payload is
// ecp256, which the selected proposal also allows: B takes it rather than
// costing a round trip with INVALID_KE_PAYLOAD (RFC 7296 §1.2).
func TestProposalSelection(t *testing.T) {
	aProps := [][]wire.Transform{
		{chacha, gcm128, prf384, prf256, ecp256, x25519},
		{cbc256, prf256, hmac256, x25519},
	}
	bProps := [][]wire.Transform{
		{gcm256, gcm128, chacha, prf256, prf384, x25519, ecp256},
		{cbc256, prf256, hmac256, x25519},
	}
	for _, tc := range []struct {
		name   string
		policy ProposalPolicy
		want   []wire.Transform
	}{
		{"prefer-local", PreferLocal, []wire.Transform{gcm128, prf256, ecp256}},
		{"prefer-peer", PreferPeer, []wire.Transform{chacha, prf384, ecp256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := pskConn("gw", addrA, addrB, "k")
			ca.Proposals = aProps
			cb := mirror(ca)
			cb.Proposals, cb.Policy = bProps, tc.policy
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			_, req := p.initiate("gw")
			resp := p.exchange(p.b, req)
			got := chosenIKE(t, resp)
			if len(got) != len(tc.want) {
				t.Fatalf("chose %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("chose %v, want %v", got, tc.want)
				}
			}
			auth := p.deliver(p.a, resp)
			if len(auth.Datagrams) != 1 {
				t.Fatal("no IKE_AUTH after IKE_SA_INIT")
			}
		})
	}
}

// TestNoProposalChosen:
//
//	A: SA{cbc256 prf256 hmac256 modp2048}, KE(modp2048)  -->
//	B (only AEAD, x25519):                               <--  N(NO_PROPOSAL_CHOSEN)
//
// B keeps no state; A gives up with an IKE down event.
func TestNoProposalChosen(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Proposals = [][]wire.Transform{{cbc256, prf256, hmac256, modp2k}}
	cb := mirror(ca)
	cb.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	m, ps := outerPayloads(t, resp)
	if len(ps) != 1 || !hasNotify(ps, wire.NO_PROPOSAL_CHOSEN) || m.Header.SPIr != 0 {
		t.Fatalf("want lone N(NO_PROPOSAL_CHOSEN) with SPIr 0, got %v %+v", ps, m.Header)
	}
	if p.b.ep.Len() != 0 || p.b.ep.HalfOpen() != 0 {
		t.Fatal("responder kept state after NO_PROPOSAL_CHOSEN")
	}
	out := p.deliver(p.a, resp)
	if p.a.ep.SA(spi) != nil || len(events(out, EventIKEDown)) != 1 || events(out, EventIKEDown)[0].Reason != "NO_PROPOSAL_CHOSEN" {
		t.Fatalf("initiator did not give up cleanly: %+v", out.Events)
	}
}

// TestInvalidKE: the responder wants another group (RFC 7296 §1.2).
//
//	A: SA{gcm256 prf256 KE(ecp256|x25519)}, KEi(ecp256)  -->
//	B (accepts only x25519):                             <--  N(INVALID_KE_PAYLOAD, 31)
//	A: SA{...}, KEi(x25519), same SPIi, MID 0             -->
//	B:                                                   <--  SA{x25519}, KEr(x25519)
//	... IKE_AUTH completes.
//
// Run both ways round: each endpoint takes the initiator and the responder
// role once.
func TestInvalidKE(t *testing.T) {
	for _, swap := range []bool{false, true} {
		ca := pskConn("gw", addrA, addrB, "k")
		ca.Proposals = [][]wire.Transform{{gcm256, prf256, ecp256, x25519}}
		cb := mirror(ca)
		cb.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
		if swap {
			ca, cb = cb, ca
			ca.Proposals = [][]wire.Transform{{gcm256, prf256, ecp256, x25519}}
			cb.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
		}
		p := newPair(t, []*Connection{ca}, []*Connection{cb})
		p.a.addr, p.b.addr = ca.Local, ca.Remote
		spi, req := p.initiate("gw")
		resp := p.exchange(p.b, req)
		_, ps := outerPayloads(t, resp)
		n := wire.FindNotify(ps, wire.INVALID_KE_PAYLOAD)
		if n == nil || binary.BigEndian.Uint16(n.Data) != uint16(wire.KECurve25519) {
			t.Fatalf("want INVALID_KE_PAYLOAD(x25519), got %v", ps)
		}
		if p.b.ep.Len() != 0 {
			t.Fatal("responder kept state for INVALID_KE")
		}
		retry := p.exchange(p.a, resp)
		m, ps := outerPayloads(t, retry)
		ke, _ := wire.Find(ps, wire.PayloadKE).(*wire.KE)
		if m.Header.MessageID != 0 || m.Header.SPIi != spi || ke == nil || ke.Group != wire.KECurve25519 {
			t.Fatalf("bad retry: %+v %v", m.Header, ps)
		}
		resp = p.exchange(p.b, retry)
		auth := p.exchange(p.a, resp)
		authResp := p.exchange(p.b, auth)
		out := p.deliver(p.a, authResp)
		if len(events(out, EventIKEUp)) != 1 || p.a.ep.Stats().KERetries != 1 {
			t.Fatalf("not established after INVALID_KE retry: %+v", out.Events)
		}
	}
}

// TestInvalidKEHostile: an INVALID_KE_PAYLOAD naming a group A never
// proposed ends the attempt instead of looping.
//
//	A: SA{KE(x25519)}, KEi(x25519)  -->
//	(forged)                        <--  N(INVALID_KE_PAYLOAD, MODP_2048)
//	A gives up: IKE down, no retry sent.
func TestInvalidKEHostile(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
	p := newPair(t, []*Connection{ca}, nil)
	spi, req := p.initiate("gw")
	forged := wire.Message{Header: wire.Header{SPIi: spi, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagResponse}}
	forged.Payloads = []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_KE_PAYLOAD, Data: []byte{0, 14}}}
	b, err := forged.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := p.deliver(p.a, Datagram{Src: req.Dst, Dst: req.Src, Data: b})
	if len(out.Datagrams) != 0 || p.a.ep.SA(spi) != nil || len(events(out, EventIKEDown)) != 1 {
		t.Fatalf("initiator did not give up: %d datagrams, events %+v", len(out.Datagrams), out.Events)
	}
}
