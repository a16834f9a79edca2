package node

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/config"
)

// certPair turns a loopback pair into certificate authentication: a root,
// an intermediate, and leaves for a.petrel.test and b.petrel.test whose
// certificates name crl (if set) as their CRL distribution point; revoked
// lists the peers whose certificates the CRL revokes. pubkeyA and pubkeyB
// choose which sides prove with a certificate (the others keep the PSK).
func certPair(t *testing.T, pubkeyA, pubkeyB bool, revocation string, revoked ...string) (a, b *Node) {
	a, b, _ = certPairFiles(t, pubkeyA, pubkeyB, revocation, revoked...)
	return a, b
}

// certPairFiles is certPair that also returns a's configuration file.
func certPairFiles(t *testing.T, pubkeyA, pubkeyB bool, revocation string, revoked ...string) (a, b *Node, fileA string) {
	t.Helper()
	return certPairSlow(t, 0, pubkeyA, pubkeyB, revocation, revoked...)
}

// certPairSlow is certPairFiles whose CRL server takes crlDelay to answer.
func certPairSlow(t *testing.T, crlDelay time.Duration, pubkeyA, pubkeyB bool, revocation string, revoked ...string) (a, b *Node, fileA string) {
	t.Helper()
	dir := t.TempDir()
	pa, pb, err := WriteLoopbackPair(dir, LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	root, err := cert.NewCA(cert.Template{CN: "node test root"}, cert.KeyECDSAP256, now)
	if err != nil {
		t.Fatal(err)
	}
	ic, ik, err := root.Issue(cert.Template{CN: "node test intermediate", IsCA: true}, cert.KeyECDSAP256, now)
	if err != nil {
		t.Fatal(err)
	}
	inter := &cert.CA{Cert: ic, Key: ik}
	var revokedSerials []*big.Int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(crlDelay):
		case <-r.Context().Done():
			return
		}
		tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}
		for _, s := range revokedSerials {
			tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
				x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
		}
		der, err := x509.CreateRevocationList(rand.Reader, tmpl, inter.Cert, inter.Key)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(der)
	}))
	t.Cleanup(srv.Close)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("root.pem", cert.MarshalCertificatePEM(root.Cert))
	write("inter.pem", cert.MarshalCertificatePEM(ic))
	for _, n := range []string{"a", "b"} {
		c, k, err := inter.Issue(cert.Template{CN: n + ".petrel.test", DNS: []string{n + ".petrel.test"}, CRLURLs: []string{srv.URL + "/inter.crl"}}, cert.KeyECDSAP256, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revoked {
			if r == n {
				revokedSerials = append(revokedSerials, c.SerialNumber)
			}
		}
		kb, err := cert.MarshalPrivateKeyPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		write(n+".pem", cert.MarshalCertificatePEM(c))
		write(n+".key", kb)
	}
	local := func(n string, pubkey bool) string {
		if !pubkey {
			return "      auth: psk\n"
		}
		return "      auth: pubkey\n      certs: [" + n + ".pem, inter.pem]\n      key: " + n + ".key\n"
	}
	remote := func(pubkey bool) string {
		if !pubkey {
			return "      auth: psk\n"
		}
		return "      auth: pubkey\n      cacerts: root.pem\n      revocation: " + revocation + "\n"
	}
	load := func(p LoopbackPeer, me, peer string, meCert, peerCert bool) *config.Config {
		text, err := os.ReadFile(p.File)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(text), "    local:\n      auth: psk\n", "    local:\n"+local(me, meCert), 1)
		s = strings.Replace(s, "    remote:\n      auth: psk\n", "    remote:\n"+remote(peerCert), 1)
		if err := os.WriteFile(p.File, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(p.File)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfgA, cfgB := load(pa, "a", "b", pubkeyA, pubkeyB), load(pb, "b", "a", pubkeyB, pubkeyA)
	if b, err = New(Options{Config: cfgB, Logger: testLogger(t).With("node", "b")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	if a, err = New(Options{Config: cfgA, Logger: testLogger(t).With("node", "a")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a, b, pa.File
}

// TestCertSessions: two nodes authenticate with certificates under an
// intermediate (checked against a CRL served over HTTP), and the session
// listing and the ike-up event show the methods and the peer certificate.
// Revocation is "ifuri": the leaves name the CRL, the intermediate names
// none.
func TestCertSessions(t *testing.T) {
	a, b := certPair(t, true, true, "ifuri")
	events, cancelEvents := a.Subscribe()
	defer cancelEvents()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	sa, err := a.Sessions()
	if err != nil || len(sa) != 1 {
		t.Fatalf("a sessions: %v %v", sa, err)
	}
	s := sa[0]
	if s.LocalAuth != "pubkey DIGITAL_SIGNATURE/ECDSA-SHA256" || s.RemoteAuth != s.LocalAuth {
		t.Errorf("auth %q / %q", s.LocalAuth, s.RemoteAuth)
	}
	if s.LocalCertSubject != "CN=a.petrel.test" || s.RemoteCertSubject != "CN=b.petrel.test" || s.RemoteCertIssuer != "CN=node test intermediate" {
		t.Errorf("certificates: local %q remote %q issuer %q", s.LocalCertSubject, s.RemoteCertSubject, s.RemoteCertIssuer)
	}
	if sb, _ := b.Sessions(); len(sb) != 1 || sb[0].RemoteCertSubject != "CN=a.petrel.test" {
		t.Errorf("b sessions: %+v", sb)
	}
	for e := range events {
		if e.Kind == "ike-up" {
			if e.RemoteAuth != "pubkey DIGITAL_SIGNATURE/ECDSA-SHA256" || e.RemoteCertSubject != "CN=b.petrel.test" || e.RemoteCertIssuer != "CN=node test intermediate" {
				t.Errorf("ike-up event %+v", e)
			}
			break
		}
	}
}

// TestCertAsymmetricSessions: a proves with the PSK and b with its
// certificate; the listing shows each side's own method.
func TestCertAsymmetricSessions(t *testing.T) {
	a, _ := certPair(t, false, true, "none")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Sessions()
	if len(sa) != 1 || sa[0].LocalAuth != "psk" || sa[0].RemoteAuth != "pubkey DIGITAL_SIGNATURE/ECDSA-SHA256" || sa[0].LocalCertSubject != "" {
		t.Fatalf("sessions %+v", sa)
	}
}

// TestCertRevokedByCRL: b's certificate is on the CRL that a fetches over
// HTTP (cert/httpfetch); a refuses it. TestCertSessions is the same setup
// with nothing revoked.
func TestCertRevokedByCRL(t *testing.T) {
	a, _ := certPair(t, true, true, "ifuri", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Up(ctx, "b")
	if err == nil || !strings.Contains(err.Error(), "AUTHENTICATION_FAILED") {
		t.Fatalf("Up: %v, want AUTHENTICATION_FAILED", err)
	}
}

// TestCertSlowCRLKeepsLoopFree: the CRL server takes 1 s. Each node's
// first verification of the other's certificate needs that CRL; the fetch
// runs in the background and the IKE_AUTH waits set aside, so both nodes'
// event loops keep serving (here: the session listing, which runs on the
// loop) while the SA comes up once the CRLs are in. Before, each loop sat
// in the fetch for the whole second.
func TestCertSlowCRLKeepsLoopFree(t *testing.T) {
	const delay = time.Second
	a, b, _ := certPairSlow(t, delay, true, true, "ifuri")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	type result struct {
		ev  Event
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		ev, err := a.Up(ctx, "b")
		done <- result{ev, err}
	}()
	var slowest time.Duration
	calls := 0
	var res result
wait:
	for {
		select {
		case res = <-done:
			break wait
		case <-time.After(20 * time.Millisecond):
		}
		for _, n := range []*Node{a, b} {
			t0 := time.Now()
			if _, err := n.Sessions(); err != nil {
				t.Fatal(err)
			}
			slowest = max(slowest, time.Since(t0))
			calls++
		}
	}
	took := time.Since(start)
	if res.err != nil {
		t.Fatalf("Up: %v", res.err)
	}
	t.Logf("up in %v; %d session listings during it, the slowest %v", took, calls, slowest)
	if took < delay {
		t.Errorf("up in %v, before the CRL could have come", took)
	}
	if calls < 20 || slowest > 500*time.Millisecond {
		t.Errorf("event loops blocked: %d listings, the slowest took %v", calls, slowest)
	}
	sa, err := a.Sessions()
	if err != nil || len(sa) != 1 || sa[0].RemoteCertSubject != "CN=b.petrel.test" {
		t.Fatalf("a sessions: %+v %v", sa, err)
	}
}

// TestCertReload: `petrel reload` with the same certificate files keeps
// the connection (and its SA); new files for a's certificate and key make
// it changed.
func TestCertReload(t *testing.T) {
	a, _, fileA := certPairFiles(t, true, true, "none")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	reload := func() ReloadResult {
		cfg, err := config.Load(fileA)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Reload(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := reload(); len(res.Unchanged) != 1 || len(res.Changed) != 0 {
		t.Fatalf("same files: %+v", res)
	}
	dir := filepath.Dir(fileA)
	for _, f := range []string{".pem", ".key"} {
		b, err := os.ReadFile(filepath.Join(dir, "b"+f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "a"+f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if res := reload(); len(res.Changed) != 1 || res.Changed[0] != "b" {
		t.Fatalf("new certificate: %+v", res)
	}
}
