package suite

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// RFC 7634 Appendix B: the INFORMATIONAL message decrypts to a Notify plus
// a zero Pad Length, and sealing that Notify again with the same IV gives
// the message back byte for byte.
func TestRFC7634AppendixB(t *testing.T) {
	v := loadVectors(t, "chacha20poly1305.json")[3]
	if v.str(t, "source_comment") != "IKEv2 example from RFC 7634" {
		t.Fatalf("vector 4 is %q", v.str(t, "source_comment"))
	}
	e := mustEncr(t, wire.EncrCHACHA20_POLY1305, 0)
	keymat := append(v.hex(t, "key"), v.hex(t, "salt")...)
	p, err := NewSKProtector(e, nil, keymat, nil, keymat, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := v.hex(t, "ike_message")
	const bodyOff = 28 + 4 // IKE header, SK payload header
	if !bytes.Equal(msg[:bodyOff], v.hex(t, "aad")) {
		t.Fatal("AAD is not the message up to the SK body")
	}
	orig := bytes.Clone(msg)
	inner, err := p.Open(msg, bodyOff)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(msg, orig) {
		t.Fatal("Open modified msg")
	}
	want := v.hex(t, "plaintext") // Notify payload | Pad Length 0
	if !bytes.Equal(inner, want[:len(want)-1]) || want[len(want)-1] != 0 {
		t.Fatalf("inner = %x", inner)
	}
	out := make([]byte, bodyOff+p.SealedLen(len(inner)))
	if len(out) != len(msg) {
		t.Fatalf("SealedLen gives %d octets, message has %d", len(out), len(msg))
	}
	copy(out, msg[:bodyOff])
	p.counter = binary.BigEndian.Uint64(v.hex(t, "iv"))
	if err := p.Seal(out, bodyOff, inner); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, msg) {
		t.Fatalf("re-sealed message differs:\n got %x\nwant %x", out, msg)
	}
}

// suites returns every registered (ENCR, INTEG) pairing: AEADs alone,
// others with every INTEG.
func allPairs() [][2]any {
	var out [][2]any
	for _, e := range Encrs() {
		if e.AEAD() {
			out = append(out, [2]any{e, (*Integ)(nil)})
			continue
		}
		for _, g := range Integs() {
			out = append(out, [2]any{e, g})
		}
	}
	return out
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newPair(t testing.TB, e *Encr, g *Integ) (a, b *SKProtector) {
	t.Helper()
	ilen := 0
	if g != nil {
		ilen = g.KeyLen
	}
	ei, er, ai, ar := randBytes(e.KeyMatLen()), randBytes(e.KeyMatLen()), randBytes(ilen), randBytes(ilen)
	a, err := NewSKProtector(e, g, ei, ai, er, ar)
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewSKProtector(e, g, er, ar, ei, ai)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// Every ENCR×INTEG: seal/open round trips for lengths around block
// boundaries, the RFC 7296 §3.14 alignment, unique IVs, Open leaving msg
// alone, and any flipped octet (header, IV, ciphertext, ICV) rejected.
func TestProtectorAllSuites(t *testing.T) {
	pairs := allPairs()
	if len(pairs) != 9+9+1+2*3*4 { // 3×3 GCM + 3×3 CCM + ChaCha20 + (CBC, CTR)×3 sizes×4 INTEG
		t.Fatalf("%d ENCR×INTEG pairs", len(pairs))
	}
	for _, pr := range pairs {
		e, g := pr[0].(*Encr), pr[1].(*Integ)
		a, b := newPair(t, e, g)
		ivs := map[string]bool{}
		for n := 0; n <= 40; n++ {
			pt := randBytes(n)
			hdr := randBytes(28 + 4)
			sl := a.SealedLen(n)
			icv := a.icvLen()
			if (sl-e.IVLen-icv)%e.BlockLen != 0 || sl-e.IVLen-icv < n+1 {
				t.Fatalf("%v %v: SealedLen(%d) = %d misaligned", e, g, n, sl)
			}
			msg := append(hdr, make([]byte, sl)...)
			if err := a.Seal(msg, len(hdr), pt); err != nil {
				t.Fatal(err)
			}
			iv := string(msg[len(hdr) : len(hdr)+e.IVLen])
			if ivs[iv] {
				t.Fatalf("%v: IV repeated", e)
			}
			ivs[iv] = true
			orig := bytes.Clone(msg)
			got, err := b.Open(msg, len(hdr))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v %v len %d: Open = %x, %v", e, g, n, got, err)
			}
			if !bytes.Equal(msg, orig) {
				t.Fatalf("%v: Open modified msg", e)
			}
			if _, err := a.Open(msg, len(hdr)); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("%v %v: own direction's keys opened the message: %v", e, g, err)
			}
			if n == 17 {
				for i := range msg {
					bad := bytes.Clone(msg)
					bad[i] ^= 1
					if _, err := b.Open(bad, len(hdr)); err == nil {
						t.Fatalf("%v %v: flipped octet %d of %d accepted", e, g, i, len(msg))
					}
				}
			}
		}
		if err := a.Seal(make([]byte, 10), 0, nil); err == nil {
			t.Fatalf("%v: Seal accepted a body of the wrong length", e)
		}
	}
}

