package suite

import (
	"errors"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func TestNegotiated(t *testing.T) {
	n, err := NegotiatedIKE([]wire.Transform{
		tENCR(wire.EncrAES_GCM_16, 256), tPRF(wire.PRF_HMAC_SHA2_384), tKE(wire.KECurve25519),
		{Type: wire.TransformADDKE1, ID: uint16(wire.KEMLKEM768)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n.Encr.ID != wire.EncrAES_GCM_16 || n.PRF.Size != 48 || n.Integ != nil || n.KE.ID != wire.KECurve25519 ||
		n.AddKE[0] == nil || n.AddKE[0].ID != wire.KEMLKEM768 || n.AddKE[1] != nil {
		t.Fatalf("%+v", n)
	}
	if err := n.Suite().Validate(); err != nil {
		t.Fatal(err)
	}
	n, err = NegotiatedESP([]wire.Transform{tENCR(wire.EncrAES_CBC, 128), tINTEG(wire.IntegHMAC_SHA2_256_128),
		tKE(wire.KEECP256), tESN(wire.ESNOn)})
	if err != nil || !n.ESN || n.KE == nil || n.Integ.KeyLen != 32 {
		t.Fatalf("%+v %v", n, err)
	}
	if n, err := NegotiatedESP([]wire.Transform{tENCR(wire.EncrNULL, 0), tINTEG(wire.IntegHMAC_SHA2_256_128), tESN(wire.ESNNone)}); err != nil || n.Encr.KeyMatLen() != 0 {
		t.Fatalf("ESP NULL: %v", err)
	}
	for name, c := range map[string]struct {
		ts   []wire.Transform
		esp  bool
		want error
	}{
		"AEAD+INTEG":   {[]wire.Transform{tENCR(wire.EncrAES_GCM_16, 128), tPRF(wire.PRF_HMAC_SHA1), tINTEG(wire.IntegHMAC_SHA1_96), tKE(wire.KEECP256)}, false, nil},
		"CBC no INTEG": {[]wire.Transform{tENCR(wire.EncrAES_CBC, 128), tPRF(wire.PRF_HMAC_SHA1), tKE(wire.KEECP256)}, false, nil},
		"no KE":        {[]wire.Transform{tENCR(wire.EncrAES_GCM_16, 128), tPRF(wire.PRF_HMAC_SHA1)}, false, nil},
		"two ENCR":     {[]wire.Transform{tENCR(wire.EncrAES_GCM_16, 128), tENCR(wire.EncrAES_GCM_16, 256), tPRF(wire.PRF_HMAC_SHA1), tKE(wire.KEECP256)}, false, nil},
		"IKE NULL":     {[]wire.Transform{tENCR(wire.EncrNULL, 0), tPRF(wire.PRF_HMAC_SHA1), tINTEG(wire.IntegHMAC_SHA1_96), tKE(wire.KEECP256)}, false, ErrForbidden},
		"IKE MD5":      {[]wire.Transform{tENCR(wire.EncrAES_GCM_16, 128), tPRF(wire.PRF_HMAC_MD5), tKE(wire.KEECP256)}, false, ErrForbidden},
		"IKE ESN":      {[]wire.Transform{tENCR(wire.EncrAES_GCM_16, 128), tPRF(wire.PRF_HMAC_SHA1), tKE(wire.KEECP256), tESN(0)}, false, ErrNotSupported},
		"ESP PRF":      {[]wire.Transform{tENCR(wire.EncrAES_GCM_16, 128), tPRF(wire.PRF_HMAC_SHA1)}, true, nil},
		"ESP DES":      {[]wire.Transform{tENCR(wire.EncrDES, 0), tINTEG(wire.IntegHMAC_SHA1_96)}, true, ErrForbidden},
		"ESP 3DES":     {[]wire.Transform{tENCR(wire.Encr3DES, 0), tINTEG(wire.IntegHMAC_SHA1_96)}, true, ErrNotSupported},
		"no ENCR":      {[]wire.Transform{tINTEG(wire.IntegHMAC_SHA1_96)}, true, nil},
	} {
		var err error
		if c.esp {
			_, err = NegotiatedESP(c.ts)
		} else {
			_, err = NegotiatedIKE(c.ts)
		}
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
