package interop

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
)

// Certificate authentication between petrel (gwa) and strongSwan 5.9.8
// (gwb), both ways round:
//
//	petrel gwa 192.0.2.1                        strongSwan gwb 192.0.2.2
//	HDR, SAi1, KEi, Ni, N(SIG_HASH_ALGS)  -->
//	                  <--  HDR, SAr1, KEr, Nr, CERTREQ(root), N(SIG_HASH_ALGS)
//	HDR, SK{IDi, CERT(gwa), CERT(inter-a), CERTREQ(root), IDr, AUTH(14), SA, TS}  -->
//	                  <--  HDR, SK{IDr, CERT(gwb), CERT(inter-b), AUTH(14), SA, TS}
//
// Each side trusts only the root, so each must receive the other's
// intermediate on the wire. The Child SA must carry pings.

func certScenario(t *testing.T, name, role string, kt cert.KeyType, petrel, swan certSide) {
	s := Begin(t, name, role)
	topo := s.NewSiteToSite()
	p := newCertPKI(s, kt, "")
	dut := p.newCertPetrel(s, topo, petrel, swan)
	peer := s.NewStrongSwan(topo.B, "gwb", certSwanConf(topo, swan, petrel))
	if swan.RSAPSS {
		peer.Charon = "rsa_pss = yes"
	}
	if swan.Classic {
		peer.Charon = "signature_authentication = no"
	}
	p.writeSwanCreds(s, peer)
	s.StartNode(dut)
	s.StartNode(peer)
	if role == RoleInitiator {
		s.Initiate(dut, "s2s-child", 20*time.Second)
	} else {
		s.Initiate(peer, "s2s-child", 20*time.Second)
	}
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	s.WaitEstablished(peer, "s2s", "s2s-child", 5*time.Second)
	ses := certSession(s, dut)
	wantRemote, wantLocal := "pubkey DIGITAL_SIGNATURE/", "pubkey DIGITAL_SIGNATURE/"
	if petrel.RSAPSS {
		wantLocal += "RSA-PSS"
	}
	if swan.RSAPSS {
		wantRemote += "RSA-PSS"
	}
	if swan.Classic {
		wantLocal, wantRemote = "pubkey ECDSA_SHA256_P256", "pubkey ECDSA_SHA256_P256"
	}
	if swan.PSK {
		wantRemote = "psk"
	}
	if petrel.PSK {
		wantLocal = "psk"
	}
	if !strings.HasPrefix(ses.RemoteAuth, wantRemote) || !strings.HasPrefix(ses.LocalAuth, wantLocal) {
		s.Fatalf("petrel lists auth %q/%q, want %q/%q", ses.LocalAuth, ses.RemoteAuth, wantLocal, wantRemote)
	}
	if !swan.PSK && (ses.RemoteCertSubject != "CN=gwb.example" || ses.RemoteCertIssuer != "CN=interop intermediate b,O=petrel") {
		s.Fatalf("petrel lists the peer certificate as %q issued by %q", ses.RemoteCertSubject, ses.RemoteCertIssuer)
	}
	s.Logf("petrel lists: local %s, remote %s %q issued by %q", ses.LocalAuth, ses.RemoteAuth, ses.RemoteCertSubject, ses.RemoteCertIssuer)
}

func TestPetrelCertECDSAInitiator(t *testing.T) {
	certScenario(t, "petrel-cert-ecdsa", RoleInitiator, cert.KeyECDSAP256, certSide{}, certSide{})
}

func TestPetrelCertECDSAResponder(t *testing.T) {
	certScenario(t, "petrel-cert-ecdsa", RoleResponder, cert.KeyECDSAP256, certSide{}, certSide{})
}

func TestPetrelCertRSAInitiator(t *testing.T) {
	certScenario(t, "petrel-cert-rsa", RoleInitiator, cert.KeyRSA2048, certSide{}, certSide{})
}

func TestPetrelCertRSAResponder(t *testing.T) {
	certScenario(t, "petrel-cert-rsa", RoleResponder, cert.KeyRSA2048, certSide{}, certSide{})
}

