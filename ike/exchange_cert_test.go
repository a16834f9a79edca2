package ike

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// TestCertAuthMethod14: both sides prove with certificates issued under an
// intermediate CA, for every key type, with RFC 7427 signatures.
//
//	A: HDR, SAi1, KEi, Ni, N(SIGNATURE_HASH_ALGORITHMS)            -->
//	B:                     <--  HDR, SAr1, KEr, Nr, N(SIGNATURE_HASH_ALGORITHMS), CERTREQ(root)
//	A: HDR, SK{IDi=DN(A), CERT(A), CERT(inter), CERTREQ(root),
//	           AUTH(14: scheme), SAi2, TSi, TSr}                    -->
//	B:      <--  HDR, SK{IDr=DN(B), CERT(B), CERT(inter), AUTH(14: scheme), SAr2, TSi, TSr}
//
// Each side records how the other authenticated, with the certificate's
// subject and issuer, for the session listing.
func TestCertAuthMethod14(t *testing.T) {
	pki := newCertPKI(t, "test")
	for _, tc := range []struct {
		name   string
		kt     cert.KeyType
		pss    bool
		scheme string
	}{
		{"ECDSA-P256", cert.KeyECDSAP256, false, "ECDSA-SHA256"},
		{"ECDSA-P384", cert.KeyECDSAP384, false, "ECDSA-SHA384"},
		{"ECDSA-P521", cert.KeyECDSAP521, false, "ECDSA-SHA512"},
		{"RSA-PKCS1", cert.KeyRSA2048, false, "RSA-PKCS1-SHA256"},
		{"RSA-PSS", cert.KeyRSA2048, true, "RSA-PSS-SHA256"},
		{"Ed25519", cert.KeyEd25519, false, "Ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := certSide{cred: pki.leaf(t, gwTemplate("a.example.net"), tc.kt), anchors: []*x509.Certificate{pki.root.Cert}}
			b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: a.anchors}
			ca, cb := certConns(a, b)
			ca.LocalAuth.(*CertAuth).Local.RSAPSS = tc.pss
			p := newPair(t, []*Connection{ca}, []*Connection{cb})

			spi, req := p.initiate("gw")
			resp := p.exchange(p.b, req)
			_, outer := outerPayloads(t, resp)
			cr, _ := wire.Find(outer, wire.PayloadCERTREQ).(*wire.CertReq)
			if cr == nil || len(cr.Data) != 20 {
				t.Fatalf("IKE_SA_INIT response lacks CERTREQ(root): %v", outer)
			}
			bsa := p.responderSA(resp)
			authReq := p.exchange(p.a, resp)
			asa := p.a.ep.SA(spi)
			inner := innerOf(t, bsa, authReq)
			if cs := certs(inner); len(cs) != 2 || cs[0].Encoding != wire.CertX509Signature {
				t.Fatalf("IKE_AUTH request carries %d CERT payloads, want leaf and intermediate", len(cs))
			}
			if wire.Find(inner, wire.PayloadCERTREQ) == nil {
				t.Error("initiator sent no CERTREQ in IKE_AUTH")
			}
			if a, _ := wire.Find(inner, wire.PayloadAUTH).(*wire.Auth); a == nil || a.Method != wire.AuthDigitalSignature {
				t.Fatalf("AUTH: %+v", a)
			}
			bout := p.deliver(p.b, authReq)
			if len(events(bout, EventIKEUp)) != 1 || len(bout.Datagrams) != 1 {
				t.Fatalf("responder: %+v", bout.Events)
			}
			aout := p.deliver(p.a, bout.Datagrams[0])
			if len(events(aout, EventIKEUp)) != 1 {
				t.Fatalf("initiator: %+v", aout.Events)
			}
			got := bsa.AuthInfo().Remote
			if got.Method != wire.AuthDigitalSignature || !strings.Contains(got.Detail, tc.scheme) ||
				got.Subject != "CN=a.example.net" || got.Issuer != "CN=test intermediate,O=petrel" {
				t.Errorf("responder saw the initiator as %+v", got)
			}
			if l := asa.AuthInfo().Local; l.Method != wire.AuthDigitalSignature || l.Subject != "CN=a.example.net" {
				t.Errorf("initiator's own side: %+v", l)
			}
			if r := asa.AuthInfo().Remote; r.Subject != "CN=b.example.net" {
				t.Errorf("initiator saw the responder as %+v", r)
			}
			if up := events(bout, EventIKEUp); up[0].PeerID.Type != wire.ID_DER_ASN1_DN || up[0].PeerID.String() != "CN=a.example.net" {
				t.Errorf("claimed identity %v, want the subject DN", up[0].PeerID)
			}
		})
	}
}

