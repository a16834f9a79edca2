package suite

import (
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// BenchmarkKEExchange: one complete exchange per op — the initiator's
// keygen, the responder's keygen+shared (or encapsulation), the
// initiator's shared (or decapsulation).
func BenchmarkKEExchange(b *testing.B) {
	for _, id := range []wire.KEID{wire.KECurve25519, wire.KEECP256, wire.KEECP384, wire.KEECP521,
		wire.KEMODP2048, wire.KEMODP3072, wire.KEMODP4096, wire.KEMLKEM768, wire.KEMLKEM1024} {
		m := mustKE(b, id)
		b.Run(m.ID.String(), func(b *testing.B) {
			for b.Loop() {
				st, err := m.Initiate()
				if err != nil {
					b.Fatal(err)
				}
				data, _, err := m.Respond(st.Public())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := st.Shared(data); err != nil {
					b.Fatal(err)
				}
				st.Zero()
			}
		})
	}
}

// BenchmarkSK seals and opens a 1,000-octet SK payload (an IKE_AUTH-sized
// message) behind a 32-octet header.
func BenchmarkSK(b *testing.B) {
	for _, c := range []struct {
		id    wire.EncrID
		bits  int
		integ wire.IntegID
	}{
		{wire.EncrAES_GCM_16, 256, 0}, {wire.EncrCHACHA20_POLY1305, 0, 0}, {wire.EncrAES_CCM_16, 256, 0},
		{wire.EncrAES_GCM_8, 256, 0}, {wire.EncrAES_CBC, 256, wire.IntegHMAC_SHA2_256_128},
		{wire.EncrAES_CTR, 256, wire.IntegHMAC_SHA2_256_128},
	} {
		e := mustEncr(b, c.id, c.bits)
		var g *Integ
		if c.integ != 0 {
			g = mustInteg(b, c.integ)
		}
		a, r := newPair(b, e, g)
		pt := make([]byte, 1000)
		msg := make([]byte, 32+a.SealedLen(len(pt)))
		name := e.String()
		if g != nil {
			name += "+" + g.ID.String()
		}
		b.Run("Seal/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if err := a.Seal(msg, 32, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Open/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := r.Open(msg, 32); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIKEKeySchedule: SKEYSEED and the seven keys for
// AES-GCM-16-256/PRF-HMAC-SHA2-256.
func BenchmarkIKEKeySchedule(b *testing.B) {
	s := Suite{Encr: mustEncr(b, wire.EncrAES_GCM_16, 256), PRF: prfTable[wire.PRF_HMAC_SHA2_256]}
	ni, nr, gir := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	for b.Loop() {
		k, err := DeriveIKEKeys(s, SKEYSEED(s.PRF, ni, nr, gir), ni, nr, 1, 2)
		if err != nil {
			b.Fatal(err)
		}
		k.Zero()
	}
}