// RSASSA-PSS under RFC 7427 both ways (petrel rsa_pss, charon rsa_pss).
func TestPetrelCertRSAPSSInitiator(t *testing.T) {
	certScenario(t, "petrel-cert-rsa-pss", RoleInitiator, cert.KeyRSA2048, certSide{RSAPSS: true}, certSide{RSAPSS: true})
}

func TestPetrelCertRSAPSSResponder(t *testing.T) {
	certScenario(t, "petrel-cert-rsa-pss", RoleResponder, cert.KeyRSA2048, certSide{RSAPSS: true}, certSide{RSAPSS: true})
}

// A strongSwan without RFC 7427 sends no SIGNATURE_HASH_ALGORITHMS; petrel
// signs with the classic ECDSA method 9 (RFC 4754) and accepts charon's.
func TestPetrelCertClassicInitiator(t *testing.T) {
	certScenario(t, "petrel-cert-classic-ecdsa", RoleInitiator, cert.KeyECDSAP256, certSide{}, certSide{Classic: true})
}

func TestPetrelCertClassicResponder(t *testing.T) {
	certScenario(t, "petrel-cert-classic-ecdsa", RoleResponder, cert.KeyECDSAP256, certSide{}, certSide{Classic: true})
}

// Asymmetric: petrel proves with the PSK and strongSwan with its
// certificate, then the other way round.
func TestPetrelCertAsymPSKInitiator(t *testing.T) {
	certScenario(t, "petrel-cert-asym-psk-cert", RoleInitiator, cert.KeyECDSAP256, certSide{PSK: true}, certSide{})
}

func TestPetrelCertAsymCertInitiator(t *testing.T) {
	certScenario(t, "petrel-cert-asym-cert-psk", RoleInitiator, cert.KeyECDSAP256, certSide{}, certSide{PSK: true})
}

func TestPetrelCertAsymPSKResponder(t *testing.T) {
	certScenario(t, "petrel-cert-asym-psk-cert", RoleResponder, cert.KeyECDSAP256, certSide{PSK: true}, certSide{})
}

func TestPetrelCertAsymCertResponder(t *testing.T) {
	certScenario(t, "petrel-cert-asym-cert-psk", RoleResponder, cert.KeyECDSAP256, certSide{}, certSide{PSK: true})
}

// TestPetrelCertCRLRevoked: strongSwan's certificate names a CRL served by
// an HTTP server in petrel's namespace and is on it; petrel fetches the
// CRL, refuses strongSwan's IKE_AUTH response, tells it with
// N(AUTHENTICATION_FAILED) and logs the reason.
//
//	HDR, SK{IDi, CERT, CERT, CERTREQ, IDr, AUTH, ...}  -->
//	                 <--  HDR, SK{IDr, CERT(gwb, revoked), CERT(inter-b), AUTH, ...}
//	petrel: GET http://10.1.0.1:8080/inter-b.crl → gwb's serial is listed
//	HDR(INFORMATIONAL), SK{N(AUTHENTICATION_FAILED)}   -->
func TestPetrelCertCRLRevoked(t *testing.T) {
	s := Begin(t, "petrel-cert-crl-revoked", RoleInitiator)
	topo := s.NewSiteToSite()
	p := newCertPKI(s, cert.KeyECDSAP256, "http://"+topo.LanA.String()+":8080/inter-b.crl")
	p.revoked = append(p.revoked, p.gwb.Cert.SerialNumber)
	web := s.NewProcessNode(topo.A, "crl", "python3", "-m", "http.server", "8080", "--bind", topo.LanA.String(), "--directory", "{dir}/www")
	certWriteFile(s, filepath.Join(web.Dir(), "www", "inter-b.crl"), p.crl())
	dut := p.newCertPetrel(s, topo, certSide{}, certSide{}, "revocation: strict")
	peer := s.NewStrongSwan(topo.B, "gwb", certSwanConf(topo, certSide{}, certSide{}))
	p.writeSwanCreds(s, peer)
	s.StartNode(web)
	s.StartNode(dut)
	s.StartNode(peer)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := dut.Initiate(ctx, "s2s-child")
	if err == nil || !strings.Contains(err.Error(), "AUTHENTICATION_FAILED") {
		s.Fatalf("petrel up: %v, want AUTHENTICATION_FAILED", err)
	}
	if !certLogContains(dut, "cert: revoked (CRL)") {
		s.Fatalf("petrel's log lacks the CRL refusal")
	}
	s.Logf("petrel refused the revoked certificate: %v", err)
}

