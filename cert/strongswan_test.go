package cert

import (
	"crypto/x509"
	"encoding/asn1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStrongSwanAlgorithmIdentifiers cross-checks the RFC 7427
// AlgorithmIdentifiers with strongSwan: its pki signs self-signed
// certificates with every scheme, and the certificate's signatureAlgorithm
// (strongSwan builds it with the same code as its IKE AUTH payloads) must
// map to the right scheme and its signature over the TBSCertificate must
// verify with petrel's verifier, including RSASSA-PSS parameters.
func TestStrongSwanAlgorithmIdentifiers(t *testing.T) {
	pki, err := exec.LookPath("pki")
	if err != nil {
		t.Skip("strongSwan pki (strongswan-pki) not installed")
	}
	if out, _ := exec.Command(pki, "--help").CombinedOutput(); !strings.Contains(string(out), "strongSwan") {
		t.Skip("pki is not strongSwan's")
	}
	dir := t.TempDir()
	for _, c := range []struct {
		typ, size, digest, padding string
		want                       Scheme
	}{
		{"ecdsa", "256", "sha256", "", SchemeECDSASHA256},
		{"ecdsa", "384", "sha384", "", SchemeECDSASHA384},
		{"ecdsa", "521", "sha512", "", SchemeECDSASHA512},
		{"ecdsa", "256", "sha384", "", SchemeECDSASHA384},
		{"rsa", "2048", "sha256", "pkcs1", SchemeRSAPKCS1SHA256},
		{"rsa", "2048", "sha384", "pkcs1", SchemeRSAPKCS1SHA384},
		{"rsa", "2048", "sha512", "pkcs1", SchemeRSAPKCS1SHA512},
		{"rsa", "2048", "sha256", "pss", SchemeRSAPSSSHA256},
		{"rsa", "2048", "sha384", "pss", SchemeRSAPSSSHA384},
		{"rsa", "2048", "sha512", "pss", SchemeRSAPSSSHA512},
		{"ed25519", "", "", "", SchemeEd25519},
	} {
		name := c.typ + c.size + c.digest + c.padding
		keyFile := filepath.Join(dir, name+".key")
		gen := []string{"--gen", "--type", c.typ, "--outform", "pem"}
		if c.size != "" {
			gen = append(gen, "--size", c.size)
		}
		key, err := exec.Command(pki, gen...).Output()
		if err != nil {
			t.Fatalf("%s: pki --gen: %v", name, err)
		}
		os.WriteFile(keyFile, key, 0o600)
		self := []string{"--self", "--in", keyFile, "--type", "priv", "--dn", "CN=" + name, "--outform", "der"}
		if c.digest != "" {
			self = append(self, "--digest", c.digest)
		}
		if c.padding != "" {
			self = append(self, "--rsa-padding", c.padding)
		}
		der, err := exec.Command(pki, self...).Output()
		if err != nil {
			t.Fatalf("%s: pki --self: %v", name, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var outer struct {
			TBS    asn1.RawValue
			SigAlg asn1.RawValue
			Sig    asn1.BitString
		}
		if _, err := asn1.Unmarshal(der, &outer); err != nil {
			t.Fatal(err)
		}
		alg, err := parseAlgorithmIdentifier(outer.SigAlg.FullBytes)
		if err != nil || alg.scheme != c.want {
			t.Errorf("%s: strongSwan's AlgorithmIdentifier %x parsed as %v, %v; want %v", name, outer.SigAlg.FullBytes, alg.scheme, err, c.want)
			continue
		}
		// Byte-identical to what petrel sends, PSS parameters included.
		if got := c.want.AlgorithmIdentifier(); string(got) != string(outer.SigAlg.FullBytes) {
			t.Errorf("%s: strongSwan %x, petrel %x", name, outer.SigAlg.FullBytes, got)
		}
		if err := verifyWith(cert.PublicKey, schemes[alg.scheme], alg.salt, outer.TBS.FullBytes, outer.Sig.Bytes); err != nil {
			t.Errorf("%s: strongSwan's signature: %v", name, err)
		}
	}
}