// Truncated and malformed bodies fail without panicking; a Pad Length
// pointing before the start of the plaintext is ErrMalformed.
func TestProtectorMalformed(t *testing.T) {
	for _, pr := range allPairs() {
		e, g := pr[0].(*Encr), pr[1].(*Integ)
		a, b := newPair(t, e, g)
		msg := make([]byte, 8+a.SealedLen(20))
		if err := a.Seal(msg, 8, make([]byte, 20)); err != nil {
			t.Fatal(err)
		}
		for cut := 0; cut < len(msg); cut++ {
			if _, err := b.Open(msg[:cut], 8); err == nil {
				t.Fatalf("%v %v: truncated to %d accepted", e, g, cut)
			}
		}
		for _, off := range []int{-1, len(msg) + 1} {
			if _, err := b.Open(msg, off); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v: bodyOff %d: %v", e, off, err)
			}
		}
	}
	// A peer holding the keys sends Pad Length 255 in a 16-octet plaintext.
	e := mustEncr(t, wire.EncrAES_GCM_16, 256)
	a, b := newPair(t, e, nil)
	hdr := []byte("header")
	body := make([]byte, 8, 8+16+16)
	body = a.seal.aead.Seal(body, append(bytes.Clone(a.seal.salt), body[:8]...), append(make([]byte, 15), 255), hdr)
	if _, err := b.Open(append(hdr, body...), len(hdr)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized Pad Length: %v", err)
	}
}

// After Zero nothing seals or opens, and the MAC keys are wiped.
func TestProtectorZero(t *testing.T) {
	e, g := mustEncr(t, wire.EncrAES_CBC, 256), mustInteg(t, wire.IntegHMAC_SHA2_256_128)
	a, _ := newPair(t, e, g)
	key := a.seal.ikey
	msg := make([]byte, a.SealedLen(3))
	a.Zero()
	if !bytes.Equal(key, make([]byte, len(key))) {
		t.Fatal("integrity key not wiped")
	}
	if a.Seal(msg, 0, []byte("abc")) == nil {
		t.Fatal("Seal after Zero")
	}
	if _, err := a.Open(msg, 0); err == nil {
		t.Fatal("Open after Zero")
	}
}

// The AEAD IV counter refuses to wrap (nonce reuse).
func TestProtectorIVExhausted(t *testing.T) {
	a, _ := newPair(t, mustEncr(t, wire.EncrAES_GCM_16, 128), nil)
	a.sealed = 1<<64 - 2
	msg := make([]byte, a.SealedLen(1))
	if err := a.Seal(msg, 0, []byte{1}); err != nil {
		t.Fatalf("last IV refused: %v", err)
	}
	if err := a.Seal(msg, 0, []byte{1}); !errors.Is(err, ErrIVExhausted) {
		t.Fatalf("Seal at counter max: %v", err)
	}
}

// An IKE SA's two ends: NewIKEProtector picks the directions of §2.14.
func TestNewIKEProtectorDirections(t *testing.T) {
	for _, s := range []Suite{
		{Encr: mustEncr(t, wire.EncrAES_CCM_16, 256), PRF: mustPRF(t, "PRF_HMAC_SHA2_384")},
		{Encr: mustEncr(t, wire.EncrAES_CTR, 192), PRF: mustPRF(t, "PRF_HMAC_SHA1"), Integ: mustInteg(t, wire.IntegHMAC_SHA2_512_256)},
	} {
		k, err := DeriveIKEKeys(s, []byte("skeyseed"), []byte("ni"), []byte("nr"), 7, 9)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.SKei) != s.Encr.KeyMatLen() || len(k.SKd) != s.PRF.KeyLen || (s.Integ != nil && len(k.SKai) != s.Integ.KeyLen) {
			t.Fatalf("%v: key lengths %d %d %d", s.Encr, len(k.SKei), len(k.SKd), len(k.SKai))
		}
		i, _ := NewIKEProtector(s, k, true)
		r, _ := NewIKEProtector(s, k, false)
		msg := make([]byte, 4+i.SealedLen(5))
		i.Seal(msg, 4, []byte("hello"))
		if got, err := r.Open(msg, 4); err != nil || string(got) != "hello" {
			t.Fatalf("%v: responder cannot open the initiator's message: %v", s.Encr, err)
		}
		// Only the initiator's sealing key opens it (SK_ei, not SK_er).
		alone, _ := NewSKProtector(s.Encr, s.Integ, k.SKei, k.SKai, k.SKei, k.SKai)
		if _, err := alone.Open(msg, 4); err != nil {
			t.Fatalf("%v: SK_ei/SK_ai do not open the initiator's message", s.Encr)
		}
	}
	bad := Suite{Encr: mustEncr(t, wire.EncrAES_GCM_16, 128), PRF: mustPRF(t, "PRF_HMAC_SHA1"), Integ: mustInteg(t, wire.IntegHMAC_SHA1_96)}
	if _, err := DeriveIKEKeys(bad, nil, nil, nil, 0, 0); err == nil {
		t.Fatal("AEAD with INTEG accepted (RFC 7296 §3.3)")
	}
}

// FuzzOpen: arbitrary octets never panic the protector.
func FuzzOpen(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789abcdef"), 4, uint8(0))
	pairs := allPairs()
	prots := make([]*SKProtector, len(pairs))
	for i, pr := range pairs {
		_, prots[i] = newPair(f, pr[0].(*Encr), pr[1].(*Integ))
	}
	f.Fuzz(func(t *testing.T, msg []byte, off int, which uint8) {
		p := prots[int(which)%len(prots)]
		if out, err := p.Open(msg, off); err == nil {
			t.Fatalf("random input authenticated: %x", out)
		}
	})
}
