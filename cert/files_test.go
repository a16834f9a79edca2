package cert

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestReload loads credentials and anchors from files, reloads after the
// files changed, and keeps the old contents when a reload fails.
func TestReload(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	dir := t.TempDir()
	write := func(cred *Credential) {
		t.Helper()
		key, err := MarshalPrivateKeyPEM(cred.Key)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "gw.key"), key, 0o600)
		os.WriteFile(filepath.Join(dir, "gw.crt"), MarshalCertificatePEM(cred.Cert), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "cacerts"), 0o755)
	os.WriteFile(filepath.Join(dir, "cacerts", "root.pem"), MarshalCertificatePEM(p.root.Cert), 0o644)
	os.WriteFile(filepath.Join(dir, "inter.pem"), MarshalCertificatePEM(p.inter.Cert), 0o644)
	files := Files{
		Credentials: []CredentialFiles{{Cert: filepath.Join(dir, "gw.crt"), Key: filepath.Join(dir, "gw.key"),
			Chain: []string{filepath.Join(dir, "inter.pem")}, HashURL: "http://c/gw.der"}},
		Anchors: []string{filepath.Join(dir, "cacerts")},
	}
	first := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	write(first)
	s := NewStore(nil, nil)
	if err := s.Reload(files); err != nil {
		t.Fatal(err)
	}
	gw := ID{wire.ID_FQDN, []byte("gw.example.net")}
	got, err := s.Select(gw, nil)
	if err != nil || !got.Cert.Equal(first.Cert) || len(got.Chain) != 1 || got.HashURL != "http://c/gw.der" {
		t.Fatalf("first load: %v", err)
	}
	if len(s.Anchors()) != 1 || !s.Anchors()[0].Equal(p.root.Cert) {
		t.Error("anchor folder not loaded")
	}

	second := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	write(second)
	if err := s.Reload(files); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Select(gw, nil); !got.Cert.Equal(second.Cert) {
		t.Error("reload did not pick up the new certificate")
	}

	// A key that does not match: the reload fails and the store is kept.
	key, _ := MarshalPrivateKeyPEM(first.Key)
	os.WriteFile(filepath.Join(dir, "gw.key"), key, 0o600)
	if err := s.Reload(files); err == nil {
		t.Fatal("reload with a mismatched key succeeded")
	}
	if got, _ := s.Select(gw, nil); !got.Cert.Equal(second.Cert) {
		t.Error("failed reload changed the store")
	}
	// An end-entity certificate is no trust anchor.
	bad := files
	bad.Anchors = []string{filepath.Join(dir, "gw.crt")}
	if _, _, err := LoadFiles(bad); err == nil {
		t.Error("end-entity certificate accepted as trust anchor")
	}
	if _, _, err := LoadFiles(Files{Credentials: []CredentialFiles{{Cert: "x"}}}); err == nil {
		t.Error("credential without a key accepted")
	}
}
