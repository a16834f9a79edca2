package ike

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// Test PKI for certificate exchanges: a root, an intermediate under it,
// leaves under the intermediate, and an in-memory Fetcher that serves the
// intermediate's CRL, its OCSP responder and hash-and-URL certificates.
// Certificates are issued at t0, the fake clock of the exchange tests.

const (
	crlURL     = "http://ca.test/inter.crl"
	ocspURL    = "http://ca.test/ocsp"
	rootCRLURL = "http://ca.test/root.crl" // the intermediate's, with newCertPKIRootCRL
)

type certPKI struct {
	root, inter *cert.CA
	mu          sync.Mutex
	revoked     map[string]bool   // serial numbers
	objects     map[string][]byte // hash-and-URL: URL -> DER
	fetches     int
}

func newCertPKI(t testing.TB, name string) *certPKI { return newPKI(t, name, nil) }

// newCertPKIRootCRL is a PKI whose intermediate names the root's CRL
// (rootCRLURL), so that a whole chain can pass the strict revocation
// policy.
func newCertPKIRootCRL(t testing.TB, name string) *certPKI {
	return newPKI(t, name, []string{rootCRLURL})
}

func newPKI(t testing.TB, name string, interCRLs []string) *certPKI {
	t.Helper()
	root, err := cert.NewCA(cert.Template{CN: name + " root", Org: "petrel"}, cert.KeyECDSAP256, t0)
	if err != nil {
		t.Fatal(err)
	}
	ic, ik, err := root.Issue(cert.Template{CN: name + " intermediate", Org: "petrel", IsCA: true, CRLURLs: interCRLs}, cert.KeyECDSAP256, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &certPKI{root: root, inter: &cert.CA{Cert: ic, Key: ik}, revoked: map[string]bool{}, objects: map[string][]byte{}}
}

// leaf issues a credential under the intermediate, the chain attached.
func (p *certPKI) leaf(t testing.TB, tmpl cert.Template, kt cert.KeyType) *cert.Credential {
	t.Helper()
	c, k, err := p.inter.Issue(tmpl, kt, t0)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := cert.NewCredential(c, []*x509.Certificate{p.inter.Cert}, k)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func (p *certPKI) revoke(c *x509.Certificate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked[c.SerialNumber.String()] = true
}

// Fetch serves the CRL, OCSP answers and hash-and-URL objects (cert.Fetcher).
func (p *certPKI) Fetch(_ context.Context, req cert.Request) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fetches++
	switch req.URL {
	case crlURL, rootCRLURL:
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: t0.Add(-time.Hour), NextUpdate: t0.Add(24 * time.Hour)}
		for s := range p.revoked {
			n, _ := new(big.Int).SetString(s, 10)
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: n, RevocationTime: t0.Add(-30 * time.Minute)})
		}
		ca := p.inter
		if req.URL == rootCRLURL {
			ca = p.root
		}
		return x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	case ocspURL:
		r, err := ocsp.ParseRequest(req.Body)
		if err != nil {
			return nil, err
		}
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: r.SerialNumber, ThisUpdate: t0.Add(-time.Minute), NextUpdate: t0.Add(time.Hour)}
		if p.revoked[r.SerialNumber.String()] {
			tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, t0.Add(-30*time.Minute)
		}
		return ocsp.CreateResponse(p.inter.Cert, p.inter.Cert, tmpl, p.inter.Key)
	}
	if b, ok := p.objects[req.URL]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("fake fetcher: no %s", req.URL)
}

// certSide is one side's certificate setup.
type certSide struct {
	cred      *cert.Credential
	anchors   []*x509.Certificate
	policy    *cert.Policy
	ekus      []cert.EKU
	revoke    *certPKI // checks revocation through this PKI's fetcher
	lenient   bool     // ... accepting certificates whose status is unreachable
	revokeLog *slog.Logger
	hashURL   *certPKI     // resolves hash-and-URL through this PKI's fetcher
	fetch     cert.Fetcher // if set, the Fetcher for both instead of the PKI
}

