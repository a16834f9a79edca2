package suite

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// RFC 3610 §8 packet vectors (L = 2) through NewCCM, and tamper rejection.
func TestCCMRFC3610(t *testing.T) {
	vs := loadVectors(t, "ccm_rfc3610.json")
	for _, v := range vs {
		b, _ := aes.NewCipher(v.hex(t, "key"))
		nonce := v.hex(t, "nonce")
		c, err := NewCCM(b, v.num(t, "tag_len"), len(nonce))
		if err != nil {
			t.Fatal(err)
		}
		pt, aad, want := v.hex(t, "plaintext"), v.hex(t, "aad"), v.hex(t, "ciphertext_and_tag")
		if got := c.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
			t.Errorf("%s: Seal = %x", v.id(), got)
		}
		if got, err := c.Open(nil, nonce, want, aad); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: Open = %x, %v", v.id(), got, err)
		}
		for i := range want {
			bad := bytes.Clone(want)
			bad[i] ^= 0x80
			if _, err := c.Open(nil, nonce, bad, aad); err == nil {
				t.Fatalf("%s: Open accepted a flipped octet %d", v.id(), i)
			}
		}
		if _, err := c.Open(nil, nonce, want, append(aad, 0)); err == nil {
			t.Fatalf("%s: Open accepted different AAD", v.id())
		}
	}
	if len(vs) != 22 {
		t.Fatalf("%d CCM vectors", len(vs))
	}
}

// In-place sealing and opening (dst aliasing the input exactly), as the SK
// protector does, and parameter checks.
func TestCCMInPlaceAndParams(t *testing.T) {
	b, _ := aes.NewCipher(make([]byte, 32))
	c, err := NewCCM(b, 16, 11)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 11)
	for n := 0; n < 70; n++ {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		buf := make([]byte, n, n+16)
		copy(buf, pt)
		sealed := c.Seal(buf[:0], nonce, buf, []byte("aad"))
		if !bytes.Equal(sealed, c.Seal(nil, nonce, pt, []byte("aad"))) {
			t.Fatalf("len %d: in-place Seal differs", n)
		}
		out, err := c.Open(sealed[:0], nonce, sealed, []byte("aad"))
		if err != nil || !bytes.Equal(out, pt) {
			t.Fatalf("len %d: in-place Open: %v", n, err)
		}
	}
	for _, p := range [][2]int{{3, 11}, {5, 11}, {18, 11}, {16, 6}, {16, 14}} {
		if _, err := NewCCM(b, p[0], p[1]); err == nil {
			t.Errorf("NewCCM(tag %d, nonce %d) accepted", p[0], p[1])
		}
	}
}

var gcmByName = map[string]wire.EncrID{
	"ENCR_AES_GCM_ICV8": wire.EncrAES_GCM_8, "ENCR_AES_GCM_ICV12": wire.EncrAES_GCM_12, "ENCR_AES_GCM_ICV16": wire.EncrAES_GCM_16,
}

// dirFor keys one direction of a protector the way NewSKProtector does, so
// raw AEAD/CTR/CBC vectors test the descriptor's key|salt split and sizes.
func dirFor(t *testing.T, e *Encr, keymat []byte) skDir {
	t.Helper()
	var g *Integ
	if !e.AEAD() {
		g = integTable[wire.IntegHMAC_SHA2_256_128]
	}
	d, err := newSKDir(e, g, keymat, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// McGrew–Viega GCM cases (RFC 4106 layout), RFC 7539 / RFC 7634
// ChaCha20-Poly1305, RFC 3686 CTR and RFC 3602 / SP 800-38A CBC.
func TestCipherKnownAnswers(t *testing.T) {
	n := 0
	aeadCase := func(e *Encr, v vector) {
		d := dirFor(t, e, append(v.hex(t, "key"), v.hex(t, "salt")...))
		nonce := append(v.hex(t, "salt"), v.hex(t, "iv")...)
		want := v.hex(t, "ciphertext_and_tag")
		if got := d.aead.Seal(nil, nonce, v.hex(t, "plaintext"), v.hex(t, "aad")); !bytes.Equal(got, want) {
			t.Errorf("%s: %v Seal = %x", v.id(), e, got)
		}
		n++
	}
	for _, v := range loadVectors(t, "aes_gcm.json") {
		alg, _ := v["alg"].(string)
		id, ok := gcmByName[alg]
		if !ok {
			continue // draft-mcgrew ESP packets: the esp package's business
		}
		aeadCase(mustEncr(t, id, 8*len(v.hex(t, "key"))), v)
	}
	for _, v := range loadVectors(t, "chacha20poly1305.json") {
		aeadCase(mustEncr(t, wire.EncrCHACHA20_POLY1305, 0), v)
	}
	for _, v := range loadVectors(t, "aes_ctr.json") {
		e := mustEncr(t, wire.EncrAES_CTR, 8*len(v.hex(t, "key")))
		d := dirFor(t, e, append(v.hex(t, "key"), v.hex(t, "nonce")...))
		pt := v.hex(t, "plaintext")
		got := make([]byte, len(pt))
		ctrStream(d, v.hex(t, "iv")).XORKeyStream(got, pt)
		if !bytes.Equal(got, v.hex(t, "ciphertext")) {
			t.Errorf("%s: CTR = %x", v.id(), got)
		}
		n++
	}
	for _, v := range loadVectors(t, "aes_cbc_esp.json") {
		if _, ok := v["ciphertext"]; !ok {
			continue // complete ESP packets: the esp package's business
		}
		e := mustEncr(t, wire.EncrAES_CBC, 8*len(v.hex(t, "key")))
		d := dirFor(t, e, v.hex(t, "key"))
		pt := v.hex(t, "plaintext")
		got := make([]byte, len(pt))
		cipher.NewCBCEncrypter(d.block, v.hex(t, "iv")).CryptBlocks(got, pt)
		if !bytes.Equal(got, v.hex(t, "ciphertext")) {
			t.Errorf("%s: CBC = %x", v.id(), got)
		}
		n++
	}
	if n != 21+4+9+6 {
		t.Fatalf("ran %d cipher vectors", n)
	}
}
