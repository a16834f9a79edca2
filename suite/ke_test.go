package suite

import (
	"bytes"
	"crypto/aes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"errors"
	"math/big"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

var keByName = map[string]wire.KEID{
	"ECP_256_BIT": wire.KEECP256, "ECP_256_BIT (group 19)": wire.KEECP256,
	"ECP_384_BIT": wire.KEECP384, "ECP_384_BIT (group 20)": wire.KEECP384,
	"ECP_521_BIT": wire.KEECP521, "CURVE_25519": wire.KECurve25519,
	"MODP_2048_BIT": wire.KEMODP2048, "MODP_3072_BIT": wire.KEMODP3072, "MODP_4096_BIT": wire.KEMODP4096,
	"MODP_6144_BIT": wire.KEMODP6144, "MODP_8192_BIT": wire.KEMODP8192,
	"ML_KEM_768": wire.KEMLKEM768, "ML_KEM_1024": wire.KEMLKEM1024,
}

// fromPrivate builds a KE state from a vector's fixed private value.
func fromPrivate(t *testing.T, m *KEMethod, priv []byte) KEState {
	t.Helper()
	switch g := m.impl.(type) {
	case *ecdhGroup:
		s, err := ecdhFromPrivate(m, priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	case *modpGroup:
		return g.fromPrivate(m, new(big.Int).SetBytes(priv))
	}
	t.Fatalf("%v: no fixed-key constructor", m)
	return nil
}

// RFC 5903 §8, RFC 5114 (ECP), RFC 7748 §6.1 / RFC 8031 (X25519) and
// strongSwan's MODP known answers: both directions give the same g^ir, and
// KE data has the RFC 5903 §7 x|y layout.
func TestKEKnownAnswers(t *testing.T) {
	ran := 0
	for _, file := range []string{"ke_ecdh_x25519.json", "modp_dh_known_answers.json"} {
		for _, v := range loadVectors(t, file) {
			id, ok := keByName[v.str(t, "method")]
			if !ok {
				// ECP-192/224 and MODP-768/1024/1536 are not offered: check the refusal.
				continue
			}
			m := mustKE(t, id)
			si, sr := fromPrivate(t, m, v.hex(t, "priv_i")), fromPrivate(t, m, v.hex(t, "priv_r"))
			if !bytes.Equal(si.Public(), v.hex(t, "pub_i")) || !bytes.Equal(sr.Public(), v.hex(t, "pub_r")) {
				t.Errorf("%s: public values differ", v.id())
			}
			zi, err := si.Shared(v.hex(t, "pub_r"))
			if err != nil || !bytes.Equal(zi, v.hex(t, "shared")) {
				t.Errorf("%s: initiator g^ir = %x, %v", v.id(), zi, err)
			}
			zr, err := sr.Shared(v.hex(t, "pub_i"))
			if err != nil || !bytes.Equal(zr, v.hex(t, "shared")) {
				t.Errorf("%s: responder g^ir = %x, %v", v.id(), zr, err)
			}
			if len(zi) != m.SharedLen || len(si.Public()) != m.InitiatorLen {
				t.Errorf("%s: lengths %d/%d, descriptor %d/%d", v.id(), len(zi), len(si.Public()), m.SharedLen, m.InitiatorLen)
			}
			si.Zero()
			if _, err := si.Shared(v.hex(t, "pub_r")); err == nil {
				t.Errorf("%s: Shared works after Zero", v.id())
			}
			ran++
		}
	}
	if ran != 7+5 {
		t.Fatalf("ran %d KE vectors", ran)
	}
}

// The MODP table matches the shared vector set's primes (RFC 3526).
func TestMODPPrimes(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t, "modp_groups.json") {
		m, err := LookupKE(wire.KEID(v.num(t, "ikev2_transform_id")))
		if err != nil {
			continue
		}
		g := m.impl.(*modpGroup)
		if !bytes.Equal(g.p.Bytes(), v.hex(t, "prime")) || g.g.Int64() != 2 || v.str(t, "generator") != "02" {
			t.Errorf("%v: prime or generator differs from %s", m, v.str(t, "name"))
		}
		n++
	}
	if n != 5 {
		t.Fatalf("checked %d MODP groups, want 5", n)
	}
}

// RFC 7296 §5: peer values of the wrong length, off the curve, or outside
// (1, p-1) are refused; RFC 8031 §2.3: X25519 low-order points too.
func TestKERejectsBadPeerData(t *testing.T) {
	for _, m := range KEMethods() {
		st, err := m.Initiate()
		if err != nil {
			t.Fatal(err)
		}
		var bad [][]byte
		bad = append(bad, nil, make([]byte, m.ResponderLen-1), make([]byte, m.ResponderLen+1))
		switch m.impl.(type) {
		case *modpGroup:
			p := m.impl.(*modpGroup).p
			one := new(big.Int).SetInt64(1).FillBytes(make([]byte, m.ResponderLen))
			pm1 := new(big.Int).Sub(p, big.NewInt(1)).FillBytes(make([]byte, m.ResponderLen))
			bad = append(bad, make([]byte, m.ResponderLen), one, pm1, p.FillBytes(make([]byte, m.ResponderLen)))
		case *ecdhGroup:
			if m.impl.(*ecdhGroup).nist {
				// Changing y leaves the curve; all zeros is not a point.
				offCurve := st.Public()
				offCurve[len(offCurve)-1] ^= 1
				bad = append(bad, offCurve)
			}
			bad = append(bad, make([]byte, m.ResponderLen))
		}
		for i, b := range bad {
			if _, err := st.Shared(b); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("%v: bad peer data %d accepted or wrong error: %v", m, i, err)
			}
		}
		// The responder side validates the initiator's data the same way.
		if _, _, err := m.Respond(make([]byte, m.InitiatorLen+1)); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("%v: Respond accepted a long KE: %v", m, err)
		}
		st.Zero()
	}
	// X25519 with a low-order point (u = 0 and u = 1) gives the all-zero
	// secret, which crypto/ecdh and so Shared refuse.
	m := mustKE(t, wire.KECurve25519)
	st, _ := m.Initiate()
	u1 := make([]byte, 32)
	u1[0] = 1
	for _, u := range [][]byte{make([]byte, 32), u1} {
		if _, err := st.Shared(u); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("X25519 low-order point accepted: %v", err)
		}
	}
}

