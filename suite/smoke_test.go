package suite

import (
	"bytes"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func TestSmokeIKE(t *testing.T) {
	encr, err := LookupEncr(wire.EncrAES_GCM_16, 256)
	if err != nil {
		t.Fatal(err)
	}
	prf, _ := LookupPRF(wire.PRF_HMAC_SHA2_256)
	ke, _ := LookupKE(wire.KECurve25519)
	st, err := ke.Initiate()
	if err != nil {
		t.Fatal(err)
	}
	kr, sr, err := ke.Respond(st.Public())
	if err != nil {
		t.Fatal(err)
	}
	si, err := st.Shared(kr)
	if err != nil || !bytes.Equal(si, sr) {
		t.Fatalf("shared mismatch %v", err)
	}
	ni, nr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	s := Suite{Encr: encr, PRF: prf}
	keys, err := DeriveIKEKeys(s, SKEYSEED(prf, ni, nr, si), ni, nr, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	pi, _ := NewIKEProtector(s, keys, true)
	pr, _ := NewIKEProtector(s, keys, false)
	pt := []byte("inner payloads")
	msg := make([]byte, 32+pi.SealedLen(len(pt)))
	if err := pi.Seal(msg, 32, pt); err != nil {
		t.Fatal(err)
	}
	got, err := pr.Open(msg, 32)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open: %v %q", err, got)
	}
}
