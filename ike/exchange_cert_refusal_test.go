package ike

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// TestCertRefusals: B refuses A's certificate authentication for every
// reason package cert knows; each ends the same way on the wire and with
// one precise line in B's log (RFC 7296 §2.21.2: the notification says
// nothing about which part failed).
//
//	A: HDR, SK{IDi, CERT(A), CERT(inter), CERTREQ, AUTH, SAi2, TSi, TSr}  -->
//	B (refuses):                                <--  HDR, SK{N(AUTHENTICATION_FAILED)}
//	A: IKE SA down (AUTHENTICATION_FAILED); B kept nothing.
func TestCertRefusals(t *testing.T) {
	pki := newCertPKI(t, "test")
	other := newCertPKI(t, "other")
	anchors := []*x509.Certificate{pki.root.Cert}
	good := func() *cert.Credential { return pki.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256) }
	revokedLeaf := func(crl, ocsp bool) *cert.Credential {
		tm := gwTemplate("a.example.net")
		if crl {
			tm.CRLURLs = []string{crlURL}
		}
		if ocsp {
			tm.OCSPURLs = []string{ocspURL}
		}
		c := pki.leaf(t, tm, cert.KeyECDSAP256)
		pki.revoke(c.Cert)
		return c
	}
	for _, tc := range []struct {
		name string
		a    certSide // A's credential; its verification side is B's anchors
		b    func(*certSide)
		aID  Identity
		want string // the log line's reason and detail
	}{
		{name: "untrusted CA", a: certSide{cred: other.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256)},
			want: "cert: untrusted CA"},
		{name: "expired", a: certSide{cred: pki.leaf(t, expiredTemplate("a.example.net"), cert.KeyECDSAP256)},
			want: "cert: certificate expired"},
		{name: "revoked by CRL", a: certSide{cred: revokedLeaf(true, false)},
			b: func(s *certSide) { s.revoke = pki }, want: "cert: revoked (CRL)"},
		{name: "revoked by OCSP", a: certSide{cred: revokedLeaf(false, true)},
			b: func(s *certSide) { s.revoke = pki }, want: "cert: revoked (OCSP)"},
		{name: "revocation unreachable, strict", a: certSide{cred: good()},
			b: func(s *certSide) { s.revoke = pki }, want: "cert: revocation status unavailable"},
		{name: "identity not in certificate", a: certSide{cred: good()}, aID: IDFQDN("evil.example.net"),
			want: "cert: identity not in certificate"},
		{name: "wrong key usage", a: certSide{cred: pki.leaf(t, cert.Template{CN: "a.example.net", DNS: []string{"a.example.net"},
			KeyUsage: x509.KeyUsageKeyEncipherment}, cert.KeyECDSAP256)},
			want: "cert: wrong key usage: keyUsage lacks digitalSignature"},
		{name: "wrong extended key usage", a: certSide{cred: pki.leaf(t, cert.Template{CN: "a.example.net", DNS: []string{"a.example.net"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}, cert.KeyECDSAP256)},
			b:    func(s *certSide) { s.ekus = []cert.EKU{cert.EKUIPsecIKE, cert.EKUServerAuth, cert.EKUClientAuth} },
			want: "cert: wrong key usage: extendedKeyUsage has none of"},
		{name: "unsupported hash", a: certSide{cred: good()},
			b:    func(s *certSide) { s.policy = &cert.Policy{Schemes: []cert.Scheme{cert.SchemeECDSASHA384}} },
			want: "cert: unsupported hash: signature scheme ECDSA-SHA256 not accepted"},
		{name: "method not accepted", a: certSide{cred: good()},
			b:    func(s *certSide) { s.policy = &cert.Policy{Methods: []wire.AuthMethod{wire.AuthECDSA384}} },
			want: "cert: authentication method not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			a.anchors = anchors
			b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors}
			if tc.b != nil {
				tc.b(&b)
			}
			ca, cb := certConns(a, b)
			if !tc.aID.IsAny() {
				ca.LocalAuth = &claimingAuth{cred: a.cred, claim: tc.aID}
			}
			if tc.name == "revocation unreachable, strict" {
				// The leaf names a CRL distribution point no one serves.
				tm := gwTemplate("a.example.net")
				tm.CRLURLs = []string{"http://ca.test/missing.crl"}
				ca.LocalAuth = certSide{cred: pki.leaf(t, tm, cert.KeyECDSAP256), anchors: anchors}.local()
			}
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			log := logTo(p.b)
			spi, req := p.initiate("gw")
			resp := p.exchange(p.b, req)
			bout := p.deliver(p.b, p.exchange(p.a, resp))
			if len(bout.Datagrams) != 1 || len(bout.Events) != 0 || len(bout.Ops) != 0 {
				t.Fatalf("responder: %d datagrams, events %+v", len(bout.Datagrams), bout.Events)
			}
			inner := innerOf(t, p.a.ep.SA(spi), bout.Datagrams[0])
			if len(inner) != 1 || !hasNotify(inner, wire.AUTHENTICATION_FAILED) || len(wire.FindNotify(inner, wire.AUTHENTICATION_FAILED).Data) != 0 {
				t.Fatalf("want lone N(AUTHENTICATION_FAILED), got %v", inner)
			}
			if n := linesWith(log, tc.want); n != 1 {
				t.Errorf("want one log line with %q, got %d:\n%s", tc.want, n, log)
			}
			if n := linesWith(log, "cert: "); n != 1 {
				t.Errorf("want one refusal line, got %d:\n%s", n, log)
			}
			if p.b.ep.Len() != 0 {
				t.Error("responder kept the SA")
			}
			aout := p.deliver(p.a, bout.Datagrams[0])
			if ev := events(aout, EventIKEDown); len(ev) != 1 || ev[0].Reason != "AUTHENTICATION_FAILED" || p.a.ep.Len() != 0 {
				t.Fatalf("initiator: %+v", aout.Events)
			}
		})
	}
}

