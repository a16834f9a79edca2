package suite

import "github.com/petrel-vpn/petrel/wire"

// forbiddenIKE lists the transforms RFC 8247 (and RFC 9395, which moved the
// IKEv1-era algorithms to deprecated) say MUST NOT be used with IKEv2.
var forbiddenIKE = map[wire.TransformType]map[uint16]string{
	wire.TransformENCR: {
		uint16(wire.EncrDES_IV64):           "RFC 8247 §2.1, RFC 9395",
		uint16(wire.EncrDES):                "RFC 8247 §2.1",
		uint16(wire.EncrDES_IV32):           "RFC 8247 §2.1, RFC 9395",
		uint16(wire.EncrRC5):                "RFC 9395",
		uint16(wire.EncrIDEA):               "RFC 9395",
		uint16(wire.EncrCAST):               "RFC 9395",
		uint16(wire.EncrBLOWFISH):           "RFC 9395",
		uint16(wire.Encr3IDEA):              "RFC 9395",
		uint16(wire.EncrNULL):               "RFC 8247 §2.1: IKE must be encrypted, RFC 7296 §3.3.2",
		uint16(wire.EncrNULL_AUTH_AES_GMAC): "RFC 8247 §2.1: IKE must be encrypted",
	},
	wire.TransformPRF: {
		uint16(wire.PRF_HMAC_MD5): "RFC 8247 §2.2",
	},
	wire.TransformINTEG: {
		uint16(wire.IntegHMAC_MD5_96): "RFC 8247 §2.3",
		uint16(wire.IntegDES_MAC):     "RFC 8247 §2.3",
		uint16(wire.IntegKPDK_MD5):    "RFC 8247 §2.3",
	},
	wire.TransformKE: {
		uint16(wire.KEMODP768): "RFC 8247 §2.4",
	},
}

// forbiddenESP lists the transforms RFC 8221 says MUST NOT be used with ESP.
var forbiddenESP = map[wire.TransformType]map[uint16]string{
	wire.TransformENCR: {
		uint16(wire.EncrDES):      "RFC 8221 §5",
		uint16(wire.EncrDES_IV64): "RFC 8221 §5, RFC 9395",
		uint16(wire.EncrDES_IV32): "RFC 8221 §5, RFC 9395",
		uint16(wire.EncrRC5):      "RFC 9395",
		uint16(wire.EncrIDEA):     "RFC 9395",
		uint16(wire.EncrCAST):     "RFC 9395",
		uint16(wire.EncrBLOWFISH): "RFC 9395",
		uint16(wire.Encr3IDEA):    "RFC 9395",
	},
	wire.TransformINTEG: {
		uint16(wire.IntegHMAC_MD5_96): "RFC 8221 §6",
		uint16(wire.IntegDES_MAC):     "RFC 8221 §6",
		uint16(wire.IntegKPDK_MD5):    "RFC 8221 §6",
	},
	wire.TransformKE: {
		uint16(wire.KEMODP768): "RFC 8247 §2.4",
	},
}

// CheckIKE reports whether RFC 8247 allows t in an IKE SA proposal. It
// returns a *ForbiddenError naming the section for MUST NOT transforms and
// nil otherwise (whether implemented or not). KE methods are checked under
// any of the KE/ADDKE transform types.
func CheckIKE(t wire.Transform) error { return check(forbiddenIKE, t) }

// CheckESP is CheckIKE for Child SA (ESP) proposals under RFC 8221.
func CheckESP(t wire.Transform) error { return check(forbiddenESP, t) }

func check(table map[wire.TransformType]map[uint16]string, t wire.Transform) error {
	typ := t.Type
	if typ.IsKE() {
		typ = wire.TransformKE
	}
	if sec, ok := table[typ][t.ID]; ok {
		return &ForbiddenError{Transform: t, Section: sec}
	}
	return nil
}

