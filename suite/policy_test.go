package suite

import (
	"errors"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// RFC 8247's MUST NOTs are refused with the section named; unimplemented
// transforms get the distinct not-supported error.
func TestPolicyErrors(t *testing.T) {
	forbidden := []struct {
		t       wire.Transform
		section string
	}{
		{tENCR(wire.EncrDES, 0), "RFC 8247 §2.1"},
		{tENCR(wire.EncrNULL, 0), "RFC 8247 §2.1"},
		{tENCR(wire.EncrBLOWFISH, 128), "RFC 9395"},
		{tPRF(wire.PRF_HMAC_MD5), "RFC 8247 §2.2"},
		{tINTEG(wire.IntegHMAC_MD5_96), "RFC 8247 §2.3"},
		{tINTEG(wire.IntegDES_MAC), "RFC 8247 §2.3"},
		{tINTEG(wire.IntegKPDK_MD5), "RFC 8247 §2.3"},
		{tKE(wire.KEMODP768), "RFC 8247 §2.4"},
		{wire.Transform{Type: wire.TransformADDKE1, ID: uint16(wire.KEMODP768)}, "RFC 8247 §2.4"},
	}
	for _, c := range forbidden {
		err := Supported(c.t)
		var fe *ForbiddenError
		if !errors.As(err, &fe) || !errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotSupported) {
			t.Fatalf("%v: %v", c.t, err)
		}
		if !strings.Contains(err.Error(), c.section) || !strings.HasPrefix(err.Error(), "suite: ") ||
			!strings.Contains(err.Error(), "MUST NOT") {
			t.Errorf("%v: message %q", c.t, err)
		}
	}
	notSupported := []wire.Transform{
		tENCR(wire.Encr3DES, 0), tENCR(wire.EncrCAMELLIA_CBC, 128), tENCR(wire.EncrAES_CBC, 0),
		tENCR(wire.EncrAES_CBC, 100), tENCR(wire.EncrAES_GCM_16, 512), tENCR(wire.EncrCHACHA20_POLY1305, 128),
		tPRF(wire.PRF_AES128_XCBC), tPRF(wire.PRF_HMAC_TIGER), tINTEG(wire.IntegAES_XCBC_96),
		tKE(wire.KEMODP1024), tKE(wire.KEBrainpool256), {Type: 99, ID: 1}, tESN(7),
	}
	for _, tr := range notSupported {
		err := Supported(tr)
		if !errors.Is(err, ErrNotSupported) || errors.Is(err, ErrForbidden) || !strings.HasPrefix(err.Error(), "suite: ") {
			t.Errorf("%v: %v", tr, err)
		}
	}
	if err := Supported(tENCR(wire.EncrAES_CBC, 0)); !strings.Contains(err.Error(), "§3.3.5") {
		t.Errorf("missing AES key length: %v", err)
	}
	// RFC 7634 §2: no Key Length attribute; a lenient 256 is accepted.
	for _, bits := range []int{0, 256} {
		if e, err := LookupEncr(wire.EncrCHACHA20_POLY1305, bits); err != nil || e.KeyMatLen() != 36 {
			t.Errorf("ChaCha20-Poly1305 with key length %d: %v", bits, err)
		}
	}
	// ESP: ENCR_NULL allowed (RFC 8221 §5), DES and MD5 still not.
	if e, err := LookupESPEncr(wire.EncrNULL, 0); err != nil || e.KeyMatLen() != 0 {
		t.Errorf("ESP ENCR_NULL: %v", err)
	}
	if _, err := LookupESPEncr(wire.EncrDES, 0); !errors.Is(err, ErrForbidden) {
		t.Errorf("ESP DES: %v", err)
	}
	if err := CheckESP(tINTEG(wire.IntegHMAC_MD5_96)); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "RFC 8221") {
		t.Errorf("ESP HMAC-MD5: %v", err)
	}
	if _, err := NewSKProtector(encrTable[wire.EncrNULL][0], nil, nil, nil, nil, nil); !errors.Is(err, ErrForbidden) {
		t.Errorf("SK protector with ENCR_NULL: %v", err)
	}
}

// Key material lengths match RFC 5282 §7.1, RFC 5930, RFC 7634 §2, RFC 4309.
func TestKeyMatLengths(t *testing.T) {
	for _, c := range []struct {
		id       wire.EncrID
		bits, km int
		iv, icv  int
	}{
		{wire.EncrAES_CBC, 128, 16, 16, 0}, {wire.EncrAES_CBC, 256, 32, 16, 0},
		{wire.EncrAES_CTR, 192, 28, 8, 0}, {wire.EncrAES_GCM_16, 256, 36, 8, 16},
		{wire.EncrAES_GCM_8, 128, 20, 8, 8}, {wire.EncrAES_CCM_12, 128, 19, 8, 12},
		{wire.EncrAES_CCM_16, 256, 35, 8, 16}, {wire.EncrCHACHA20_POLY1305, 0, 36, 8, 16},
	} {
		e := mustEncr(t, c.id, c.bits)
		if e.KeyMatLen() != c.km || e.IVLen != c.iv || e.ICVLen != c.icv {
			t.Errorf("%v: keymat %d iv %d icv %d", e, e.KeyMatLen(), e.IVLen, e.ICVLen)
		}
	}
}

// Default proposals: every transform implemented and allowed, AEAD
// proposals without INTEG and the others with it (RFC 7296 §3.3), each
// proposal complete for its protocol.
func TestDefaultProposals(t *testing.T) {
	check := func(name string, props [][]wire.Transform, esp bool) {
		if len(props) != 2 {
			t.Fatalf("%s: %d proposals", name, len(props))
		}
		for i, p := range props {
			count := map[wire.TransformType]int{}
			aead := false
			for _, tr := range p {
				count[tr.Type]++
				if err := Supported(tr); err != nil {
					t.Errorf("%s[%d]: %v", name, i, err)
				}
				if err := CheckESP(tr); esp && err != nil {
					t.Errorf("%s[%d]: %v", name, i, err)
				}
				if tr.Type == wire.TransformENCR {
					e, _ := LookupEncr(wire.EncrID(tr.ID), int(tr.KeyLength))
					if i == 0 && !e.AEAD() || i == 1 && e.AEAD() {
						t.Errorf("%s[%d]: %v in the wrong proposal", name, i, tr)
					}
					aead = e.AEAD()
				}
			}
			if aead != (count[wire.TransformINTEG] == 0) || count[wire.TransformENCR] == 0 {
				t.Errorf("%s[%d]: AEAD %v with %d INTEG", name, i, aead, count[wire.TransformINTEG])
			}
			if esp && (count[wire.TransformPRF] != 0 || count[wire.TransformKE] != 0 || count[wire.TransformESN] == 0) {
				t.Errorf("%s[%d]: ESP proposal shape %v", name, i, count)
			}
			if !esp && (count[wire.TransformPRF] == 0 || count[wire.TransformKE] == 0 || count[wire.TransformESN] != 0) {
				t.Errorf("%s[%d]: IKE proposal shape %v", name, i, count)
			}
		}
	}
	check("IKE", DefaultIKEProposals(), false)
	check("ESP", DefaultESPProposals(), true)
	// Callers get copies.
	p := DefaultIKEProposals()
	p[0][0].ID = 0
	if DefaultIKEProposals()[0][0].ID == 0 {
		t.Fatal("DefaultIKEProposals shares its backing array")
	}
}