// TestCertRefusalByInitiator: A refuses B's certificate (issued by a CA A
// does not trust) after B has accepted A, and tells B in an INFORMATIONAL
// (RFC 7296 §2.21.2).
//
//	A: HDR, SK{IDi, CERT, CERT, CERTREQ, AUTH, ...}           -->
//	B:                       <--  HDR, SK{IDr, CERT(other CA), CERT, AUTH, ...}
//	A (refuses): HDR(INFORMATIONAL), SK{N(AUTHENTICATION_FAILED)}  -->
//	B drops the SA it had accepted.
func TestCertRefusalByInitiator(t *testing.T) {
	pki, other := newCertPKI(t, "test"), newCertPKI(t, "other")
	a := certSide{cred: pki.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256), anchors: []*x509.Certificate{pki.root.Cert}}
	b := certSide{cred: other.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256),
		anchors: []*x509.Certificate{pki.root.Cert, other.root.Cert}}
	ca, cb := certConns(a, b)
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	log := logTo(p.a)
	_, aout, bout := p.establish("gw")
	if len(events(bout, EventIKEUp)) != 1 {
		t.Fatal("responder should be up (it cannot know)")
	}
	if ev := events(aout, EventIKEDown); len(ev) != 1 || ev[0].Reason != "AUTHENTICATION_FAILED" {
		t.Fatalf("initiator accepted an untrusted certificate: %+v", aout.Events)
	}
	if n := linesWith(log, "cert: untrusted CA"); n != 1 || !strings.Contains(log.String(), "CN=b.example.net") {
		t.Errorf("initiator log:\n%s", log)
	}
	if len(aout.Datagrams) != 1 {
		t.Fatalf("initiator sent %d datagrams", len(aout.Datagrams))
	}
	bout = p.deliver(p.b, aout.Datagrams[0])
	if ev := events(bout, EventIKEDown); len(ev) != 1 || ev[0].Reason != "AUTHENTICATION_FAILED" || p.b.ep.Len() != 0 {
		t.Fatalf("responder kept the refused SA: %+v", bout.Events)
	}
}

// TestCertNoCredential: B has no certificate for the identity A asks for
// in IDr; it answers AUTHENTICATION_FAILED and says why in its log.
//
//	A: HDR, SK{IDi, CERT, CERT, CERTREQ, IDr=other.example.net, AUTH, ...}  -->
//	B (no such credential):              <--  HDR, SK{N(AUTHENTICATION_FAILED)}
func TestCertNoCredential(t *testing.T) {
	pki := newCertPKI(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	a := certSide{cred: pki.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256), anchors: anchors}
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors}
	ca, cb := certConns(a, b)
	ca.RemoteID, ca.SendIDr = IDFQDN("other.example.net"), true
	cb.LocalID = IDFQDN("other.example.net")
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	log := logTo(p.b)
	spi, req := p.initiate("gw")
	bout := p.deliver(p.b, p.exchange(p.a, p.exchange(p.b, req)))
	if len(bout.Datagrams) != 1 || !hasNotify(innerOf(t, p.a.ep.SA(spi), bout.Datagrams[0]), wire.AUTHENTICATION_FAILED) {
		t.Fatal("want N(AUTHENTICATION_FAILED)")
	}
	if n := linesWith(log, "cert: no certificate: no local certificate carries identity other.example.net"); n != 1 {
		t.Errorf("responder log:\n%s", log)
	}
}

// TestCertRevocationLenient: A's certificate names a CRL no one serves.
// Under the lenient policy B accepts it and logs one warning; the strict
// policy refuses it (TestCertRefusals, "revocation unreachable, strict").
//
//	A: HDR, SK{IDi, CERT(A: CRL http://ca.test/missing.crl), CERT, CERTREQ, AUTH, ...}  -->
//	B: fetch fails, lenient               <--  HDR, SK{IDr, CERT, CERT, AUTH, ...}
func TestCertRevocationLenient(t *testing.T) {
	pki := newCertPKI(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	tm := gwTemplate("a.example.net")
	tm.CRLURLs = []string{"http://ca.test/missing.crl"}
	a := certSide{cred: pki.leaf(t, tm, cert.KeyECDSAP256), anchors: anchors}
	var warn bytes.Buffer
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors,
		revoke: pki, lenient: true, revokeLog: slog.New(slog.NewTextHandler(&warn, nil))}
	ca, cb := certConns(a, b)
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, bout := p.establish("gw")
	if len(events(bout, EventIKEUp)) != 1 || len(events(aout, EventIKEUp)) != 1 {
		t.Fatalf("A %+v, B %+v", aout.Events, bout.Events)
	}
	if n := linesWith(&warn, "level=WARN"); n < 1 || !strings.Contains(warn.String(), "CN=a.example.net") {
		t.Errorf("want a warning about A's certificate:\n%s", warn.String())
	}
}