// TestCertAuthClassic: a peer that sent no SIGNATURE_HASH_ALGORITHMS gets
// the classic methods (RFC 7296 §3.8, RFC 4754): 1 for RSA, 9/10/11 for
// ECDSA on P-256/384/521. The test takes the notification out of B's
// IKE_SA_INIT response on its way to A (and out of B's copy of what it
// sent, which B signs) and makes B forget A's: an older peer each way.
//
//	A: HDR, SAi1, KEi, Ni, (N(SIGNATURE_HASH_ALGORITHMS) forgotten by B)  -->
//	B:                 <--  HDR, SAr1, KEr, Nr, CERTREQ
//	A: HDR, SK{IDi, CERT, CERT, CERTREQ, AUTH(method 1/9/10/11), ...}  -->
//	B:                 <--  HDR, SK{IDr, CERT, CERT, AUTH(method 1/9/10/11), ...}
func TestCertAuthClassic(t *testing.T) {
	pki := newCertPKI(t, "test")
	for _, tc := range []struct {
		kt   cert.KeyType
		want wire.AuthMethod
	}{
		{cert.KeyECDSAP256, wire.AuthECDSA256},
		{cert.KeyECDSAP384, wire.AuthECDSA384},
		{cert.KeyECDSAP521, wire.AuthECDSA521},
		{cert.KeyRSA2048, wire.AuthRSASignature},
	} {
		t.Run(tc.want.String(), func(t *testing.T) {
			a := certSide{cred: pki.leaf(t, gwTemplate("a.example.net"), tc.kt), anchors: []*x509.Certificate{pki.root.Cert}}
			b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), tc.kt), anchors: a.anchors}
			ca, cb := certConns(a, b)
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			spi, req := p.initiate("gw")
			resp := p.exchange(p.b, req)
			bsa := p.responderSA(resp)
			bsa.peerSigHashes = 0
			resp = withoutNotify(t, resp, wire.SIGNATURE_HASH_ALGORITHMS)
			bsa.initResp = resp.Data
			authReq := p.exchange(p.a, resp)
			asa := p.a.ep.SA(spi)
			if a, _ := wire.Find(innerOf(t, bsa, authReq), wire.PayloadAUTH).(*wire.Auth); a == nil || a.Method != tc.want {
				t.Fatalf("initiator AUTH %+v, want method %v", a, tc.want)
			}
			bout := p.deliver(p.b, authReq)
			if len(events(bout, EventIKEUp)) != 1 {
				t.Fatalf("responder: %+v", bout.Events)
			}
			aout := p.deliver(p.a, bout.Datagrams[0])
			if len(events(aout, EventIKEUp)) != 1 || asa.AuthInfo().Remote.Method != tc.want || bsa.AuthInfo().Remote.Method != tc.want {
				t.Fatalf("initiator: %+v, auth %+v", aout.Events, asa.AuthInfo())
			}
		})
	}
}

