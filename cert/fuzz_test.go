package cert

import (
	"context"
	"crypto"
	"crypto/x509"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// FuzzVerifyAuth feeds arbitrary AUTH payloads to the verifier: network
// input never panics and never verifies.
func FuzzVerifyAuth(f *testing.F) {
	keys := []crypto.Signer{genKeyF(f, KeyECDSAP256), genKeyF(f, KeyRSA2048), genKeyF(f, KeyEd25519)}
	for _, s := range []Scheme{SchemeECDSASHA256, SchemeRSAPSSSHA384, SchemeEd25519} {
		a := s.AlgorithmIdentifier()
		f.Add(uint8(wire.AuthDigitalSignature), append([]byte{byte(len(a))}, append(a, 1, 2, 3)...))
	}
	f.Add(uint8(wire.AuthECDSA256), make([]byte, 64))
	f.Add(uint8(wire.AuthRSASignature), make([]byte, 256))
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		for _, k := range keys {
			pub := k.Public()
			a := &wire.Auth{Method: wire.AuthMethod(method), Data: data}
			if _, err := VerifyAuth(&Policy{Methods: DefaultMethods, Schemes: append(DefaultSchemes, SchemeRSAPKCS1SHA1)}, pub, a, []byte("m")); err == nil {
				t.Fatalf("random AUTH verified: %v %x", a.Method, data)
			}
		}
	})
}

func genKeyF(f *testing.F, kt KeyType) crypto.Signer {
	k, err := GenerateKey(kt)
	if err != nil {
		f.Fatal(err)
	}
	return k
}

// FuzzCertPayloads feeds arbitrary CERT payloads and bundles to Remote.
func FuzzCertPayloads(f *testing.F) {
	f.Add(uint8(wire.CertX509Signature), []byte{0x30, 0x03, 1, 2, 3})
	f.Add(uint8(wire.CertHashURLBundle), append(make([]byte, 20), "http://x/b"...))
	remote := &Remote{Validator: &Validator{Store: NewStore(nil, nil)},
		HashURL: &HashURLResolver{Fetcher: &fakeFetcher{bodies: map[string][]byte{"http://x/b": {0x30, 0x00}}}}}
	f.Fuzz(func(t *testing.T, enc uint8, data []byte) {
		ps := []wire.Payload{&wire.Cert{Encoding: wire.CertEncoding(enc), Data: data}, &wire.Auth{Method: wire.AuthDigitalSignature}}
		if _, err := remote.Verify(context.Background(), VerifyInput{PeerID: ID{wire.ID_FQDN, []byte("x")}, Payloads: ps}); err == nil {
			t.Fatal("random CERT payload verified")
		}
		parseBundle(data)
		x509.ParseCertificates(data)
	})
}

// TestNoNetImports pins the promise of the package doc: cert imports
// neither net nor net/... (net/netip aside), so the sans-I/O core may
// import it; HTTP lives in cert/httpfetch.
func TestNoNetImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if (p == "net" || strings.HasPrefix(p, "net/")) && p != "net/netip" || p == "os/exec" || p == "syscall" {
				t.Errorf("%s imports %s", name, p)
			}
		}
	}
}
