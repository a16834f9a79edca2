package suite

import (
	"bytes"
	"testing"
)

// An IKE SA set up end to end for every PRF × KE method, each side
// deriving its own keys (RFC 7296 §2.14) from its own view of the exchange:
//
//	Initiator                          Responder
//	HDR, SAi1, KEi, Ni          -->    Respond(KEi) → KEr, g^ir
//	Shared(KEr) → g^ir          <--    HDR, SAr1, KEr, Nr
//	SK{...} sealed with SK_ei   -->    opened with SK_ei
//	opened with SK_er           <--    SK{...} sealed with SK_er
func TestIKESAEveryPRFAndKE(t *testing.T) {
	encrs := Encrs()
	integs := Integs()
	for i, prf := range PRFs() {
		for j, ke := range KEMethods() {
			// Rotate through ENCR and INTEG transforms too.
			e := encrs[(i*len(KEMethods())+j)%len(encrs)]
			s := Suite{Encr: e, PRF: prf}
			if !e.AEAD() {
				s.Integ = integs[j%len(integs)]
			}
			ni, nr := randBytes(32), randBytes(32)
			st, err := ke.Initiate()
			if err != nil {
				t.Fatal(err)
			}
			ker, girR, err := ke.Respond(st.Public())
			if err != nil {
				t.Fatal(err)
			}
			girI, err := st.Shared(ker)
			if err != nil {
				t.Fatal(err)
			}
			st.Zero()
			ki, err := DeriveIKEKeys(s, SKEYSEED(prf, ni, nr, girI), ni, nr, 0x1122, 0x3344)
			if err != nil {
				t.Fatal(err)
			}
			kr, _ := DeriveIKEKeys(s, SKEYSEED(prf, ni, nr, girR), ni, nr, 0x1122, 0x3344)
			pi, err := NewIKEProtector(s, ki, true)
			if err != nil {
				t.Fatal(err)
			}
			pr, _ := NewIKEProtector(s, kr, false)
			for _, dir := range [][2]*SKProtector{{pi, pr}, {pr, pi}} {
				pt := []byte("IDi | AUTH | SAi2 | TSi | TSr")
				msg := make([]byte, 32+dir[0].SealedLen(len(pt)))
				if err := dir[0].Seal(msg, 32, pt); err != nil {
					t.Fatal(err)
				}
				if got, err := dir[1].Open(msg, 32); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("%v %v %v %v: %v", prf, ke, e, s.Integ, err)
				}
			}
			ki.Zero()
			kr.Zero()
		}
	}
}
