package wire

import "strconv"

// TransformType is the IANA "Transform Type Values" registry (RFC 7296 §3.3.2,
// RFC 9370 §3 for the additional key exchanges).
type TransformType uint8

const (
	TransformENCR   TransformType = 1
	TransformPRF    TransformType = 2
	TransformINTEG  TransformType = 3
	TransformKE     TransformType = 4 // "D-H" in RFC 7296, "Key Exchange Method" since RFC 9370
	TransformESN    TransformType = 5
	TransformADDKE1 TransformType = 6 // RFC 9370 additional key exchanges 1..7
	TransformADDKE2 TransformType = 7
	TransformADDKE3 TransformType = 8
	TransformADDKE4 TransformType = 9
	TransformADDKE5 TransformType = 10
	TransformADDKE6 TransformType = 11
	TransformADDKE7 TransformType = 12
)

var transformTypeNames = map[TransformType]string{
	TransformENCR: "ENCR", TransformPRF: "PRF", TransformINTEG: "INTEG", TransformKE: "KE",
	TransformESN: "ESN", TransformADDKE1: "ADDKE1", TransformADDKE2: "ADDKE2", TransformADDKE3: "ADDKE3",
	TransformADDKE4: "ADDKE4", TransformADDKE5: "ADDKE5", TransformADDKE6: "ADDKE6", TransformADDKE7: "ADDKE7",
}

func (t TransformType) String() string { return regName(transformTypeNames, t, "TRANSFORM_TYPE") }

// IsKE reports whether transforms of this type carry key exchange method IDs
// (the KE transform and RFC 9370's ADDKE1..7).
func (t TransformType) IsKE() bool {
	return t == TransformKE || (t >= TransformADDKE1 && t <= TransformADDKE7)
}

// EncrID is a Transform Type 1 (Encryption Algorithm) ID.
type EncrID uint16

const (
	EncrDES_IV64              EncrID = 1
	EncrDES                   EncrID = 2
	Encr3DES                  EncrID = 3
	EncrRC5                   EncrID = 4
	EncrIDEA                  EncrID = 5
	EncrCAST                  EncrID = 6
	EncrBLOWFISH              EncrID = 7
	Encr3IDEA                 EncrID = 8
	EncrDES_IV32              EncrID = 9
	EncrNULL                  EncrID = 11
	EncrAES_CBC               EncrID = 12
	EncrAES_CTR               EncrID = 13
	EncrAES_CCM_8             EncrID = 14
	EncrAES_CCM_12            EncrID = 15
	EncrAES_CCM_16            EncrID = 16
	EncrAES_GCM_8             EncrID = 18
	EncrAES_GCM_12            EncrID = 19
	EncrAES_GCM_16            EncrID = 20
	EncrNULL_AUTH_AES_GMAC    EncrID = 21
	EncrCAMELLIA_CBC          EncrID = 23
	EncrCAMELLIA_CTR          EncrID = 24
	EncrCAMELLIA_CCM_8        EncrID = 25
	EncrCAMELLIA_CCM_12       EncrID = 26
	EncrCAMELLIA_CCM_16       EncrID = 27
	EncrCHACHA20_POLY1305     EncrID = 28
	EncrAES_CCM_8_IIV         EncrID = 29
	EncrAES_GCM_16_IIV        EncrID = 30
	EncrCHACHA20_POLY1305_IIV EncrID = 31
)

var encrNames = map[EncrID]string{
	EncrDES_IV64: "DES_IV64", EncrDES: "DES", Encr3DES: "3DES", EncrRC5: "RC5", EncrIDEA: "IDEA",
	EncrCAST: "CAST", EncrBLOWFISH: "BLOWFISH", Encr3IDEA: "3IDEA", EncrDES_IV32: "DES_IV32",
	EncrNULL: "NULL", EncrAES_CBC: "AES_CBC", EncrAES_CTR: "AES_CTR", EncrAES_CCM_8: "AES_CCM_8",
	EncrAES_CCM_12: "AES_CCM_12", EncrAES_CCM_16: "AES_CCM_16", EncrAES_GCM_8: "AES_GCM_8",
	EncrAES_GCM_12: "AES_GCM_12", EncrAES_GCM_16: "AES_GCM_16", EncrNULL_AUTH_AES_GMAC: "NULL_AUTH_AES_GMAC",
	EncrCAMELLIA_CBC: "CAMELLIA_CBC", EncrCAMELLIA_CTR: "CAMELLIA_CTR", EncrCAMELLIA_CCM_8: "CAMELLIA_CCM_8",
	EncrCAMELLIA_CCM_12: "CAMELLIA_CCM_12", EncrCAMELLIA_CCM_16: "CAMELLIA_CCM_16",
	EncrCHACHA20_POLY1305: "CHACHA20_POLY1305", EncrAES_CCM_8_IIV: "AES_CCM_8_IIV",
	EncrAES_GCM_16_IIV: "AES_GCM_16_IIV", EncrCHACHA20_POLY1305_IIV: "CHACHA20_POLY1305_IIV",
}