func (s certSide) local() *CertAuth {
	return &CertAuth{Local: &cert.Local{Store: cert.NewStore([]*cert.Credential{s.cred}, s.anchors)}}
}

func (s certSide) remote() *CertVerifier {
	v := &cert.Validator{Store: cert.NewStore(nil, s.anchors), Now: func() time.Time { return t0 }, EKUs: s.ekus}
	if s.revoke != nil {
		pol := cert.Strict
		if s.lenient {
			pol = cert.Lenient
		}
		var f cert.Fetcher = s.revoke
		if s.fetch != nil {
			f = s.fetch
		}
		v.Revocation = &cert.Revocation{Fetcher: f, Policy: pol, Now: v.Now, Log: s.revokeLog}
		if v.Revocation.Log == nil {
			v.Revocation.Log = slog.New(slog.DiscardHandler)
		}
	}
	r := &cert.Remote{Validator: v, Policy: s.policy}
	if s.hashURL != nil {
		var f cert.Fetcher = s.hashURL
		if s.fetch != nil {
			f = s.fetch
		}
		r.HashURL = &cert.HashURLResolver{Fetcher: f}
	}
	return &CertVerifier{Remote: r}
}

// certConns builds A's connection and B's mirror, each side proving with
// its own credential and verifying against its anchors. LocalIDs stay zero
// (the subject DN is claimed) unless the test sets them. Fragmentation is
// off so that the tests can open the IKE_AUTH messages whole;
// TestCertFragmented covers certificates in fragments.
func certConns(a, b certSide) (*Connection, *Connection) {
	ca := pskConn("gw", addrA, addrB, "unused")
	ca.NoFragmentation = true
	ca.LocalAuth, ca.RemoteAuth = a.local(), a.remote()
	cb := mirror(ca)
	cb.LocalAuth, cb.RemoteAuth = b.local(), b.remote()
	return ca, cb
}

func gwTemplate(name string) cert.Template {
	return cert.Template{CN: name, DNS: []string{name}}
}

// logTo makes n's endpoint log to a buffer.
func logTo(n *node) *bytes.Buffer {
	var buf bytes.Buffer
	n.ep.log = slog.New(slog.NewTextHandler(&buf, nil))
	return &buf
}

// linesWith counts log lines containing s.
func linesWith(log *bytes.Buffer, s string) int {
	n := 0
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// certs returns the CERT payloads of ps.
func certs(ps []wire.Payload) []*wire.Cert {
	var out []*wire.Cert
	for _, p := range ps {
		if c, ok := p.(*wire.Cert); ok {
			out = append(out, c)
		}
	}
	return out
}

// responderSA is B's SA for the exchange whose IKE_SA_INIT response is d.
func (p *pair) responderSA(d Datagram) *SA {
	p.t.Helper()
	m, err := wire.Parse(d.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	sa := p.b.ep.SA(m.Header.SPIr)
	if sa == nil {
		p.t.Fatal("no responder SA")
	}
	return sa
}

// withoutNotify re-encodes a plaintext message without notifications of
// type n.
func withoutNotify(t *testing.T, d Datagram, n wire.NotifyType) Datagram {
	t.Helper()
	m, err := wire.Parse(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	var kept []wire.Payload
	for _, p := range m.Payloads {
		if x, ok := p.(*wire.Notify); ok && x.NotifyType == n {
			continue
		}
		kept = append(kept, p)
	}
	m.Payloads = kept
	if d.Data, err = m.Encode(nil); err != nil {
		t.Fatal(err)
	}
	return d
}

// claimingAuth proves with cred while claiming an identity the certificate
// does not carry, which petrel's own CertAuth refuses to do.
type claimingAuth struct {
	cred  *cert.Credential
	claim Identity
}

func (c *claimingAuth) ChooseID(*AuthContext) (Identity, error) { return c.claim, nil }

func (c *claimingAuth) Prove(ctx *AuthContext) ([]wire.Payload, error) {
	return (&cert.Local{}).Prove(c.cred, cert.ProveInput{SignedOctets: ctx.SignedOctets,
		PeerHashes: ctx.PeerHashes, PeerSentHashes: ctx.PeerSentHashes})
}
