package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// testPKIFiles writes a root, an intermediate and one leaf per name under
// dir: root.pem, inter.pem, NAME.pem, NAME.key.
func testPKIFiles(t *testing.T, dir string, now time.Time, names ...string) {
	t.Helper()
	root, err := cert.NewCA(cert.Template{CN: "cfg root"}, cert.KeyECDSAP256, now)
	if err != nil {
		t.Fatal(err)
	}
	ic, ik, err := root.Issue(cert.Template{CN: "cfg intermediate", IsCA: true}, cert.KeyECDSAP256, now)
	if err != nil {
		t.Fatal(err)
	}
	inter := &cert.CA{Cert: ic, Key: ik}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("root.pem", cert.MarshalCertificatePEM(root.Cert))
	write("inter.pem", cert.MarshalCertificatePEM(ic))
	for _, n := range names {
		c, k, err := inter.Issue(cert.Template{CN: n, DNS: []string{n}}, cert.KeyECDSAP256, now)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := cert.MarshalPrivateKeyPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		write(n+".pem", cert.MarshalCertificatePEM(c))
		write(n+".key", kb)
	}
}

func pubkeyConfig(local, remote, localAuth, remoteAuth, remoteID string) string {
	side := func(auth, extra string) string {
		return "      auth: " + auth + "\n" + extra
	}
	l := side(localAuth, map[string]string{"pubkey": "      certs: [" + local + ".pem, inter.pem]\n      key: " + local + ".key\n"}[localAuth])
	r := side(remoteAuth, map[string]string{"pubkey": "      cacerts: root.pem\n      revocation: none\n      eku: server_auth, ipsec_ike\n"}[remoteAuth])
	if remoteID != "" {
		r += "      id: " + remoteID + "\n"
	}
	addrs := map[string]string{"a.example.net": "192.0.2.1", "b.example.net": "192.0.2.2"}
	return "connections:\n  gw:\n    local_addrs: " + addrs[local] + "\n    remote_addrs: " + addrs[remote] +
		"\n    local:\n" + l + "    remote:\n" + r +
		"    children:\n      net:\n        local_ts: 10.1.0.0/24\n        remote_ts: 10.2.0.0/24\n" +
		"secrets:\n  ab:\n    secret: config-test-psk\n"
}

// runPair drives IKE_SA_INIT and IKE_AUTH between endpoints built from two
// configurations and returns their SAs' authentication info.
func runPair(t *testing.T, a, b *Config, now time.Time) (ike.AuthInfo, ike.AuthInfo, bool) {
	t.Helper()
	eps := make([]*ike.Endpoint, 2)
	for i, c := range []*Config{a, b} {
		ec, err := c.EndpointConfig()
		if err != nil {
			t.Fatal(err)
		}
		ec.CookieThreshold = -1
		if eps[i], err = ike.NewEndpoint(ec, now); err != nil {
			t.Fatal(err)
		}
	}
	var out ike.Output
	if _, err := eps[0].Initiate(now, "gw", &out); err != nil {
		t.Fatal(err)
	}
	up := 0
	for turn := 1; turn < 8 && len(out.Datagrams) > 0; turn++ {
		ds := append([]ike.Datagram(nil), out.Datagrams...)
		out.Reset()
		for _, d := range ds {
			eps[turn%2].HandleDatagram(now, d.Src, d.Dst, d.Data, &out)
		}
		for _, e := range out.Events {
			if e.Kind == ike.EventIKEUp {
				up++
			}
		}
	}
	var infos [2]ike.AuthInfo
	for i, ep := range eps {
		ep.Range(func(sa *ike.SA) bool { infos[i] = sa.AuthInfo(); return false })
	}
	return infos[0], infos[1], up == 2
}