func (id EncrID) String() string { return regName(encrNames, id, "ENCR") }

// PRFID is a Transform Type 2 (Pseudorandom Function) ID.
type PRFID uint16

const (
	PRF_HMAC_MD5      PRFID = 1
	PRF_HMAC_SHA1     PRFID = 2
	PRF_HMAC_TIGER    PRFID = 3
	PRF_AES128_XCBC   PRFID = 4
	PRF_HMAC_SHA2_256 PRFID = 5
	PRF_HMAC_SHA2_384 PRFID = 6
	PRF_HMAC_SHA2_512 PRFID = 7
	PRF_AES128_CMAC   PRFID = 8
)

var prfNames = map[PRFID]string{
	PRF_HMAC_MD5: "PRF_HMAC_MD5", PRF_HMAC_SHA1: "PRF_HMAC_SHA1", PRF_HMAC_TIGER: "PRF_HMAC_TIGER",
	PRF_AES128_XCBC: "PRF_AES128_XCBC", PRF_HMAC_SHA2_256: "PRF_HMAC_SHA2_256",
	PRF_HMAC_SHA2_384: "PRF_HMAC_SHA2_384", PRF_HMAC_SHA2_512: "PRF_HMAC_SHA2_512",
	PRF_AES128_CMAC: "PRF_AES128_CMAC",
}

func (id PRFID) String() string { return regName(prfNames, id, "PRF") }

// IntegID is a Transform Type 3 (Integrity Algorithm) ID.
type IntegID uint16

const (
	IntegNONE              IntegID = 0
	IntegHMAC_MD5_96       IntegID = 1
	IntegHMAC_SHA1_96      IntegID = 2
	IntegDES_MAC           IntegID = 3
	IntegKPDK_MD5          IntegID = 4
	IntegAES_XCBC_96       IntegID = 5
	IntegHMAC_MD5_128      IntegID = 6
	IntegHMAC_SHA1_160     IntegID = 7
	IntegAES_CMAC_96       IntegID = 8
	IntegAES_128_GMAC      IntegID = 9
	IntegAES_192_GMAC      IntegID = 10
	IntegAES_256_GMAC      IntegID = 11
	IntegHMAC_SHA2_256_128 IntegID = 12
	IntegHMAC_SHA2_384_192 IntegID = 13
	IntegHMAC_SHA2_512_256 IntegID = 14
)

var integNames = map[IntegID]string{
	IntegNONE: "NONE", IntegHMAC_MD5_96: "HMAC_MD5_96", IntegHMAC_SHA1_96: "HMAC_SHA1_96",
	IntegDES_MAC: "DES_MAC", IntegKPDK_MD5: "KPDK_MD5", IntegAES_XCBC_96: "AES_XCBC_96",
	IntegHMAC_MD5_128: "HMAC_MD5_128", IntegHMAC_SHA1_160: "HMAC_SHA1_160", IntegAES_CMAC_96: "AES_CMAC_96",
	IntegAES_128_GMAC: "AES_128_GMAC", IntegAES_192_GMAC: "AES_192_GMAC", IntegAES_256_GMAC: "AES_256_GMAC",
	IntegHMAC_SHA2_256_128: "HMAC_SHA2_256_128", IntegHMAC_SHA2_384_192: "HMAC_SHA2_384_192",
	IntegHMAC_SHA2_512_256: "HMAC_SHA2_512_256",
}

func (id IntegID) String() string { return regName(integNames, id, "AUTH") }

// KEID is a Transform Type 4 (Key Exchange Method, formerly Diffie-Hellman
// Group) ID; also used by the KE payload and INVALID_KE_PAYLOAD.
type KEID uint16

