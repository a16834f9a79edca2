package cert

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// signedOctets builds RFC 7296 §2.15 octets the way the core does.
func signedOctets(t *testing.T, id ID) []byte {
	t.Helper()
	prf, err := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	restOfID := append([]byte{byte(id.Type), 0, 0, 0}, id.Data...)
	return suite.SignedOctets(prf, []byte("IKE_SA_INIT request as sent"), []byte("responder nonce"), []byte("SK_pi"), restOfID)
}

// exchange plays the certificate part of IKE_AUTH:
//
//	Initiator                         Responder
//	IKE_SA_INIT: N(SIGNATURE_HASH_ALGORITHMS), CERTREQ  (both ways)
//	IKE_AUTH: IDi, CERT(leaf), CERT(intermediate), AUTH  -->
//
// and returns what the responder's Remote says.
func exchange(t *testing.T, local *Local, id ID, peerHashes []wire.HashAlgorithm, peerSent bool, responderCertReq *wire.CertReq, remote *Remote) (*PeerInfo, error) {
	t.Helper()
	cred, claimed, err := local.Choose(id, CertReqAuthorities([]wire.Payload{responderCertReq}))
	if err != nil {
		return nil, err
	}
	octets := signedOctets(t, claimed)
	ps, err := local.Prove(cred, ProveInput{SignedOctets: octets, PeerHashes: peerHashes, PeerSentHashes: peerSent})
	if err != nil {
		return nil, err
	}
	// The responder parses what crossed the wire.
	ps = reparse(t, ps)
	return remote.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: claimed, Payloads: ps})
}

func reparse(t *testing.T, ps []wire.Payload) []wire.Payload {
	t.Helper()
	var out []wire.Payload
	for _, p := range ps {
		body := p.AppendBody(nil)
		switch p.Type() {
		case wire.PayloadCERT:
			c, err := wire.ParseCert(body)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		case wire.PayloadAUTH:
			a, err := wire.ParseAuth(body)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a)
		}
	}
	return out
}

func TestExchangeEveryKeyAndMethod(t *testing.T) {
	for _, c := range []struct {
		kt       KeyType
		pss      bool
		hashes   []wire.HashAlgorithm
		sent     bool
		method   wire.AuthMethod
		scheme   Scheme
		policy   *Policy
		wantFail Reason
	}{
		{KeyECDSAP256, false, SupportedHashes, true, wire.AuthDigitalSignature, SchemeECDSASHA256, nil, 0},
		{KeyECDSAP384, false, SupportedHashes, true, wire.AuthDigitalSignature, SchemeECDSASHA384, nil, 0},
		{KeyECDSAP521, false, SupportedHashes, true, wire.AuthDigitalSignature, SchemeECDSASHA512, nil, 0},
		{KeyRSA2048, false, SupportedHashes, true, wire.AuthDigitalSignature, SchemeRSAPKCS1SHA256, nil, 0},
		{KeyRSA2048, true, SupportedHashes, true, wire.AuthDigitalSignature, SchemeRSAPSSSHA256, nil, 0},
		{KeyEd25519, false, SupportedHashes, true, wire.AuthDigitalSignature, SchemeEd25519, nil, 0},
		{KeyRSA2048, false, nil, false, wire.AuthRSASignature, SchemeRSAPKCS1SHA1, nil, 0},
		{KeyECDSAP256, false, nil, false, wire.AuthECDSA256, SchemeECDSASHA256, nil, 0},
		{KeyECDSAP384, false, nil, false, wire.AuthECDSA384, SchemeECDSASHA384, nil, 0},
		{KeyECDSAP521, false, nil, false, wire.AuthECDSA521, SchemeECDSASHA512, nil, 0},
		// Refused by configuration: classic RSA (SHA-1) not accepted.
		{KeyRSA2048, false, nil, false, 0, 0, &Policy{Methods: []wire.AuthMethod{wire.AuthDigitalSignature}}, ReasonMethodNotAccepted},
		// Unsupported hash: the responder accepts only SHA-512 schemes.
		{KeyECDSAP256, false, SupportedHashes, true, 0, 0, &Policy{Schemes: []Scheme{SchemeECDSASHA512}}, ReasonUnsupportedHash},
	} {
		p := newTestPKI(t, KeyECDSAP256)
		cred := p.leaf(t, gatewayTemplate(), c.kt)
		local := &Local{Store: NewStore([]*Credential{cred}, nil), RSAPSS: c.pss}
		remoteStore := NewStore(nil, []*x509.Certificate{p.root.Cert})
		remote := &Remote{Validator: &Validator{Store: remoteStore, Now: fixedClock(t0)}, Policy: c.policy}
		info, err := exchange(t, local, ID{wire.ID_FQDN, []byte("gw.example.net")}, c.hashes, c.sent, remoteStore.CertReq(), remote)
		if c.wantFail != 0 {
			if ReasonOf(err) != c.wantFail {
				t.Errorf("key %d: %v, want %v", c.kt, err, c.wantFail)
			}
			continue
		}
		if err != nil {
			t.Errorf("key %d method %v: %v", c.kt, c.method, err)
			continue
		}
		if info.Method != c.method || info.Scheme != c.scheme || info.Subject != "CN=gw.example.net" ||
			info.Issuer != "CN=petrel test intermediate,O=petrel" || len(info.Chain) != 3 {
			t.Errorf("key %d: peer info %+v (%s)", c.kt, info, info.Verified)
		}
	}
}