// Every registered method, both directions: Initiate/Respond/Shared agree,
// and ML-KEM's responder data is a ciphertext of the right size.
func TestKERoundTripAll(t *testing.T) {
	if len(KEMethods()) != 11 {
		t.Fatalf("%d KE methods registered", len(KEMethods()))
	}
	for _, m := range KEMethods() {
		st, err := m.Initiate()
		if err != nil {
			t.Fatal(err)
		}
		pub := st.Public()
		if len(pub) != m.InitiatorLen {
			t.Fatalf("%v: initiator data %d octets, want %d", m, len(pub), m.InitiatorLen)
		}
		data, zr, err := m.Respond(pub)
		if err != nil || len(data) != m.ResponderLen || len(zr) != m.SharedLen {
			t.Fatalf("%v: Respond: %d %d %v", m, len(data), len(zr), err)
		}
		zi, err := st.Shared(data)
		if err != nil || !bytes.Equal(zi, zr) {
			t.Fatalf("%v: shared secrets differ: %v", m, err)
		}
		// A different responder gives a different secret.
		_, zr2, _ := m.Respond(pub)
		if bytes.Equal(zr, zr2) {
			t.Fatalf("%v: two responders derived the same secret", m)
		}
		if !m.KEM {
			// DH is symmetric: the responder's data works as an initiator's too.
			st2, _ := m.Initiate()
			a, _ := st.Shared(st2.Public())
			b, _ := st2.Shared(st.Public())
			if !bytes.Equal(a, b) {
				t.Fatalf("%v: Initiate/Initiate disagree", m)
			}
		}
		st.Zero()
	}
}

// Policy: MODP-768 is forbidden (RFC 8247 §2.4); others not implemented.
func TestKELookupErrors(t *testing.T) {
	if _, err := LookupKE(wire.KEMODP768); !errors.Is(err, ErrForbidden) {
		t.Errorf("MODP-768: %v", err)
	}
	for _, id := range []wire.KEID{wire.KEMODP1024, wire.KEECP192, wire.KECurve448, wire.KEMLKEM512, 999} {
		if _, err := LookupKE(id); !errors.Is(err, ErrNotSupported) || errors.Is(err, ErrForbidden) {
			t.Errorf("%v: %v", id, err)
		}
	}
}

// ctrDRBG is the NIST PQC KAT AES-256 CTR_DRBG (no derivation function, no
// reseeding) that liboqs' KAT files were generated with; it turns a vector's
// kat_drbg_seed into the keygen and encapsulation randomness.
type ctrDRBG struct{ key, v [32]byte }