const (
	KENone         KEID = 0
	KEMODP768      KEID = 1
	KEMODP1024     KEID = 2
	KEMODP1536     KEID = 5
	KEMODP2048     KEID = 14
	KEMODP3072     KEID = 15
	KEMODP4096     KEID = 16
	KEMODP6144     KEID = 17
	KEMODP8192     KEID = 18
	KEECP256       KEID = 19
	KEECP384       KEID = 20
	KEECP521       KEID = 21
	KEMODP1024_160 KEID = 22
	KEMODP2048_224 KEID = 23
	KEMODP2048_256 KEID = 24
	KEECP192       KEID = 25
	KEECP224       KEID = 26
	KEBrainpool224 KEID = 27
	KEBrainpool256 KEID = 28
	KEBrainpool384 KEID = 29
	KEBrainpool512 KEID = 30
	KECurve25519   KEID = 31
	KECurve448     KEID = 32
	KEGOST256      KEID = 33
	KEGOST512      KEID = 34
	KEMLKEM512     KEID = 35
	KEMLKEM768     KEID = 36
	KEMLKEM1024    KEID = 37
)

var keNames = map[KEID]string{
	KENone: "NONE", KEMODP768: "MODP_768", KEMODP1024: "MODP_1024", KEMODP1536: "MODP_1536",
	KEMODP2048: "MODP_2048", KEMODP3072: "MODP_3072", KEMODP4096: "MODP_4096", KEMODP6144: "MODP_6144",
	KEMODP8192: "MODP_8192", KEECP256: "ECP_256", KEECP384: "ECP_384", KEECP521: "ECP_521",
	KEMODP1024_160: "MODP_1024_160", KEMODP2048_224: "MODP_2048_224", KEMODP2048_256: "MODP_2048_256",
	KEECP192: "ECP_192", KEECP224: "ECP_224", KEBrainpool224: "ECP_224_BP", KEBrainpool256: "ECP_256_BP",
	KEBrainpool384: "ECP_384_BP", KEBrainpool512: "ECP_512_BP", KECurve25519: "CURVE_25519",
	KECurve448: "CURVE_448", KEGOST256: "GOST3410_2012_256", KEGOST512: "GOST3410_2012_512",
	KEMLKEM512: "ML_KEM_512", KEMLKEM768: "ML_KEM_768", KEMLKEM1024: "ML_KEM_1024",
}

func (id KEID) String() string { return regName(keNames, id, "KE") }

// ESNID is a Transform Type 5 (Extended Sequence Numbers) ID.
type ESNID uint16

const (
	ESNNone ESNID = 0
	ESNOn   ESNID = 1
)

func (id ESNID) String() string {
	switch id {
	case ESNNone:
		return "NO_ESN"
	case ESNOn:
		return "ESN"
	}
	return "ESN(" + strconv.Itoa(int(id)) + ")"
}

// AttrKeyLength is the only transform attribute type RFC 7296 §3.3.5 defines
// (TV format, value in bits).
const AttrKeyLength uint16 = 14

// Transform is one transform of a proposal (RFC 7296 §3.3.2). KeyLength is the
// Key Length attribute in bits, 0 when absent.
type Transform struct {
	Type      TransformType
	ID        uint16
	KeyLength uint16
}

// String names the transform the way engineers read proposals:
// "ENCR AES_GCM_16-256", "PRF PRF_HMAC_SHA2_256", "KE CURVE_25519".
func (t Transform) String() string {
	name := TransformIDString(t.Type, t.ID)
	if t.KeyLength != 0 {
		name += "-" + strconv.Itoa(int(t.KeyLength))
	}
	return t.Type.String() + " " + name
}

// TransformIDString names a transform ID in the registry of its type.
func TransformIDString(typ TransformType, id uint16) string {
	switch {
	case typ == TransformENCR:
		return EncrID(id).String()
	case typ == TransformPRF:
		return PRFID(id).String()
	case typ == TransformINTEG:
		return IntegID(id).String()
	case typ.IsKE():
		return KEID(id).String()
	case typ == TransformESN:
		return ESNID(id).String()
	}
	return strconv.Itoa(int(id))
}

// regName looks v up in a registry table, falling back to PREFIX(n) so that
// unknown values still print unambiguously.
func regName[T ~uint8 | ~uint16 | ~uint32](names map[T]string, v T, prefix string) string {
	if s, ok := names[v]; ok {
		return s
	}
	return prefix + "(" + strconv.FormatUint(uint64(v), 10) + ")"
}