// TestPubkeyConfig: two configurations with auth: pubkey (certificate
// files, an intermediate, trust anchors, EKU policy) come up against each
// other, and so do the asymmetric PSK/pubkey setups both ways.
func TestPubkeyConfig(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	testPKIFiles(t, dir, now, "a.example.net", "b.example.net")
	for _, tc := range []struct{ aLocal, aRemote string }{
		{"pubkey", "pubkey"}, {"psk", "pubkey"}, {"pubkey", "psk"},
	} {
		t.Run(tc.aLocal+"/"+tc.aRemote, func(t *testing.T) {
			aFile := filepath.Join(dir, "a.yaml")
			bFile := filepath.Join(dir, "b.yaml")
			// A's remote id stays %any for pubkey (the DN is checked against the
			// certificate); PSK needs the secret's identities to match.
			if err := os.WriteFile(aFile, []byte(pubkeyConfig("a.example.net", "b.example.net", tc.aLocal, tc.aRemote, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bFile, []byte(pubkeyConfig("b.example.net", "a.example.net", tc.aRemote, tc.aLocal, "")), 0o600); err != nil {
				t.Fatal(err)
			}
			a, err := Load(aFile)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Load(bFile)
			if err != nil {
				t.Fatal(err)
			}
			ai, bi, ok := runPair(t, a, b, now)
			if !ok {
				t.Fatalf("not up: A %+v, B %+v", ai, bi)
			}
			if tc.aRemote == "pubkey" && (ai.Remote.Method != wire.AuthDigitalSignature || ai.Remote.Subject != "CN=b.example.net" || !strings.Contains(ai.Remote.Issuer, "cfg intermediate")) {
				t.Errorf("A saw B as %+v", ai.Remote)
			}
			if tc.aLocal == "pubkey" && bi.Remote.Subject != "CN=a.example.net" {
				t.Errorf("B saw A as %+v", bi.Remote)
			}
			if tc.aLocal == "psk" && bi.Remote.Method != wire.AuthSharedKeyMIC {
				t.Errorf("B saw A as %+v", bi.Remote)
			}
		})
	}
}

// TestPubkeyReload: loading the configuration again (petrel reload) reads
// the certificate files again.
func TestPubkeyReload(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	testPKIFiles(t, dir, now, "a.example.net")
	f := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(f, []byte(pubkeyConfig("a.example.net", "b.example.net", "pubkey", "pubkey", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	serial := func() string {
		cfg, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Connections[0].Local.Pubkey.Credentials[0].Cert.SerialNumber.String()
	}
	first := serial()
	testPKIFiles(t, dir, now, "a.example.net") // a new root, intermediate and leaf
	if serial() == first {
		t.Fatal("reload kept the old certificate")
	}
}

// TestPubkeyReloadUnchanged: loading the same files twice gives the same
// pubkey settings (Pubkey.Same), so `petrel reload` leaves an unchanged
// connection's SAs alone; new certificates make them differ.
func TestPubkeyReloadUnchanged(t *testing.T) {
	dir := t.TempDir()
	testPKIFiles(t, dir, time.Now(), "a.example.net")
	f := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(f, []byte(pubkeyConfig("a.example.net", "b.example.net", "pubkey", "pubkey", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func() *Connection {
		cfg, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Connections[0]
	}
	a, b := load(), load()
	if !a.Local.Pubkey.Same(b.Local.Pubkey) || !a.Remote.Pubkey.Same(b.Remote.Pubkey) {
		t.Fatal("the same files loaded twice differ")
	}
	testPKIFiles(t, dir, time.Now(), "a.example.net")
	c := load()
	if a.Local.Pubkey.Same(c.Local.Pubkey) || a.Remote.Pubkey.Same(c.Remote.Pubkey) {
		t.Fatal("new certificates and anchors compare equal")
	}
}

// TestPubkeyPolicy: accepted methods, schemes, EKUs, revocation and
// hash-and-URL reach the core's verifier.
func TestPubkeyPolicy(t *testing.T) {
	dir := t.TempDir()
	testPKIFiles(t, dir, time.Now(), "a.example.net")
	text := strings.Replace(pubkeyConfig("a.example.net", "b.example.net", "pubkey", "pubkey", ""),
		"      revocation: none\n", "      revocation: strict\n      methods: [digital_signature, ecdsa384]\n"+
			"      signatures: ECDSA-SHA384, rsa-pss-sha256\n      hash_url: yes\n", 1)
	text = strings.Replace(text, "      key: a.example.net.key\n", "      key: a.example.net.key\n      cert_url: http://certs.example.net/a.der\n      rsa_pss: yes\n", 1)
	f := filepath.Join(dir, "a.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := cfg.IKEConnections()
	if err != nil {
		t.Fatal(err)
	}
	la := conns[0].LocalAuth.(*ike.CertAuth)
	if !la.Local.RSAPSS || la.Local.Store.Credentials()[0].HashURL != "http://certs.example.net/a.der" || len(la.Local.Store.Credentials()[0].Chain) != 1 {
		t.Errorf("local: %+v", la.Local)
	}
	r := conns[0].RemoteAuth.(*ike.CertVerifier).Remote
	if r.Policy == nil || !reflect.DeepEqual(r.Policy.Methods, []wire.AuthMethod{wire.AuthDigitalSignature, wire.AuthECDSA384}) ||
		!reflect.DeepEqual(r.Policy.Schemes, []cert.Scheme{cert.SchemeECDSASHA384, cert.SchemeRSAPSSSHA256}) {
		t.Errorf("policy %+v", r.Policy)
	}
	if r.Validator.Revocation == nil || r.Validator.Revocation.Policy != cert.Strict || r.HashURL == nil ||
		!reflect.DeepEqual(r.Validator.EKUs, []cert.EKU{cert.EKUServerAuth, cert.EKUIPsecIKE}) {
		t.Errorf("validator %+v, hash-and-URL %v", r.Validator, r.HashURL != nil)
	}
}
