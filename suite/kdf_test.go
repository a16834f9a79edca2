package suite

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// RFC 4868 §2.7 and RFC 2202 PRF and truncated-ICV known answers
// (testdata/prf_integrity_hmac.json, from strongSwan's test vectors).
func TestPRFAndIntegKnownAnswers(t *testing.T) {
	var nPRF, nInteg int
	for _, v := range loadVectors(t, "prf_integrity_hmac.json") {
		alg := v.str(t, "alg")
		switch v.str(t, "kind") {
		case "prf":
			p := mustPRF(t, alg)
			if got := p.Compute(v.hex(t, "key"), v.hex(t, "data")); !bytes.Equal(got, v.hex(t, "out")) {
				t.Errorf("%s: prf = %x", v.id(), got)
			}
			nPRF++
		case "integrity":
			id, ok := integByName[alg]
			if !ok {
				continue // HMAC-SHA1-128/160: not IKE integrity transforms here
			}
			g := mustInteg(t, id)
			if g.ICVLen != v.num(t, "icv_len") {
				t.Fatalf("%s: ICVLen %d, vector %d", v.id(), g.ICVLen, v.num(t, "icv_len"))
			}
			if got := g.MAC(v.hex(t, "key"), v.hex(t, "data")); !bytes.Equal(got, v.hex(t, "mac")) {
				t.Errorf("%s: mac = %x", v.id(), got)
			}
			nInteg++
		}
	}
	if nPRF < 20 || nInteg < 10 {
		t.Fatalf("only %d PRF and %d integrity vectors ran", nPRF, nInteg)
	}
}

func spi(t *testing.T, v vector, k string) uint64 { return binary.BigEndian.Uint64(v.hex(t, k)) }

