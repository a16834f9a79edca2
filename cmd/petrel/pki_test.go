package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/cert/httpfetch"
	"github.com/petrel-vpn/petrel/wire"
)

func pkiRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := pkiRun(t, args...)
	if err != nil {
		t.Fatalf("petrel %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func loadCred(t *testing.T, dir, name string) *cert.Credential {
	t.Helper()
	cs, err := cert.LoadCertificates(filepath.Join(dir, name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := cert.LoadPrivateKey(filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	if _, err := os.Stat(filepath.Join(dir, name+".chain.crt")); err == nil {
		if chain, err = cert.LoadCertificates(filepath.Join(dir, name+".chain.crt")); err != nil {
			t.Fatal(err)
		}
	}
	cred, err := cert.NewCredential(cs[0], chain, key)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// pkiTree makes root -> intermediate -> gateway (ECDSA) and client (RSA)
// with `petrel pki`.
func pkiTree(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	mustRun(t, "pki", "ca", "--cn", "Petrel Test Root", "--org", "petrel", "--out", filepath.Join(d, "ca"))
	mustRun(t, "pki", "issue", "--ca", filepath.Join(d, "ca"), "--cn", "Petrel Intermediate", "--intermediate", "--out", filepath.Join(d, "inter"))
	mustRun(t, "pki", "issue", "--ca", filepath.Join(d, "inter"), "--cn", "gw.example.net",
		"--san", "gw.example.net", "--san", "192.0.2.1", "--out", filepath.Join(d, "gw"))
	mustRun(t, "pki", "issue", "--ca", filepath.Join(d, "inter"), "--cn", "alice", "--san", "alice@example.net",
		"--client", "--rsa", "--out", filepath.Join(d, "alice"))
	return d
}

func TestPKICommands(t *testing.T) {
	d := pkiTree(t)
	for _, key := range []string{"ca/ca.key", "inter/ca.key", "gw/gw.example.net.key", "alice/alice.key"} {
		st, err := os.Stat(filepath.Join(d, key))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, st.Mode().Perm())
		}
	}
	roots, err := cert.LoadCertificates(filepath.Join(d, "ca", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	gw, alice := loadCred(t, d+"/gw", "gw.example.net"), loadCred(t, d+"/alice", "alice")
	if _, ok := gw.Key.(*ecdsa.PrivateKey); !ok {
		t.Errorf("gateway key %T, want ECDSA by default", gw.Key)
	}
	if _, ok := alice.Key.(*rsa.PrivateKey); !ok {
		t.Errorf("--rsa key %T", alice.Key)
	}
	if !slices.Contains(gw.Cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(alice.Cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("EKUs: gateway %v, client %v", gw.Cert.ExtKeyUsage, alice.Cert.ExtKeyUsage)
	}
	if len(gw.Chain) != 1 || gw.Chain[0].Subject.CommonName != "Petrel Intermediate" {
		t.Fatalf("gateway chain %v", gw.Chain)
	}
	store := cert.NewStore(nil, roots)
	for _, c := range []struct {
		cred *cert.Credential
		id   cert.ID
		ekus []cert.EKU
	}{
		{gw, cert.ID{Type: wire.ID_FQDN, Data: []byte("gw.example.net")}, []cert.EKU{cert.EKUIKEIntermediate}},
		{gw, cert.ID{Type: wire.ID_IPV4_ADDR, Data: []byte{192, 0, 2, 1}}, nil},
		{alice, cert.ID{Type: wire.ID_RFC822_ADDR, Data: []byte("alice@example.net")}, []cert.EKU{cert.EKUClientAuth}},
	} {
		local := &cert.Local{Store: cert.NewStore([]*cert.Credential{c.cred}, nil)}
		octets := []byte("signed octets for " + c.id.String())
		ps, err := local.Prove(c.cred, cert.ProveInput{SignedOctets: octets, PeerHashes: cert.SupportedHashes, PeerSentHashes: true})
		if err != nil {
			t.Fatal(err)
		}
		remote := &cert.Remote{Validator: &cert.Validator{Store: store, EKUs: c.ekus}}
		info, err := remote.Verify(context.Background(), cert.VerifyInput{SignedOctets: octets, PeerID: c.id, Payloads: ps})
		if err != nil {
			t.Errorf("%v: %v", c.id, err)
		} else if info.Issuer != "CN=Petrel Intermediate" || len(info.Chain) != 3 {
			t.Errorf("%v: issuer %q, chain %d", c.id, info.Issuer, len(info.Chain))
		}
	}

	out := mustRun(t, "pki", "print", filepath.Join(d, "gw", "gw.example.net.crt"))
	for _, want := range []string{"subject:  CN=gw.example.net", "issuer:   CN=Petrel Intermediate", "altName:  DNS:gw.example.net",
		"altName:  IP:192.0.2.1", "ECDSA P-256", "serverAuth ipsecIKE ikeIntermediate"} {
		if !strings.Contains(out, want) {
			t.Errorf("print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRIVATE") {
		t.Error("print shows key material")
	}

	// Refusals: existing key, bad SAN, missing CA, --rsa with --ed25519.
	for _, args := range [][]string{
		{"pki", "ca", "--cn", "again", "--out", filepath.Join(d, "ca")},
		{"pki", "issue", "--ca", filepath.Join(d, "inter"), "--cn", "x", "--san", "not a name", "--out", filepath.Join(d, "x")},
		{"pki", "issue", "--ca", filepath.Join(d, "nowhere"), "--cn", "x", "--out", filepath.Join(d, "y")},
		{"pki", "issue", "--ca", filepath.Join(d, "gw"), "--cn", "x", "--out", filepath.Join(d, "z")},
		{"pki", "ca", "--cn", "x", "--rsa", "--ed25519", "--out", filepath.Join(d, "w")},
		{"pki", "print", filepath.Join(d, "gw", "gw.example.net.key")},
	} {
		if out, err := pkiRun(t, args...); err == nil {
			t.Errorf("petrel %s succeeded:\n%s", strings.Join(args, " "), out)
		}
	}
	// The existing CA key was not replaced.
	if _, err := cert.LoadPrivateKey(filepath.Join(d, "ca", "ca.key")); err != nil {
		t.Error(err)
	}
}

// strongSwanPKI returns the path of strongSwan's pki tool or skips.
func strongSwanPKI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("pki")
	if err != nil || !strings.Contains(helpText(p), "strongSwan") {
		t.Skip("strongSwan pki (strongswan-pki) not installed")
	}
	return p
}

func helpText(p string) string {
	out, _ := exec.Command(p, "--help").CombinedOutput()
	return string(out)
}

// TestStrongSwanVerifiesPetrelCertificates runs `pki --verify` on the
// certificates `petrel pki` issued, through the intermediate.
func TestStrongSwanVerifiesPetrelCertificates(t *testing.T) {
	pki := strongSwanPKI(t)
	d := pkiTree(t)
	for _, leaf := range []string{"gw/gw.example.net.crt", "alice/alice.crt", "inter/ca.crt"} {
		out, err := exec.Command(pki, "--verify", "--in", filepath.Join(d, leaf),
			"--cacert", filepath.Join(d, "inter", "ca.crt"), "--cacert", filepath.Join(d, "ca", "ca.crt")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "certificate trusted") {
			t.Errorf("pki --verify %s: %v\n%s", leaf, err, out)
		}
	}
	// And a certificate from another CA is not trusted by strongSwan either.
	other := t.TempDir()
	mustRun(t, "pki", "ca", "--cn", "Other Root", "--out", other)
	out, err := exec.Command(pki, "--verify", "--in", filepath.Join(d, "gw", "gw.example.net.crt"),
		"--cacert", filepath.Join(other, "ca.crt")).CombinedOutput()
	if err == nil {
		t.Errorf("pki --verify against the wrong CA succeeded:\n%s", out)
	}
}

// TestPetrelAcceptsStrongSwanCertificates builds root -> intermediate ->
// gateway/client with strongSwan's pki (ECDSA and RSA), loads them into
// petrel's store, runs a signature exchange with the strongSwan-made key,
// and then revokes the gateway with a CRL signed by `pki --signcrl` and
// served on 127.0.0.1 at the certificate's distribution point.
func TestPetrelAcceptsStrongSwanCertificates(t *testing.T) {
	pki := strongSwanPKI(t)
	var crl atomic.Pointer[[]byte]
	setCRL := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		crl.Store(&b)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := crl.Load()
		if r.URL.Path != "/inter.crl" || b == nil {
			http.NotFound(w, r)
			return
		}
		w.Write(*b)
	}))
	defer srv.Close()
	for _, kt := range []struct{ typ, size string }{{"ecdsa", "256"}, {"rsa", "2048"}} {
		t.Run(kt.typ, func(t *testing.T) {
			d := t.TempDir()
			sw := func(out string, args ...string) {
				t.Helper()
				cmd := exec.Command(pki, args...)
				cmd.Dir = d
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Run(); err != nil {
					t.Fatalf("pki %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
				}
				if out != "" {
					if err := os.WriteFile(filepath.Join(d, out), stdout.Bytes(), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, k := range []string{"ca.key", "inter.key", "gw.key", "client.key"} {
				sw(k, "--gen", "--type", kt.typ, "--size", kt.size, "--outform", "pem")
			}
			sw("ca.crt", "--self", "--ca", "--lifetime", "3650", "--in", "ca.key", "--type", "priv",
				"--dn", "C=CH, O=strongSwan, CN=strongSwan Root CA", "--outform", "pem")
			sw("inter.crt", "--issue", "--ca", "--in", "inter.key", "--type", "priv", "--cacert", "ca.crt", "--cakey", "ca.key",
				"--dn", "C=CH, O=strongSwan, CN=strongSwan Intermediate CA", "--outform", "pem")
			sw("gw.crt", "--issue", "--in", "gw.key", "--type", "priv", "--cacert", "inter.crt", "--cakey", "inter.key",
				"--dn", "C=CH, O=strongSwan, CN=gw.example.net", "--san", "gw.example.net", "--flag", "serverAuth",
				"--flag", "ikeIntermediate", "--crl", srv.URL+"/inter.crl", "--outform", "pem")
			sw("client.crt", "--issue", "--in", "client.key", "--type", "priv", "--cacert", "inter.crt", "--cakey", "inter.key",
				"--dn", "C=CH, O=strongSwan, CN=carol@example.net", "--san", "carol@example.net", "--flag", "clientAuth", "--outform", "pem")

			load := func(name string) *x509.Certificate {
				cs, err := cert.LoadCertificates(filepath.Join(d, name))
				if err != nil {
					t.Fatal(err)
				}
				return cs[0]
			}
			root, inter := load("ca.crt"), load("inter.crt")
			store := cert.NewStore(nil, []*x509.Certificate{root})
			fetch := &httpfetch.Fetcher{}
			quiet := slog.New(slog.DiscardHandler)
			verify := func(leafName, keyName string, id cert.ID, ekus []cert.EKU, rev *cert.Revocation) error {
				key, err := cert.LoadPrivateKey(filepath.Join(d, keyName))
				if err != nil {
					t.Fatal(err)
				}
				cred, err := cert.NewCredential(load(leafName), []*x509.Certificate{inter}, key)
				if err != nil {
					t.Fatal(err)
				}
				local := &cert.Local{Store: cert.NewStore([]*cert.Credential{cred}, nil)}
				cr := store.CertReq()
				chosen, claimed, err := local.Choose(id, cert.CertReqAuthorities([]wire.Payload{cr}))
				if err != nil {
					t.Fatal(err)
				}
				octets := []byte("signed octets")
				ps, err := local.Prove(chosen, cert.ProveInput{SignedOctets: octets, PeerHashes: cert.SupportedHashes, PeerSentHashes: true})
				if err != nil {
					t.Fatal(err)
				}
				remote := &cert.Remote{Validator: &cert.Validator{Store: store, EKUs: ekus, Revocation: rev}}
				_, err = remote.Verify(context.Background(), cert.VerifyInput{SignedOctets: octets, PeerID: claimed, Payloads: ps})
				return err
			}
			gwID := cert.ID{Type: wire.ID_FQDN, Data: []byte("gw.example.net")}
			if err := verify("gw.crt", "gw.key", gwID, []cert.EKU{cert.EKUIPsecIKE, cert.EKUIKEIntermediate}, nil); err != nil {
				t.Errorf("strongSwan gateway certificate: %v", err)
			}
			// The subject DN as identity (strongSwan's default).
			if err := verify("gw.crt", "gw.key", cert.ID{}, nil, nil); err != nil {
				t.Errorf("strongSwan gateway certificate by DN: %v", err)
			}
			if err := verify("client.crt", "client.key", cert.ID{Type: wire.ID_RFC822_ADDR, Data: []byte("carol@example.net")},
				[]cert.EKU{cert.EKUClientAuth}, nil); err != nil {
				t.Errorf("strongSwan client certificate: %v", err)
			}
			// CRL revocation: first an empty CRL, then one revoking gw.
			sw("empty.crl", "--signcrl", "--cacert", "inter.crt", "--cakey", "inter.key", "--lifetime", "1")
			setCRL(filepath.Join(d, "empty.crl"))
			if err := verify("gw.crt", "gw.key", gwID, nil, &cert.Revocation{Fetcher: fetch, Policy: cert.IfURI, Log: quiet}); err != nil {
				t.Errorf("with strongSwan's empty CRL: %v", err)
			}
			sw("revoked.crl", "--signcrl", "--cacert", "inter.crt", "--cakey", "inter.key", "--lifetime", "1",
				"--reason", "key-compromise", "--cert", "gw.crt")
			setCRL(filepath.Join(d, "revoked.crl"))
			err := verify("gw.crt", "gw.key", gwID, nil, &cert.Revocation{Fetcher: fetch, Policy: cert.IfURI, Log: quiet})
			if cert.ReasonOf(err) != cert.ReasonRevokedCRL {
				t.Errorf("with strongSwan's CRL revoking gw: %v", err)
			}
			crl.Store(nil)
		})
	}
}