// TestExchangeRefusals runs one IKE_AUTH per refusal and checks that each
// ends in one precise error, which the core logs as one line.
func TestExchangeRefusals(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	stranger := newTestPKI(t, KeyECDSAP256)
	gw := ID{wire.ID_FQDN, []byte("gw.example.net")}
	trust := NewStore(nil, []*x509.Certificate{p.root.Cert})
	good := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	wrongUsage := func() *Credential {
		tm := gatewayTemplate()
		tm.KeyUsage = x509.KeyUsageKeyAgreement
		return p.leaf(t, tm, KeyECDSAP256)
	}()
	for _, c := range []struct {
		name   string
		cred   *Credential
		claim  ID
		now    time.Time
		tamper func([]wire.Payload)
		reason Reason
		text   string
	}{
		{"untrusted CA", stranger.leaf(t, gatewayTemplate(), KeyECDSAP256), gw, t0, nil, ReasonUntrustedCA, "no trust anchor"},
		{"expired", good, gw, t0.Add(3 * 365 * 24 * time.Hour), nil, ReasonExpired, "expired at"},
		{"identity not in certificate", good, ID{wire.ID_FQDN, []byte("mallory.example.net")}, t0, nil, ReasonIdentityMismatch, "mallory.example.net"},
		{"wrong key usage", wrongUsage, gw, t0, nil, ReasonKeyUsage, "digitalSignature"},
		{"bad signature", good, gw, t0, func(ps []wire.Payload) {
			a := ps[len(ps)-1].(*wire.Auth)
			a.Data[len(a.Data)-5] ^= 0x40
		}, ReasonBadSignature, "does not verify"},
		{"no certificate", good, gw, t0, func(ps []wire.Payload) {
			ps[0].(*wire.Cert).Encoding = wire.CertPGP
		}, ReasonNoCertificate, "no X.509"},
		{"garbage certificate", good, gw, t0, func(ps []wire.Payload) {
			ps[0].(*wire.Cert).Data = []byte{0x30, 0x03, 1, 2, 3}
		}, ReasonMalformed, "CERT payload 1"},
	} {
		local := &Local{Store: NewStore([]*Credential{c.cred}, nil)}
		cred, _, err := local.Choose(ID{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		octets := signedOctets(t, c.claim)
		ps, err := local.Prove(cred, ProveInput{SignedOctets: octets, PeerHashes: SupportedHashes, PeerSentHashes: true})
		if err != nil {
			t.Fatal(err)
		}
		ps = reparse(t, ps)
		if c.tamper != nil {
			c.tamper(ps)
		}
		remote := &Remote{Validator: &Validator{Store: trust, Now: fixedClock(c.now)}}
		_, err = remote.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: c.claim, Payloads: ps})
		if ReasonOf(err) != c.reason || !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want reason %v mentioning %q on one line", c.name, err, c.reason, c.text)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// TestPeerInfoAndLimits checks the listing line of a verified peer and
// the bound on CERT payloads.
func TestPeerInfoAndLimits(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	gw := ID{wire.ID_FQDN, []byte("gw.example.net")}
	local := &Local{Store: NewStore([]*Credential{cred}, nil)}
	remote := &Remote{Validator: &Validator{Store: NewStore(nil, []*x509.Certificate{p.root.Cert}), Now: fixedClock(t0)}}
	octets := signedOctets(t, gw)
	ps, err := local.Prove(cred, ProveInput{SignedOctets: octets, PeerHashes: SupportedHashes, PeerSentHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	info, err := remote.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: gw, Payloads: ps})
	if err != nil {
		t.Fatal(err)
	}
	if want := `DIGITAL_SIGNATURE/ECDSA-SHA256 subject "CN=gw.example.net" issuer "CN=petrel test intermediate,O=petrel"`; info.String() != want {
		t.Errorf("PeerInfo %q, want %q", info, want)
	}
	many := append([]wire.Payload{}, ps[:2]...)
	for len(many) <= MaxCertPayloads {
		many = append(many, ps[1])
	}
	many = append(many, ps[len(ps)-1])
	if _, err := remote.Verify(context.Background(), VerifyInput{SignedOctets: octets, PeerID: gw, Payloads: many}); ReasonOf(err) != ReasonMalformed {
		t.Errorf("%d CERT payloads: %v", len(many)-1, err)
	}
}

// TestAsymmetricPSKAndCertificate authenticates the initiator with a
// certificate and the responder with a PSK (and the other way round): the
// two directions use independent methods (RFC 7296 §2.15).
func TestAsymmetricPSKAndCertificate(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	prf, _ := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
	psk := []byte("responder's pre-shared key")
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	trust := NewStore(nil, []*x509.Certificate{p.root.Cert})
	remote := &Remote{Validator: &Validator{Store: trust, Now: fixedClock(t0)}}
	local := &Local{Store: NewStore([]*Credential{cred}, nil)}
	id := ID{wire.ID_FQDN, []byte("gw.example.net")}
	for _, certSide := range []string{"initiator", "responder"} {
		// The certificate side signs its octets; the PSK side MACs its own.
		certOctets, pskOctets := signedOctets(t, id), signedOctets(t, ID{wire.ID_KEY_ID, []byte(certSide)})
		ps, err := local.Prove(cred, ProveInput{SignedOctets: certOctets, PeerHashes: SupportedHashes, PeerSentHashes: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Verify(context.Background(), VerifyInput{SignedOctets: certOctets, PeerID: id, Payloads: reparse(t, ps)}); err != nil {
			t.Errorf("%s with certificate: %v", certSide, err)
		}
		mac := suite.PSKAuth(prf, psk, pskOctets)
		if !suite.VerifyPSKAuth(prf, psk, pskOctets, mac) {
			t.Errorf("other side with PSK does not verify")
		}
		// A PSK AUTH presented to the certificate verifier is refused.
		pskAuth := &wire.Auth{Method: wire.AuthSharedKeyMIC, Data: mac}
		_, err = remote.Verify(context.Background(), VerifyInput{SignedOctets: certOctets, PeerID: id,
			Payloads: append(reparse(t, ps)[:2], pskAuth)})
		if ReasonOf(err) != ReasonMethodNotAccepted {
			t.Errorf("PSK AUTH where a signature is configured: %v", err)
		}
	}
}