// TestPetrelCertHashURL*: strongSwan sends its certificate as hash-and-URL
// (RFC 7296 §3.6, encoding 12) because petrel announced
// HTTP_CERT_LOOKUP_SUPPORTED (§3.10.1), and petrel fetches it from an HTTP
// server in its namespace. (This strongSwan build has no curl plugin, so
// the other direction, strongSwan fetching petrel's certificate, cannot be
// tried; petrel then sends full certificates, as the exchange tests show.)
//
//	petrel initiator:
//	HDR, SK{IDi, CERT, CERT, CERTREQ, N(HTTP_CERT_LOOKUP_SUPPORTED), IDr, AUTH, ...}  -->
//	           <--  HDR, SK{IDr, CERT(12: SHA-1(gwb) | http://10.1.0.1:8080/<hex>), CERT(inter-b), AUTH, ...}
//	petrel: GET /<hex> → gwb's DER certificate, hash checked
func TestPetrelCertHashURLInitiator(t *testing.T) { certHashURL(t, RoleInitiator) }

func TestPetrelCertHashURLResponder(t *testing.T) { certHashURL(t, RoleResponder) }

func certHashURL(t *testing.T, role string) {
	s := Begin(t, "petrel-cert-hash-url", role)
	topo := s.NewSiteToSite()
	p := newCertPKI(s, cert.KeyECDSAP256, "")
	sum := sha1.Sum(p.gwb.Cert.Raw)
	name := hex.EncodeToString(sum[:])
	base := "http://" + topo.LanA.String() + ":8080/"
	web := s.NewProcessNode(topo.A, "web", "python3", "-m", "http.server", "8080", "--bind", topo.LanA.String(), "--directory", "{dir}/www")
	certWriteFile(s, filepath.Join(web.Dir(), "www", name), p.gwb.Cert.Raw)
	dut := p.newCertPetrel(s, topo, certSide{}, certSide{}, "hash_url: yes")
	peer := s.NewStrongSwan(topo.B, "gwb", certSwanConf(topo, certSide{}, certSide{})+
		"authorities {\n\tinter-b {\n\t\tcacert = inter-b.pem\n\t\tcert_uri_base = "+base+"\n\t}\n}\n")
	peer.Charon = "hash_and_url = yes"
	p.writeSwanCreds(s, peer)
	s.StartNode(web)
	s.StartNode(dut)
	s.StartNode(peer)
	if role == RoleInitiator {
		s.Initiate(dut, "s2s-child", 20*time.Second)
	} else {
		s.Initiate(peer, "s2s-child", 20*time.Second)
	}
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	s.WaitEstablished(peer, "s2s", "s2s-child", 5*time.Second)
	if !certLogContains(web, "GET /"+name) {
		s.Fatalf("petrel did not fetch %s%s: strongSwan sent the full certificate", base, name)
	}
	if ses := certSession(s, dut); ses.RemoteCertSubject != "CN=gwb.example" {
		s.Fatalf("petrel lists the peer certificate as %q", ses.RemoteCertSubject)
	}
	s.Logf("petrel fetched %s%s", base, name)
}

// Ed25519 certificates (RFC 8420: method 14 with the Identity hash).
func TestPetrelCertEd25519Initiator(t *testing.T) {
	certScenario(t, "petrel-cert-ed25519", RoleInitiator, cert.KeyEd25519, certSide{}, certSide{})
}

func TestPetrelCertEd25519Responder(t *testing.T) {
	certScenario(t, "petrel-cert-ed25519", RoleResponder, cert.KeyEd25519, certSide{}, certSide{})
}
