package cert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// httpFetcher is a plain net/http Fetcher for these tests (cert/httpfetch
// imports cert, so it cannot be used from here).
type httpFetcher struct{}

func (httpFetcher) Fetch(ctx context.Context, req Request) ([]byte, error) {
	method, body := http.MethodGet, io.Reader(nil)
	if req.Body != nil {
		method, body = http.MethodPost, bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", req.ContentType)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, req.MaxSize))
}

// revocationPKI is a root, an intermediate with a CRL pointer, and a
// CRL/OCSP server on 127.0.0.1 that knows which serials are revoked.
type revocationPKI struct {
	root, inter *CA
	srv         *httptest.Server
	mu          sync.Mutex
	revoked     map[string]bool // serial -> revoked
	hits        map[string]int
	ocspSigner  *CA           // signs OCSP responses; default the intermediate
	ocspNext    time.Duration // nextUpdate offset from t0
}

func newRevocationPKI(t *testing.T) *revocationPKI {
	t.Helper()
	p := &revocationPKI{revoked: map[string]bool{}, hits: map[string]int{}, ocspNext: 24 * time.Hour}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	if !strings.HasPrefix(p.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("server on %s", p.srv.URL)
	}
	var err error
	if p.root, err = NewCA(Template{CN: "revocation root"}, KeyECDSAP256, t0); err != nil {
		t.Fatal(err)
	}
	ic, ik, err := p.root.Issue(Template{CN: "revocation intermediate", IsCA: true, CRLURLs: []string{p.srv.URL + "/root.crl"}}, KeyECDSAP256, t0)
	if err != nil {
		t.Fatal(err)
	}
	p.inter = &CA{Cert: ic, Key: ik}
	p.ocspSigner = p.inter
	return p
}

func (p *revocationPKI) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hits[r.URL.Path]++
	switch r.URL.Path {
	case "/root.crl", "/inter.crl":
		ca := p.root
		if r.URL.Path == "/inter.crl" {
			ca = p.inter
		}
		tmpl := &x509.RevocationList{Number: big.NewInt(int64(p.hits[r.URL.Path])), ThisUpdate: t0.Add(-time.Hour), NextUpdate: t0.Add(24 * time.Hour)}
		for s := range p.revoked {
			n, _ := new(big.Int).SetString(s, 10)
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: n, RevocationTime: t0.Add(-30 * time.Minute)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(der)
	case "/ocsp":
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber,
			ThisUpdate: t0.Add(-time.Minute), NextUpdate: t0.Add(p.ocspNext)}
		if p.revoked[req.SerialNumber.String()] {
			tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, t0.Add(-30*time.Minute)
		}
		der, err := ocsp.CreateResponse(p.inter.Cert, p.ocspSigner.Cert, tmpl, p.ocspSigner.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(der)
	default:
		http.NotFound(w, r)
	}
}

func (p *revocationPKI) hitCount(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

func (p *revocationPKI) leaf(t *testing.T, crl, ocspURL string, revoked bool) *Credential {
	t.Helper()
	tm := gatewayTemplate()
	if crl != "" {
		tm.CRLURLs = []string{p.srv.URL + crl}
	}
	if ocspURL != "" {
		tm.OCSPURLs = []string{p.srv.URL + ocspURL}
	}
	c, k, err := p.inter.Issue(tm, KeyECDSAP256, t0)
	if err != nil {
		t.Fatal(err)
	}
	if revoked {
		p.mu.Lock()
		p.revoked[c.SerialNumber.String()] = true
		p.mu.Unlock()
	}
	return &Credential{Cert: c, Chain: []*x509.Certificate{p.inter.Cert}, Key: k}
}

func (p *revocationPKI) validator(policy UnreachablePolicy, log *slog.Logger, now time.Time) *Validator {
	return &Validator{Store: NewStore(nil, []*x509.Certificate{p.root.Cert}), Now: fixedClock(now),
		Revocation: &Revocation{Fetcher: httpFetcher{}, Policy: policy, Log: log, Now: fixedClock(now)}}
}

func TestRevocation(t *testing.T) {
	p := newRevocationPKI(t)
	ctx := context.Background()
	other, err := NewCA(Template{CN: "not the issuer"}, KeyECDSAP256, t0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		cred   *Credential
		policy UnreachablePolicy
		setup  func()
		reason Reason
	}{
		{"CRL good", p.leaf(t, "/inter.crl", "", false), Strict, nil, 0},
		{"CRL revoked", p.leaf(t, "/inter.crl", "", true), Strict, nil, ReasonRevokedCRL},
		{"OCSP good", p.leaf(t, "", "/ocsp", false), Strict, nil, 0},
		{"OCSP revoked", p.leaf(t, "", "/ocsp", true), Strict, nil, ReasonRevokedOCSP},
		// OCSP has no definite answer (unreachable), the CRL decides.
		{"OCSP down, CRL revoked", p.leaf(t, "/inter.crl", "/down", true), Strict, nil, ReasonRevokedCRL},
		{"unreachable, strict", p.leaf(t, "/missing.crl", "/down", false), Strict, nil, ReasonRevocationUnavailable},
		{"unreachable, lenient", p.leaf(t, "/missing.crl", "/down", true), Lenient, nil, 0},
		{"no pointers, strict", p.leaf(t, "", "", false), Strict, nil, ReasonRevocationUnavailable},
		{"no pointers, ifuri", p.leaf(t, "", "", false), IfURI, nil, 0},
		{"unreachable, ifuri", p.leaf(t, "/missing.crl", "", false), IfURI, nil, ReasonRevocationUnavailable},
		{"stale OCSP, strict", p.leaf(t, "", "/ocsp", false), Strict, func() { p.ocspNext = -time.Hour }, ReasonRevocationUnavailable},
		{"OCSP signed by a stranger, strict", p.leaf(t, "", "/ocsp", true), Strict, func() { p.ocspSigner = other }, ReasonRevocationUnavailable},
	}
	for _, c := range cases {
		p.mu.Lock()
		p.ocspNext, p.ocspSigner = 24*time.Hour, p.inter
		if c.setup != nil {
			c.setup()
		}
		p.mu.Unlock()
		var logBuf bytes.Buffer
		v := p.validator(c.policy, slog.New(slog.NewTextHandler(&logBuf, nil)), t0)
		_, err := v.Validate(ctx, c.cred.Cert, c.cred.Chain)
		if ReasonOf(err) != c.reason {
			t.Errorf("%s: %v, want reason %v", c.name, err, c.reason)
		} else if err != nil {
			t.Logf("%s: %v", c.name, err)
		}
		if c.policy != Strict && c.reason == 0 {
			if n := strings.Count(logBuf.String(), "revocation status unavailable"); n != 1 {
				t.Errorf("%s: %d log lines, want 1:\n%s", c.name, n, logBuf.String())
			}
		}
	}
}

// TestOCSPCache checks that an OCSP answer is reused until its nextUpdate.
func TestOCSPCache(t *testing.T) {
	p := newRevocationPKI(t)
	cred := p.leaf(t, "", "/ocsp", false)
	now := t0
	v := p.validator(IfURI, nil, now)
	v.Now = func() time.Time { return now }
	v.Revocation.Now = v.Now
	for range 3 {
		if _, err := v.Validate(context.Background(), cred.Cert, cred.Chain); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.hitCount("/ocsp"); n != 1 {
		t.Errorf("OCSP asked %d times, want 1", n)
	}
	p.mu.Lock()
	p.revoked[cred.Cert.SerialNumber.String()] = true
	p.ocspNext = 48 * time.Hour
	p.mu.Unlock()
	now = t0.Add(25 * time.Hour) // past the cached answer's nextUpdate
	if _, err := v.Validate(context.Background(), cred.Cert, cred.Chain); ReasonOf(err) != ReasonRevokedOCSP {
		t.Errorf("after nextUpdate: %v", err)
	}
}

// TestCRLCache checks that a CRL is fetched once and reused until its
// nextUpdate, then fetched again.
func TestCRLCache(t *testing.T) {
	p := newRevocationPKI(t)
	cred := p.leaf(t, "/inter.crl", "", false)
	now := t0
	v := p.validator(Strict, nil, now)
	v.Now = func() time.Time { return now }
	v.Revocation.Now = v.Now
	for range 3 {
		if _, err := v.Validate(context.Background(), cred.Cert, cred.Chain); err != nil {
			t.Fatal(err)
		}
	}
	if p.hitCount("/inter.crl") != 1 || p.hitCount("/root.crl") != 1 {
		t.Errorf("CRL fetched %d/%d times, want once each", p.hitCount("/inter.crl"), p.hitCount("/root.crl"))
	}
	// A certificate revoked after the CRL was cached is seen only once the
	// cached CRL is past its nextUpdate (the server's CRLs say t0+24h).
	p.mu.Lock()
	p.revoked[cred.Cert.SerialNumber.String()] = true
	p.mu.Unlock()
	if _, err := v.Validate(context.Background(), cred.Cert, cred.Chain); err != nil {
		t.Errorf("cached CRL: %v", err)
	}
	now = t0.Add(25 * time.Hour)
	// The fresh CRL's nextUpdate is still t0+24h, so it is expired.
	if _, err := v.Validate(context.Background(), cred.Cert, cred.Chain); ReasonOf(err) != ReasonRevocationUnavailable {
		t.Errorf("after nextUpdate with an outdated CRL: %v", err)
	}
	if p.hitCount("/inter.crl") != 2 {
		t.Errorf("CRL fetched %d times after nextUpdate, want 2", p.hitCount("/inter.crl"))
	}
}

// TestCRLCacheBound: a Revocation keeps at most maxCachedCRLs parsed CRLs,
// however many distribution points the certificates it checks name.
func TestCRLCacheBound(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: t0.Add(-time.Hour), NextUpdate: t0.Add(time.Hour)}, p.inter.Cert, p.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeFetcher{bodies: map[string][]byte{}}
	for i := range maxCachedCRLs + 50 {
		f.bodies[fmt.Sprintf("http://ca.test/%d.crl", i)] = der
	}
	r := &Revocation{Fetcher: f, Policy: Strict, Now: fixedClock(t0)}
	for u := range f.bodies {
		if _, err := r.crl(context.Background(), u, p.inter.Cert); err != nil {
			t.Fatal(err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.crls) != maxCachedCRLs {
		t.Errorf("%d CRLs kept, want %d", len(r.crls), maxCachedCRLs)
	}
}