// TestCertAsymmetric: PSK one way, a certificate the other (RFC 7296
// §2.15: each side's method is its own), both ways round.
//
//	A: HDR, SK{IDi, AUTH(PSK), ...}                      -->
//	B:                  <--  HDR, SK{IDr, CERT, CERT, AUTH(14), ...}
//
// and the reverse, A proving with its certificate and B with the PSK.
func TestCertAsymmetric(t *testing.T) {
	pki := newCertPKI(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	psk := &PSK{Secret: []byte("asymmetric")}
	for _, certInitiator := range []bool{false, true} {
		name := map[bool]string{false: "PSK initiator, cert responder", true: "cert initiator, PSK responder"}[certInitiator]
		t.Run(name, func(t *testing.T) {
			s := certSide{cred: pki.leaf(t, gwTemplate("gw.example.net"), cert.KeyECDSAP256), anchors: anchors}
			ca := pskConn("gw", addrA, addrB, "unused")
			ca.NoFragmentation = true
			cb := mirror(ca)
			if certInitiator {
				ca.LocalAuth, ca.RemoteAuth = s.local(), psk
				cb.LocalAuth, cb.RemoteAuth = psk, s.remote()
			} else {
				ca.LocalAuth, ca.RemoteAuth = psk, s.remote()
				cb.LocalAuth, cb.RemoteAuth = s.local(), psk
			}
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			spi, aout, bout := p.establish("gw")
			if len(events(aout, EventIKEUp)) != 1 || len(events(bout, EventIKEUp)) != 1 {
				t.Fatalf("A %+v, B %+v", aout.Events, bout.Events)
			}
			info := p.a.ep.SA(spi).AuthInfo()
			wantLocal, wantRemote := wire.AuthSharedKeyMIC, wire.AuthDigitalSignature
			if certInitiator {
				wantLocal, wantRemote = wantRemote, wantLocal
			}
			if info.Local.Method != wantLocal || info.Remote.Method != wantRemote {
				t.Fatalf("initiator's auth info %+v", info)
			}
			if !certInitiator && info.Remote.Subject != "CN=gw.example.net" {
				t.Errorf("responder certificate subject %q", info.Remote.Subject)
			}
		})
	}
}

// TestCertReqSelectsCredential: B holds credentials under two CAs; the
// CERTREQ in A's IKE_AUTH names only the second, and B answers with that
// one (RFC 7296 §3.7).
//
//	A: HDR, SK{IDi, CERT, CERT, CERTREQ(root2), AUTH, ...}      -->
//	B:                   <--  HDR, SK{IDr, CERT(issued under root2), CERT, AUTH, ...}
func TestCertReqSelectsCredential(t *testing.T) {
	one, two := newCertPKI(t, "one"), newCertPKI(t, "two")
	a := certSide{cred: two.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256),
		anchors: []*x509.Certificate{two.root.Cert}}
	b := certSide{cred: one.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256),
		anchors: []*x509.Certificate{one.root.Cert, two.root.Cert}}
	ca, cb := certConns(a, b)
	credTwo := two.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256)
	cb.LocalAuth = &CertAuth{Local: &cert.Local{Store: cert.NewStore([]*cert.Credential{b.cred, credTwo}, b.anchors)}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, aout, _ := p.establish("gw")
	if len(events(aout, EventIKEUp)) != 1 {
		t.Fatalf("initiator: %+v", aout.Events)
	}
	if got := p.a.ep.SA(spi).AuthInfo().Remote.Issuer; got != "CN=two intermediate,O=petrel" {
		t.Fatalf("responder used a certificate issued by %q", got)
	}
}