func newCTRDRBG(seed []byte) *ctrDRBG {
	d := &ctrDRBG{}
	d.update(seed)
	return d
}

func (d *ctrDRBG) incV() {
	for j := 15; j >= 0; j-- {
		d.v[j]++
		if d.v[j] != 0 {
			return
		}
	}
}

func (d *ctrDRBG) update(data []byte) {
	b, _ := aes.NewCipher(d.key[:])
	var tmp [48]byte
	for i := 0; i < 3; i++ {
		d.incV()
		b.Encrypt(tmp[16*i:], d.v[:16])
	}
	for i := range data {
		tmp[i] ^= data[i]
	}
	copy(d.key[:], tmp[:32])
	copy(d.v[:16], tmp[32:])
}

func (d *ctrDRBG) read(n int) []byte {
	b, _ := aes.NewCipher(d.key[:])
	out := make([]byte, 0, n+16)
	var blk [16]byte
	for len(out) < n {
		d.incV()
		b.Encrypt(blk[:], d.v[:16])
		out = append(out, blk[:]...)
	}
	d.update(nil)
	return out[:n]
}

// liboqs ML-KEM KATs (testdata/ml_kem.json): keygen seed d|z and the
// encapsulation message m come from the KAT DRBG; crypto/mlkem takes the
// seed and mlkemtest the message, so the KE data and secret are exact.
func TestMLKEMKnownAnswers(t *testing.T) {
	ran := 0
	for _, v := range loadVectors(t, "ml_kem.json") {
		id, ok := keByName[v.str(t, "method")]
		if !ok {
			if _, err := LookupKE(wire.KEMLKEM512); !errors.Is(err, ErrNotSupported) {
				t.Fatalf("ML-KEM-512: %v", err)
			}
			continue
		}
		m := mustKE(t, id)
		drbg := newCTRDRBG(v.hex(t, "kat_drbg_seed"))
		st, err := mlkemFromSeed(m, drbg.read(64))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(st.Public(), v.hex(t, "encapsulation_key_pub_i")) {
			t.Fatalf("%s: encapsulation key differs", v.id())
		}
		msg := drbg.read(32)
		var ss, ct []byte
		if id == wire.KEMLKEM768 {
			ek, _ := mlkem.NewEncapsulationKey768(st.Public())
			ss, ct, err = mlkemtest.Encapsulate768(ek, msg)
		} else {
			ek, _ := mlkem.NewEncapsulationKey1024(st.Public())
			ss, ct, err = mlkemtest.Encapsulate1024(ek, msg)
		}
		if err != nil || !bytes.Equal(ct, v.hex(t, "ciphertext_pub_r")) || !bytes.Equal(ss, v.hex(t, "shared")) {
			t.Fatalf("%s: encapsulation differs: %v", v.id(), err)
		}
		got, err := st.Shared(ct)
		if err != nil || !bytes.Equal(got, v.hex(t, "shared")) {
			t.Fatalf("%s: decapsulation = %x, %v", v.id(), got, err)
		}
		ran++
	}
	if ran != 8 {
		t.Fatalf("ran %d ML-KEM vectors", ran)
	}
}

// FuzzKEPeerData: arbitrary peer KE data never panics Shared or Respond,
// and whatever is accepted has the descriptor's lengths.
func FuzzKEPeerData(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(0))
	methods := KEMethods()
	states := make([]KEState, len(methods))
	for i, m := range methods {
		st, err := m.Initiate()
		if err != nil {
			f.Fatal(err)
		}
		states[i] = st
		f.Add(make([]byte, m.ResponderLen), uint8(i))
	}
	f.Fuzz(func(t *testing.T, peer []byte, which uint8) {
		i := int(which) % len(methods)
		m := methods[i]
		if z, err := states[i].Shared(peer); err == nil && len(z) != m.SharedLen {
			t.Fatalf("%v: %d-octet secret", m, len(z))
		}
		if m.ID == wire.KEMODP8192 || m.ID == wire.KEMODP6144 {
			return // keep the fuzzer fast
		}
		if data, z, err := m.Respond(peer); err == nil && (len(data) != m.ResponderLen || len(z) != m.SharedLen) {
			t.Fatalf("%v: Respond lengths %d %d", m, len(data), len(z))
		}
	})
}