// CAVP SP 800-135 IKEv2 KDF (SKEYSEED, prf+), OpenSSL's IKEv2 KDF self-test,
// Android's SaRecordTest and RUB-NDS's key schedule (testdata/ikev2_kdf.json).
func TestKDFKnownAnswers(t *testing.T) {
	ran := map[string]int{}
	for _, v := range loadVectors(t, "ikev2_kdf.json") {
		prf := mustPRF(t, v.str(t, "prf"))
		switch v.str(t, "kind") {
		case "SKEYSEED":
			// The vectors give Ni|Nr as one string; SKEYSEED only concatenates.
			nn := v.hex(t, "ni_nr")
			if got := SKEYSEED(prf, nn[:len(nn)/2], nn[len(nn)/2:], v.hex(t, "gir")); !bytes.Equal(got, v.hex(t, "skeyseed")) {
				t.Errorf("%s: SKEYSEED = %x", v.id(), got)
			}
		case "prf+":
			want := v.hex(t, "out")
			if n := v.num(t, "out_len"); n != len(want) {
				t.Fatalf("%s: out_len %d vs %d", v.id(), n, len(want))
			}
			if got := prf.Plus(v.hex(t, "key"), v.hex(t, "seed"), len(want)); !bytes.Equal(got, want) {
				t.Errorf("%s: prf+ = %x", v.id(), got)
			}
		case "full IKEv2 KDF (SP 800-135 components)":
			ni, nr := v.hex(t, "ni"), v.hex(t, "nr")
			skeyseed := SKEYSEED(prf, ni, nr, v.hex(t, "gir"))
			if !bytes.Equal(skeyseed, v.hex(t, "skeyseed")) {
				t.Errorf("%s: SKEYSEED = %x", v.id(), skeyseed)
			}
			dkm := v.hex(t, "dkm")
			seed := append(append(append([]byte{}, ni...), nr...), append(v.hex(t, "spii"), v.hex(t, "spir")...)...)
			if got := prf.Plus(skeyseed, seed, len(dkm)); !bytes.Equal(got, dkm) {
				t.Errorf("%s: DKM = %x", v.id(), got)
			}
			skd := v.hex(t, "sk_d")
			if !bytes.Equal(dkm[:prf.KeyLen], skd) {
				t.Errorf("%s: SK_d is not the first PRF-key-length octets of DKM", v.id())
			}
			want := v.hex(t, "child_sa_dkm")
			if got, err := ChildKeymat(prf, skd, nil, ni, nr, len(want)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: child KEYMAT = %x, %v", v.id(), got, err)
			}
			want = v.hex(t, "child_sa_dh_dkm")
			if got, err := ChildKeymat(prf, skd, v.hex(t, "gir_new"), ni, nr, len(want)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: child KEYMAT with PFS = %x, %v", v.id(), got, err)
			}
			if got := RekeySKEYSEED(prf, skd, v.hex(t, "gir_new"), ni, nr); !bytes.Equal(got, v.hex(t, "skeyseed_rekey")) {
				t.Errorf("%s: rekey SKEYSEED = %x", v.id(), got)
			}
		case "IKE SA + first Child SA key schedule", "IKE SA key schedule":
			// Both use AES-CBC-128 with HMAC-SHA1-96 (key lengths in the vector).
			s := Suite{Encr: mustEncr(t, wire.EncrAES_CBC, 128), PRF: prf, Integ: mustInteg(t, wire.IntegHMAC_SHA1_96)}
			ni, nr := v.hex(t, "ni"), v.hex(t, "nr")
			skeyseed := SKEYSEED(prf, ni, nr, v.hex(t, "gir"))
			if !bytes.Equal(skeyseed, v.hex(t, "skeyseed")) {
				t.Errorf("%s: SKEYSEED = %x", v.id(), skeyseed)
			}
			k, err := DeriveIKEKeys(s, skeyseed, ni, nr, spi(t, v, "spii"), spi(t, v, "spir"))
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string][]byte{"sk_d": k.SKd, "sk_ai": k.SKai, "sk_ar": k.SKar,
				"sk_ei": k.SKei, "sk_er": k.SKer, "sk_pi": k.SKpi, "sk_pr": k.SKpr} {
				if !bytes.Equal(got, v.hex(t, name)) {
					t.Errorf("%s: %s = %x", v.id(), name, got)
				}
			}
			if _, ok := v["child_keymat"]; ok {
				want := v.hex(t, "child_keymat")
				km, err := ChildKeymat(prf, k.SKd, nil, ni, nr, ChildKeymatLen(16, 20))
				if err != nil || !bytes.Equal(km, want) {
					t.Fatalf("%s: child KEYMAT = %x, %v", v.id(), km, err)
				}
				c, err := SplitChildKeymat(km, 16, 20)
				if err != nil {
					t.Fatal(err)
				}
				child := v["child"].(map[string]any)
				for name, got := range map[string][]byte{"ei": c.EncrI, "ai": c.IntegI, "er": c.EncrR, "ar": c.IntegR} {
					if want := vector(child).hex(t, name); !bytes.Equal(got, want) {
						t.Errorf("%s: child %s = %x, want %x", v.id(), name, got, want)
					}
				}
				c.Zero()
				if !bytes.Equal(c.EncrI, make([]byte, 16)) {
					t.Error("ChildKeys.Zero left key material")
				}
			}
			k.Zero()
			if !bytes.Equal(k.SKd, make([]byte, len(k.SKd))) || !bytes.Equal(k.SKpr, make([]byte, len(k.SKpr))) {
				t.Error("IKEKeys.Zero left key material")
			}
		case "PSK AUTH payload (RFC 7296 2.15)":
			s := Suite{Encr: mustEncr(t, wire.EncrAES_CBC, 128), PRF: prf, Integ: mustInteg(t, wire.IntegHMAC_SHA1_96)}
			ni, nr := v.hex(t, "ni"), v.hex(t, "nr")
			k, err := DeriveIKEKeys(s, SKEYSEED(prf, ni, nr, v.hex(t, "gir")), ni, nr, spi(t, v, "spii"), spi(t, v, "spir"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.SKpi, v.hex(t, "sk_pi_derived")) {
				t.Fatalf("%s: SK_pi = %x", v.id(), k.SKpi)
			}
			octets := SignedOctets(prf, v.hex(t, "ike_sa_init_request"), nr, k.SKpi, v.hex(t, "idi_payload_body"))
			if !bytes.Equal(octets, v.hex(t, "initiator_signed_octets")) {
				t.Fatalf("%s: signed octets differ", v.id())
			}
			secret := []byte(v.str(t, "psk_ascii"))
			auth := PSKAuth(prf, secret, octets)
			if !bytes.Equal(auth, v.hex(t, "auth")) {
				t.Errorf("%s: AUTH = %x", v.id(), auth)
			}
			if !VerifyPSKAuth(prf, secret, octets, auth) || VerifyPSKAuth(prf, []byte("AAAB"), octets, auth) {
				t.Errorf("%s: VerifyPSKAuth accepts the wrong secret or rejects the right one", v.id())
			}
		default:
			t.Fatalf("%s: unknown kind %q", v.id(), v.str(t, "kind"))
		}
		ran[v.str(t, "kind")]++
	}
	if len(ran) != 6 || ran["SKEYSEED"] != 6 || ran["prf+"] != 7 {
		t.Fatalf("vector kinds run: %v", ran)
	}
}

