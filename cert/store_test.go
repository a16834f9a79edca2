package cert

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestCertReqAndSelect checks RFC 7296 §3.7: CERTREQ names trust anchors
// by the SHA-1 of their SubjectPublicKeyInfo, and the local credential
// chosen is the one under a CA the peer asked for.
func TestCertReqAndSelect(t *testing.T) {
	a, b := newTestPKI(t, KeyECDSAP256), newTestPKI(t, KeyECDSAP256)
	credA := a.leaf(t, gatewayTemplate(), KeyECDSAP256)
	credB := b.leaf(t, gatewayTemplate(), KeyECDSAP256)
	alice := a.leaf(t, Template{CN: "alice", Emails: []string{"alice@example.net"}, Client: true}, KeyECDSAP256)
	store := NewStore([]*Credential{credA, credB, alice}, []*x509.Certificate{a.root.Cert, b.root.Cert})

	cr := store.CertReq()
	if cr.Encoding != wire.CertX509Signature || len(cr.Data) != 40 {
		t.Fatalf("CERTREQ %v with %d octets", cr.Encoding, len(cr.Data))
	}
	want := sha1.Sum(b.root.Cert.RawSubjectPublicKeyInfo)
	if !bytes.Equal(cr.Data[20:], want[:]) {
		t.Errorf("second CA hash %x, want %x", cr.Data[20:], want)
	}

	gw := ID{wire.ID_FQDN, []byte("gw.example.net")}
	// Peer trusts only root B.
	peerB := NewStore(nil, []*x509.Certificate{b.root.Cert}).CertReq()
	got, err := store.Select(gw, CertReqAuthorities([]wire.Payload{peerB}))
	if err != nil || got != credB {
		t.Errorf("CERTREQ for root B chose %v, %v", got.Cert.Issuer, err)
	}
	// Peer names B's intermediate: also B.
	ib := SPKIHash(b.inter.Cert)
	if got, _ := store.Select(gw, [][]byte{ib[:]}); got != credB {
		t.Error("CERTREQ for B's intermediate did not choose B's certificate")
	}
	// No CERTREQ: the first credential carrying the identity.
	if got, _ := store.Select(gw, nil); got != credA {
		t.Error("without CERTREQ the first matching credential was not chosen")
	}
	if got, _ := store.Select(ID{wire.ID_RFC822_ADDR, []byte("alice@example.net")}, nil); got != alice {
		t.Error("identity did not choose alice")
	}
	if _, err := store.Select(ID{wire.ID_FQDN, []byte("nobody.example.net")}, nil); ReasonOf(err) != ReasonNoCertificate {
		t.Errorf("unknown identity: %v", err)
	}
	// A malformed CERTREQ (not a multiple of 20) is ignored.
	if hs := CertReqAuthorities([]wire.Payload{&wire.CertReq{Encoding: wire.CertX509Signature, Data: make([]byte, 21)}}); hs != nil {
		t.Errorf("malformed CERTREQ gave %d hashes", len(hs))
	}
	// Replace swaps everything (petrel reload).
	store.Replace([]*Credential{alice}, nil)
	if store.CertReq() != nil || len(store.Credentials()) != 1 {
		t.Error("Replace did not swap credentials and anchors")
	}
}

func TestLoadPEMAndDER(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	dir := t.TempDir()
	for _, kt := range []KeyType{KeyECDSAP256, KeyRSA2048, KeyEd25519} {
		cred := p.leaf(t, gatewayTemplate(), kt)
		keyPEM, err := MarshalPrivateKeyPEM(cred.Key)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ParsePrivateKey(keyPEM)
		if err != nil || !keyMatches(cred.Cert.PublicKey, k.Public()) {
			t.Fatalf("key type %d PEM: %v", kt, err)
		}
		pkcs8, _ := x509.MarshalPKCS8PrivateKey(cred.Key)
		if k, err := ParsePrivateKey(pkcs8); err != nil || !keyMatches(cred.Cert.PublicKey, k.Public()) {
			t.Errorf("key type %d PKCS#8 DER: %v", kt, err)
		}
	}
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	pemFile := filepath.Join(dir, "chain.pem")
	os.WriteFile(pemFile, MarshalCertificatePEM(cred.Cert, p.inter.Cert), 0o644)
	cs, err := LoadCertificates(pemFile)
	if err != nil || len(cs) != 2 || !cs[1].Equal(p.inter.Cert) {
		t.Fatalf("PEM chain: %d certificates, %v", len(cs), err)
	}
	derFile := filepath.Join(dir, "leaf.der")
	os.WriteFile(derFile, cred.Cert.Raw, 0o644)
	if cs, err := LoadCertificates(derFile); err != nil || !cs[0].Equal(cred.Cert) {
		t.Errorf("DER: %v", err)
	}
	if _, err := ParseCertificates([]byte("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")); err == nil {
		t.Error("PEM without certificates accepted")
	}
	other := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	if _, err := NewCredential(cred.Cert, nil, other.Key); err == nil {
		t.Error("credential with a foreign key accepted")
	}
}

// TestLoadPKCS12 builds a PKCS#12 file with OpenSSL (legacy PBE, the only
// one golang.org/x/crypto/pkcs12 reads) and loads key, certificate and
// chain from it.
func TestLoadPKCS12(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	p := newTestPKI(t, KeyECDSAP256)
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	dir := t.TempDir()
	keyPEM, _ := MarshalPrivateKeyPEM(cred.Key)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "cert.pem"), MarshalCertificatePEM(cred.Cert), 0o644)
	os.WriteFile(filepath.Join(dir, "chain.pem"), MarshalCertificatePEM(p.inter.Cert), 0o644)
	out := filepath.Join(dir, "gw.p12")
	args := []string{"pkcs12", "-export", "-inkey", "key.pem", "-in", "cert.pem", "-certfile", "chain.pem",
		"-out", out, "-passout", "pass:s3cret", "-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1"}
	cmd := exec.Command(openssl, append(args, "-legacy")...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		cmd = exec.Command(openssl, args...) // OpenSSL 1.1 has no -legacy
		cmd.Dir = dir
		if b2, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl pkcs12: %v\n%s\n%s", err, b, b2)
		}
	}
	data, _ := os.ReadFile(out)
	key, c, chain, err := ParsePKCS12(data, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equal(cred.Cert) || len(chain) != 1 || !chain[0].Equal(p.inter.Cert) || !keyMatches(c.PublicKey, key.Public()) {
		t.Errorf("PKCS#12: cert %v, chain %d", c.Subject, len(chain))
	}
	creds, _, err := LoadFiles(Files{Credentials: []CredentialFiles{{PKCS12: out, Password: "s3cret"}}})
	if err != nil || len(creds) != 1 || !creds[0].Cert.Equal(cred.Cert) || len(creds[0].Chain) != 1 {
		t.Errorf("LoadFiles with PKCS#12: %v", err)
	}
	if _, _, _, err := ParsePKCS12(data, "wrong"); err == nil {
		t.Error("wrong PKCS#12 password accepted")
	}
}