// TestCertHashURL: A's certificate has a URL and B announced
// HTTP_CERT_LOOKUP_SUPPORTED, so A sends hash-and-URL (RFC 7296 §3.6,
// encoding 12) and B fetches it; without B's announcement A sends the
// full certificate.
//
//	A: HDR, SAi1, KEi, Ni, N(SIGNATURE_HASH_ALGORITHMS)       -->
//	B:              <--  HDR, SAr1, KEr, Nr, N(...), CERTREQ, N(HTTP_CERT_LOOKUP_SUPPORTED)
//	A: HDR, SK{IDi, CERT(12: SHA-1 | http://certs.test/a.der), CERT(inter), CERTREQ, AUTH, ...}  -->
//	B: fetches http://certs.test/a.der, checks the hash     <--  HDR, SK{IDr, CERT, CERT, AUTH, ...}
func TestCertHashURL(t *testing.T) {
	pki := newCertPKI(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	for _, lookup := range []bool{true, false} {
		t.Run(map[bool]string{true: "peer fetches", false: "full certificate"}[lookup], func(t *testing.T) {
			cred := pki.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256)
			cred.HashURL = "http://certs.test/a.der"
			pki.objects[cred.HashURL] = cred.Cert.Raw
			a := certSide{cred: cred, anchors: anchors}
			b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors}
			if lookup {
				b.hashURL = pki
			}
			ca, cb := certConns(a, b)
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			_, req := p.initiate("gw")
			resp := p.exchange(p.b, req)
			if _, outer := outerPayloads(t, resp); hasNotify(outer, wire.HTTP_CERT_LOOKUP_SUPPORTED) != lookup {
				t.Fatalf("HTTP_CERT_LOOKUP_SUPPORTED in IKE_SA_INIT response: %v, want %v", !lookup, lookup)
			}
			authReq := p.exchange(p.a, resp)
			cs := certs(innerOf(t, p.responderSA(resp), authReq))
			want := map[bool]wire.CertEncoding{true: wire.CertHashURLX509, false: wire.CertX509Signature}[lookup]
			if len(cs) != 2 || cs[0].Encoding != want {
				t.Fatalf("first CERT encoding %v, want %v", cs[0].Encoding, want)
			}
			bout := p.deliver(p.b, authReq)
			if len(events(bout, EventIKEUp)) != 1 {
				t.Fatalf("responder: %+v", bout.Events)
			}
			if aout := p.deliver(p.a, bout.Datagrams[0]); len(events(aout, EventIKEUp)) != 1 {
				t.Fatalf("initiator: %+v", aout.Events)
			}
		})
	}
}

// expiredTemplate is a certificate valid for a year that ended before t0.
func expiredTemplate(name string) cert.Template {
	tm := gwTemplate(name)
	tm.NotBefore, tm.Validity = t0.AddDate(-2, 0, 0), 365*24*time.Hour
	return tm
}

// TestCertFragmented: RSA certificates and their chain make IKE_AUTH
// larger than a fragment; with RFC 7383 fragmentation on both sides the
// CERT payloads cross in IKE fragments and both sides come up.
//
//	A: HDR, SKF{1/n}, ..., SKF{n/n}   (IDi, CERT, CERT, CERTREQ, AUTH, ...)  -->
//	B:                  <--  HDR, SKF{1/m}, ..., SKF{m/m}   (IDr, CERT, CERT, AUTH, ...)
func TestCertFragmented(t *testing.T) {
	pki := newCertPKI(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	a := certSide{cred: pki.leaf(t, gwTemplate("a.example.net"), cert.KeyRSA2048), anchors: anchors}
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyRSA2048), anchors: anchors}
	ca, cb := certConns(a, b)
	ca.NoFragmentation, cb.NoFragmentation = false, false
	ca.FragmentSize, cb.FragmentSize = 576, 576
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, req := p.initiate("gw")
	frags := p.deliver(p.a, p.exchange(p.b, req)).Datagrams
	if len(frags) < 2 {
		t.Fatalf("IKE_AUTH request in %d datagram(s), want fragments", len(frags))
	}
	frags = append([]Datagram(nil), frags...)
	var bout *Output
	for _, f := range frags {
		bout = p.deliver(p.b, f)
	}
	if len(events(bout, EventIKEUp)) != 1 || len(bout.Datagrams) < 2 {
		t.Fatalf("responder: %+v, %d datagrams", bout.Events, len(bout.Datagrams))
	}
	frags = append([]Datagram(nil), bout.Datagrams...)
	var aout *Output
	for _, f := range frags {
		aout = p.deliver(p.a, f)
	}
	if len(events(aout, EventIKEUp)) != 1 {
		t.Fatalf("initiator: %+v", aout.Events)
	}
}
