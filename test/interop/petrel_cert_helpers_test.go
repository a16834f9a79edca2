package interop

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/node"
)

// Certificate scenarios against strongSwan: the PKI (one root, one
// intermediate per gateway, so that each side must receive the other's
// intermediate in a CERT payload), petrel's and charon's configurations,
// and petrel as a ProcessNode driven by its own CLI.

var (
	certPetrelOnce sync.Once
	certPetrelBin  string
	certPetrelErr  error
)

// certPetrelBinary builds cmd/petrel once per test binary.
func certPetrelBinary(s *Scenario) string {
	certPetrelOnce.Do(func() {
		dir, err := os.MkdirTemp("", "petrel-cert-interop-")
		if err != nil {
			certPetrelErr = err
			return
		}
		certPetrelBin = filepath.Join(dir, "petrel")
		out, err := exec.Command("go", "build", "-o", certPetrelBin, "../../cmd/petrel").CombinedOutput()
		if err != nil {
			certPetrelErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if certPetrelErr != nil {
		s.Fatalf("petrel binary: %v", certPetrelErr)
	}
	return certPetrelBin
}

// certPKI is the scenario's PKI: root → inter-a → gwa.example (petrel),
// root → inter-b → gwb.example (strongSwan).
type certPKI struct {
	root, interA, interB *cert.CA
	gwa, gwb             *cert.Credential
	revoked              []*big.Int
}

func newCertPKI(s *Scenario, kt cert.KeyType, crlURL string) *certPKI {
	now := time.Now()
	must := func(err error) {
		if err != nil {
			s.Fatalf("pki: %v", err)
		}
	}
	p := &certPKI{}
	var err error
	p.root, err = cert.NewCA(cert.Template{CN: "interop root", Org: "petrel"}, kt, now)
	must(err)
	inter := func(name string) *cert.CA {
		c, k, err := p.root.Issue(cert.Template{CN: "interop " + name, Org: "petrel", IsCA: true}, kt, now)
		must(err)
		return &cert.CA{Cert: c, Key: k}
	}
	p.interA, p.interB = inter("intermediate a"), inter("intermediate b")
	leaf := func(ca *cert.CA, name string) *cert.Credential {
		tm := cert.Template{CN: name, DNS: []string{name}}
		if crlURL != "" {
			tm.CRLURLs = []string{crlURL}
		}
		c, k, err := ca.Issue(tm, kt, now)
		must(err)
		cred, err := cert.NewCredential(c, []*x509.Certificate{ca.Cert}, k)
		must(err)
		return cred
	}
	p.gwa, p.gwb = leaf(p.interA, "gwa.example"), leaf(p.interB, "gwb.example")
	return p
}

// crl is inter-b's CRL listing p.revoked.
func (p *certPKI) crl() []byte {
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}
	for _, s := range p.revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.interB.Cert, p.interB.Key)
	if err != nil {
		panic(err)
	}
	return der
}

func certWriteFile(s *Scenario, path string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		s.Fatalf("%v", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		s.Fatalf("%v", err)
	}
}

// certSide says how one gateway authenticates itself.
type certSide struct {
	PSK    bool // PSK rather than its certificate
	RSAPSS bool // sign with RSASSA-PSS (petrel rsa_pss, charon rsa_pss)
	// Classic: charon without RFC 7427 (signature_authentication = no):
	// no SIGNATURE_HASH_ALGORITHMS, AUTH methods 1 and 9/10/11.
	Classic bool
}

const certPSK = "cert-interop-psk-0123456789abcdef"

// writeSwanCreds puts gwb's key and certificate, the root and inter-b (the
// intermediate charon sends) into charon's swanctl folders.
func (p *certPKI) writeSwanCreds(s *Scenario, sw *StrongSwan) {
	d := filepath.Join(sw.dir, "swanctl")
	certWriteFile(s, filepath.Join(d, "x509", "gwb.pem"), cert.MarshalCertificatePEM(p.gwb.Cert))
	certWriteFile(s, filepath.Join(d, "x509ca", "root.pem"), cert.MarshalCertificatePEM(p.root.Cert))
	certWriteFile(s, filepath.Join(d, "x509ca", "inter-b.pem"), cert.MarshalCertificatePEM(p.interB.Cert))
	key, err := cert.MarshalPrivateKeyPEM(p.gwb.Key)
	if err != nil {
		s.Fatalf("%v", err)
	}
	certWriteFile(s, filepath.Join(d, "private", "gwb.key"), key)
}

// certSwanConf is gwb's swanctl.conf: local and remote each pubkey or psk.
func certSwanConf(t *SiteToSite, local, remote certSide, extra ...string) string {
	auth := func(side certSide, certs string) string {
		if side.PSK {
			return "\t\t\tauth = psk\n"
		}
		return "\t\t\tauth = pubkey\n" + certs
	}
	var b strings.Builder
	fmt.Fprintf(&b, "connections {\n\ts2s {\n\t\tversion = 2\n\t\tlocal_addrs = %s\n\t\tremote_addrs = %s\n\t\tproposals = %s\n",
		t.AddrB, t.AddrA, selfProposals)
	for _, l := range extra {
		fmt.Fprintf(&b, "\t\t%s\n", l)
	}
	fmt.Fprintf(&b, "\t\tlocal {\n%s\t\t\tid = gwb.example\n\t\t}\n", auth(local, "\t\t\tcerts = gwb.pem\n"))
	fmt.Fprintf(&b, "\t\tremote {\n%s\t\t\tid = gwa.example\n\t\t}\n", auth(remote, ""))
	fmt.Fprintf(&b, "\t\tchildren {\n\t\t\ts2s-child {\n\t\t\t\tmode = tunnel\n\t\t\t\tlocal_ts = %s/32\n\t\t\t\tremote_ts = %s/32\n\t\t\t\tesp_proposals = aes256gcm16\n\t\t\t\tstart_action = none\n\t\t\t}\n\t\t}\n\t}\n}\n",
		t.LanB, t.LanA)
	fmt.Fprintf(&b, "secrets {\n\tike-psk {\n\t\tid-a = gwa.example\n\t\tid-b = gwb.example\n\t\tsecret = 0s%s\n\t}\n}\n",
		base64.StdEncoding.EncodeToString([]byte(certPSK)))
	return b.String()
}

// newCertPetrel prepares petrel on gwa: its credential files, the root as
// its only trust anchor, and a configuration with local and remote each
// pubkey or psk. remoteExtra adds lines under remote: (revocation, ...).
func (p *certPKI) newCertPetrel(s *Scenario, t *SiteToSite, local, remote certSide, remoteExtra ...string) *ProcessNode {
	bin := certPetrelBinary(s)
	n := s.NewProcessNode(t.A, "petrel", bin, "daemon", "--config", "{config}")
	n.ConfigName = "petrel.yaml"
	dir := n.Dir()
	chain := append(cert.MarshalCertificatePEM(p.gwa.Cert), cert.MarshalCertificatePEM(p.interA.Cert)...)
	certWriteFile(s, filepath.Join(dir, "gwa.pem"), chain)
	key, err := cert.MarshalPrivateKeyPEM(p.gwa.Key)
	if err != nil {
		s.Fatalf("%v", err)
	}
	certWriteFile(s, filepath.Join(dir, "gwa.key"), key)
	certWriteFile(s, filepath.Join(dir, "root.pem"), cert.MarshalCertificatePEM(p.root.Cert))
	sock := filepath.Join(dir, "petrel.sock")
	localAuth := "      auth: pubkey\n      certs: gwa.pem\n      key: gwa.key\n"
	if local.PSK {
		localAuth = "      auth: psk\n"
	} else if local.RSAPSS {
		localAuth += "      rsa_pss: yes\n"
	}
	remoteAuth := "      auth: pubkey\n      cacerts: root.pem\n"
	for _, l := range remoteExtra {
		remoteAuth += "      " + l + "\n"
	}
	if remote.PSK {
		remoteAuth = "      auth: psk\n"
	}
	n.Config = fmt.Sprintf(`daemon:
  listen: %[1]s
  control_socket: %[2]s
  dataplane: userspace-tun
  log:
    level: debug
connections:
  s2s:
    local_addrs: %[1]s
    remote_addrs: %[3]s
    encap: yes               # strongSwan's kernel-libipsec only does ESP in UDP
    proposals: %[6]s
    local:
%[7]s      id: fqdn:gwa.example
    remote:
%[8]s      id: fqdn:gwb.example
    children:
      s2s-child:
        local_ts: %[4]s/32
        remote_ts: %[5]s/32
        esp_proposals: aes256gcm16
secrets:
  s2s:
    ids: [fqdn:gwa.example, fqdn:gwb.example]
    secret: %[9]s
`, t.AddrA, sock, t.AddrB, t.LanA, t.LanB, selfProposals, localAuth, remoteAuth, certPSK)
	cli := func(ctx context.Context, args ...string) (string, error) {
		return n.Exec(ctx, append(append([]string{bin}, args...), "--socket", sock)...)
	}
	n.Ready = func(ctx context.Context, _ *ProcessNode) error {
		_, err := cli(ctx, "connections")
		return err
	}
	n.InitiateFunc = func(ctx context.Context, _ *ProcessNode, _ string) error {
		out, err := cli(ctx, "up", "s2s")
		if err != nil {
			return fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
		}
		return nil
	}
	n.ListSAsFunc = func(ctx context.Context, _ *ProcessNode) ([]IKESA, error) {
		out, err := cli(ctx, "sessions", "-o", "json")
		if err != nil {
			return nil, err
		}
		var ss []node.Session
		if err := json.Unmarshal([]byte(out), &ss); err != nil {
			return nil, fmt.Errorf("petrel sessions: %v: %s", err, out)
		}
		return certSessionsToSAs(ss), nil
	}
	return n
}

// certSessionsToSAs maps petrel's listing onto the harness's view.
func certSessionsToSAs(ss []node.Session) []IKESA {
	var out []IKESA
	for _, s := range ss {
		sa := IKESA{Name: s.Conn, State: strings.ToUpper(s.State), Initiator: s.Role == "initiator",
			SPIi: s.SPIi, SPIr: s.SPIr}
		for _, c := range s.Children {
			sa.Children = append(sa.Children, ChildSA{Name: c.Name, State: "INSTALLED", Protocol: "ESP", Encap: c.UDPEncap,
				SPIIn: c.InSPI, SPIOut: c.OutSPI, LocalTS: c.LocalTS, RemoteTS: c.RemoteTS, BytesIn: c.BytesRx, BytesOut: c.BytesTx})
		}
		out = append(out, sa)
	}
	return out
}

// certSession returns petrel's listing of its one session.
func certSession(s *Scenario, n *ProcessNode) node.Session {
	out, err := n.Exec(s.ctx(10*time.Second), certPetrelBinary(s), "sessions", "-o", "json", "--socket", filepath.Join(n.Dir(), "petrel.sock"))
	if err != nil {
		s.Fatalf("petrel sessions: %v: %s", err, out)
	}
	var ss []node.Session
	if err := json.Unmarshal([]byte(out), &ss); err != nil || len(ss) != 1 {
		s.Fatalf("petrel sessions: %v: %s", err, out)
	}
	return ss[0]
}

// certLogContains reports whether a node's log holds want.
func certLogContains(n Node, want string) bool {
	for _, l := range n.Logs() {
		if b, err := os.ReadFile(l); err == nil && strings.Contains(string(b), want) {
			return true
		}
	}
	return false
}