// RFC 9370 §2.2.2: additional key exchanges' secrets follow Nr.
func TestRekeySKEYSEEDAdditional(t *testing.T) {
	prf := mustPRF(t, "PRF_HMAC_SHA2_256")
	skd, gir, ni, nr, a1 := []byte("skd"), []byte("g^ir"), []byte("Ni"), []byte("Nr"), []byte("mlkem-ss")
	want := prf.Compute(skd, []byte("g^irNiNrmlkem-ss"))
	if got := RekeySKEYSEED(prf, skd, gir, ni, nr, a1); !bytes.Equal(got, want) {
		t.Fatalf("RekeySKEYSEED with ADDKE = %x, want %x", got, want)
	}
	if got := IntermediateSKEYSEED(prf, skd, a1, ni, nr); !bytes.Equal(got, prf.Compute(skd, []byte("mlkem-ssNiNr"))) {
		t.Fatalf("IntermediateSKEYSEED = %x", got)
	}
}

// prf+ concatenation: T1 is prf(K, S|0x01), T2 is prf(K, T1|S|0x02).
func TestPRFPlusStructure(t *testing.T) {
	for _, p := range PRFs() {
		k, s := []byte("key"), []byte("seed")
		out := p.Plus(k, s, 2*p.Size+3)
		t1 := p.Compute(k, s, []byte{1})
		t2 := p.Compute(k, t1, s, []byte{2})
		t3 := p.Compute(k, t2, s, []byte{3})
		if !bytes.Equal(out, append(append(t1, t2...), t3[:3]...)) {
			t.Errorf("%v: prf+ structure wrong", p)
		}
	}
}

// prf+ is defined for at most 255 blocks (RFC 7296 §2.13); the Child SA
// split refuses short key material.
func TestKeyScheduleLimits(t *testing.T) {
	prf := mustPRF(t, "PRF_HMAC_SHA1")
	if _, err := ChildKeymat(prf, []byte("k"), nil, nil, nil, 255*20+1); err == nil {
		t.Error("ChildKeymat beyond 255 prf+ blocks accepted")
	}
	if km, err := ChildKeymat(prf, []byte("k"), nil, nil, nil, 255*20); err != nil || len(km) != 255*20 {
		t.Errorf("ChildKeymat at 255 blocks: %d, %v", len(km), err)
	}
	if _, err := SplitChildKeymat(make([]byte, ChildKeymatLen(36, 0)-1), 36, 0); err == nil {
		t.Error("short KEYMAT split")
	}
	c, err := SplitChildKeymat(bytes.Repeat([]byte{1, 2}, 36), 36, 0)
	if err != nil || len(c.EncrI) != 36 || len(c.IntegI) != 0 || c.EncrR[0] != 1 {
		t.Errorf("AEAD split: %v", err)
	}
}
