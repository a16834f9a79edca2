package ike

import (
	"bytes"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/wire"
)

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// TestKeyLogHook: both sides hand their keys to the key log hook; the IKE
// lines agree and decrypt the IKE_AUTH messages, and the ESP lines carry
// the Child SA keys that were installed.
func TestKeyLogHook(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	var aIKE, aESP, bIKE, bESP bytes.Buffer
	p.a.ep.cfg.KeyLog = keylog.NewWriter(nopCloser{&aIKE}, nopCloser{&aESP})
	p.b.ep.cfg.KeyLog = keylog.NewWriter(nopCloser{&bIKE}, nopCloser{&bESP})
	spi, aout, _ := p.establish("gw")
	if aIKE.Len() == 0 || aIKE.String() != bIKE.String() {
		t.Fatalf("IKE key log lines differ:\nA %sB %s", aIKE.String(), bIKE.String())
	}
	sas, err := keylog.ParseIKETable(strings.NewReader(aIKE.String()))
	if err != nil || len(sas) != 1 {
		t.Fatalf("parse: %v %d", err, len(sas))
	}
	asa := p.a.ep.SA(spi)
	if sas[0].SPIi != asa.spiI || sas[0].SPIr != asa.spiR || sas[0].Encr != wire.EncrAES_GCM_16 || len(sas[0].SKei) != 36 {
		t.Fatalf("IKE line %+v", sas[0])
	}
	if n := strings.Count(aESP.String(), "\n"); n != 2 || strings.Count(bESP.String(), "\n") != 2 {
		t.Fatalf("want 2 ESP lines per side:\n%s", aESP.String())
	}
	op := ops(aout, OpInstall)[0]
	if !strings.Contains(strings.ToLower(aESP.String()), strings.ToLower(hexs(op.EncrOut))) {
		t.Error("ESP key log lacks the outbound key")
	}
}

func hexs(b []byte) string {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, h[c>>4], h[c&15])
	}
	return string(out)
}

// TestSecretsZeroedOnDestroy: when an SA dies its keys are wiped.
func TestSecretsZeroedOnDestroy(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	sa := p.a.ep.SA(spi)
	skd := sa.skd
	if len(skd) == 0 || bytes.Count(skd, []byte{0}) == len(skd) {
		t.Fatal("no SK_d to check")
	}
	var out Output
	p.a.ep.Close(&out)
	if bytes.Count(skd, []byte{0}) != len(skd) || sa.prot != nil || p.a.ep.Len() != 0 {
		t.Fatal("SK_d not zeroed or SA kept")
	}
	if len(events(&out, EventIKEDown)) != 1 || len(ops(&out, OpDelete)) != 1 {
		t.Fatalf("shutdown events %+v", out.Events)
	}
}

// TestDeleteAnsweredWithInvalidSPI: our delete's response was lost and the
// peer, which already removed the SA, answers the retransmission with
// INVALID_IKE_SPI (RFC 7296 §2.21.4): the delete is complete.
//
//	A: SK{D(IKE)}          -->
//	                       <--  SK{}            (lost; B removed the SA)
//	A: SK{D(IKE)} (again)  -->
//	                       <--  N(INVALID_IKE_SPI), unprotected
func TestDeleteAnsweredWithInvalidSPI(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	p.b.ep.cfg.InvalidSPIRate = 1000
	spi, _, _ := p.establish("gw")
	p.a.out.Reset()
	p.a.ep.Terminate(p.now, spi, &p.a.out)
	del := p.one(&p.a.out)
	p.deliver(p.b, del) // response lost
	p.now = p.now.Add(4e9)
	p.a.out.Reset()
	p.a.ep.Tick(p.now, &p.a.out)
	again := p.one(&p.a.out)
	inv := p.exchange(p.b, again)
	if _, ps := outerPayloads(t, inv); !hasNotify(ps, wire.INVALID_IKE_SPI) {
		t.Fatalf("want INVALID_IKE_SPI, got %v", ps)
	}
	out := p.deliver(p.a, inv)
	if p.a.ep.Len() != 0 || len(events(out, EventIKEDown)) != 1 {
		t.Fatal("delete not completed by INVALID_IKE_SPI")
	}
}