// Supported reports whether t is implemented and allowed for IKE: the
// error is nil, a *ForbiddenError or a *NotSupportedError. ESN transforms
// are accepted (they do not concern IKE SAs' crypto).
func Supported(t wire.Transform) error {
	switch {
	case t.Type == wire.TransformENCR:
		_, err := LookupEncr(wire.EncrID(t.ID), int(t.KeyLength))
		return err
	case t.Type == wire.TransformPRF:
		_, err := LookupPRF(wire.PRFID(t.ID))
		return err
	case t.Type == wire.TransformINTEG:
		if wire.IntegID(t.ID) == wire.IntegNONE {
			return nil
		}
		_, err := LookupInteg(wire.IntegID(t.ID))
		return err
	case t.Type.IsKE():
		if wire.KEID(t.ID) == wire.KENone {
			return nil
		}
		_, err := LookupKE(wire.KEID(t.ID))
		return err
	case t.Type == wire.TransformESN:
		if t.ID <= uint16(wire.ESNOn) {
			return nil
		}
	}
	return &NotSupportedError{Transform: t}
}

func tENCR(id wire.EncrID, bits uint16) wire.Transform {
	return wire.Transform{Type: wire.TransformENCR, ID: uint16(id), KeyLength: bits}
}
func tPRF(id wire.PRFID) wire.Transform {
	return wire.Transform{Type: wire.TransformPRF, ID: uint16(id)}
}
func tINTEG(id wire.IntegID) wire.Transform {
	return wire.Transform{Type: wire.TransformINTEG, ID: uint16(id)}
}
func tKE(id wire.KEID) wire.Transform {
	return wire.Transform{Type: wire.TransformKE, ID: uint16(id)}
}
func tESN(id wire.ESNID) wire.Transform {
	return wire.Transform{Type: wire.TransformESN, ID: uint16(id)}
}

// Default preference order, strongest-and-fastest first (in the spirit of
// Cisco's "smart defaults"): AES-GCM-16 and ChaCha20-Poly1305 before CBC,
// X25519 and P-256 before larger curves and MODP. PRF_HMAC_SHA2_256 leads
// because it is what peers most commonly pick and costs least per prf+ block.
var (
	defaultAEAD = []wire.Transform{
		tENCR(wire.EncrAES_GCM_16, 256), tENCR(wire.EncrCHACHA20_POLY1305, 0), tENCR(wire.EncrAES_GCM_16, 128),
	}
	defaultCBC   = []wire.Transform{tENCR(wire.EncrAES_CBC, 256), tENCR(wire.EncrAES_CBC, 128)}
	defaultPRF   = []wire.Transform{tPRF(wire.PRF_HMAC_SHA2_256), tPRF(wire.PRF_HMAC_SHA2_384), tPRF(wire.PRF_HMAC_SHA2_512)}
	defaultInteg = []wire.Transform{
		tINTEG(wire.IntegHMAC_SHA2_256_128), tINTEG(wire.IntegHMAC_SHA2_384_192), tINTEG(wire.IntegHMAC_SHA2_512_256),
	}
	defaultKE = []wire.Transform{
		tKE(wire.KECurve25519), tKE(wire.KEECP256), tKE(wire.KEECP384), tKE(wire.KEECP521),
		tKE(wire.KEMODP3072), tKE(wire.KEMODP2048),
	}
)

func cat(parts ...[]wire.Transform) []wire.Transform {
	var out []wire.Transform
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// DefaultIKEProposals returns the default IKE SA proposals, one slice of
// transforms per proposal: first an AEAD proposal (no INTEG, RFC 7296 §3.3),
// then an encrypt-then-MAC one. The slices are fresh copies.
func DefaultIKEProposals() [][]wire.Transform {
	return [][]wire.Transform{
		cat(defaultAEAD, defaultPRF, defaultKE),
		cat(defaultCBC, defaultPRF, defaultInteg, defaultKE),
	}
}

// DefaultESPProposals returns the default Child SA (ESP) proposals, AEAD
// first, without a KE transform (the engine adds the IKE SA's KE method when
// PFS is configured, RFC 7296 §1.3.1) and without extended sequence numbers.
func DefaultESPProposals() [][]wire.Transform {
	return [][]wire.Transform{
		cat(defaultAEAD, []wire.Transform{tESN(wire.ESNNone)}),
		cat(defaultCBC, defaultInteg, []wire.Transform{tESN(wire.ESNNone)}),
	}
}
