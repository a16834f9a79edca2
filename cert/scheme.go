package cert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"

	"github.com/petrel-vpn/petrel/wire"
)

// Scheme is a signature scheme usable with the Digital Signature AUTH
// method (RFC 7427 §3): a key type, a hash and, for RSA, the padding.
type Scheme int

// Signature schemes. SHA-1 schemes exist for verification of old peers
// only; the default Policy refuses them (RFC 8247 §3.2).
const (
	SchemeRSAPKCS1SHA1 Scheme = iota + 1
	SchemeRSAPKCS1SHA256
	SchemeRSAPKCS1SHA384
	SchemeRSAPKCS1SHA512
	SchemeRSAPSSSHA256
	SchemeRSAPSSSHA384
	SchemeRSAPSSSHA512
	SchemeECDSASHA256
	SchemeECDSASHA384
	SchemeECDSASHA512
	SchemeEd25519
)

type keyKind int

const (
	keyRSA keyKind = iota + 1
	keyECDSA
	keyEd25519
)

type schemeInfo struct {
	name  string
	key   keyKind
	hash  crypto.Hash // 0 for Ed25519 (RFC 8420: the identity "hash")
	pss   bool
	algID []byte // DER AlgorithmIdentifier (RFC 7427 Appendix A, RFC 8420 §2)
}

// OIDs used in AlgorithmIdentifiers.
var (
	oidRSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
)

func hexDER(h string) []byte {
	var b []byte
	for i := 0; i+1 < len(h); i += 2 {
		var v byte
		fmt.Sscanf(h[i:i+2], "%02x", &v)
		b = append(b, v)
	}
	return b
}

var schemes = map[Scheme]*schemeInfo{
	// RFC 7427 Appendix A.1: PKCS#1 v1.5 (parameters NULL).
	SchemeRSAPKCS1SHA1:   {name: "RSA-PKCS1-SHA1", key: keyRSA, hash: crypto.SHA1, algID: hexDER("300d06092a864886f70d0101050500")},
	SchemeRSAPKCS1SHA256: {name: "RSA-PKCS1-SHA256", key: keyRSA, hash: crypto.SHA256, algID: hexDER("300d06092a864886f70d01010b0500")},
	SchemeRSAPKCS1SHA384: {name: "RSA-PKCS1-SHA384", key: keyRSA, hash: crypto.SHA384, algID: hexDER("300d06092a864886f70d01010c0500")},
	SchemeRSAPKCS1SHA512: {name: "RSA-PKCS1-SHA512", key: keyRSA, hash: crypto.SHA512, algID: hexDER("300d06092a864886f70d01010d0500")},
	// RFC 7427 Appendix A.4: RSASSA-PSS with MGF1 on the same hash and a
	// salt as long as the hash (built by pssAlgID).
	SchemeRSAPSSSHA256: {name: "RSA-PSS-SHA256", key: keyRSA, hash: crypto.SHA256, pss: true},
	SchemeRSAPSSSHA384: {name: "RSA-PSS-SHA384", key: keyRSA, hash: crypto.SHA384, pss: true},
	SchemeRSAPSSSHA512: {name: "RSA-PSS-SHA512", key: keyRSA, hash: crypto.SHA512, pss: true},
	// RFC 7427 Appendix A.3: ECDSA (parameters absent).
	SchemeECDSASHA256: {name: "ECDSA-SHA256", key: keyECDSA, hash: crypto.SHA256, algID: hexDER("300a06082a8648ce3d040302")},
	SchemeECDSASHA384: {name: "ECDSA-SHA384", key: keyECDSA, hash: crypto.SHA384, algID: hexDER("300a06082a8648ce3d040303")},
	SchemeECDSASHA512: {name: "ECDSA-SHA512", key: keyECDSA, hash: crypto.SHA512, algID: hexDER("300a06082a8648ce3d040304")},
	// RFC 8420 §2: id-Ed25519, parameters absent.
	SchemeEd25519: {name: "Ed25519", key: keyEd25519, algID: hexDER("300506032b6570")},
}

func init() {
	for _, s := range []Scheme{SchemeRSAPSSSHA256, SchemeRSAPSSSHA384, SchemeRSAPSSSHA512} {
		schemes[s].algID = pssAlgID(schemes[s].hash)
	}
}

func (s Scheme) String() string {
	if i, ok := schemes[s]; ok {
		return i.name
	}
	return fmt.Sprintf("SCHEME(%d)", int(s))
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier that prefixes a
// method-14 signature (RFC 7427 §3), or nil for an unknown scheme.
func (s Scheme) AlgorithmIdentifier() []byte {
	if i, ok := schemes[s]; ok {
		return bytes.Clone(i.algID)
	}
	return nil
}

// Hash returns the IKEv2 hash algorithm of the scheme for
// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4; Identity for Ed25519, RFC 8420).
func (s Scheme) Hash() wire.HashAlgorithm {
	i, ok := schemes[s]
	if !ok {
		return 0
	}
	return ikeHash(i.hash)
}

func ikeHash(h crypto.Hash) wire.HashAlgorithm {
	switch h {
	case 0:
		return wire.HashIdentity
	case crypto.SHA1:
		return wire.HashSHA1
	case crypto.SHA256:
		return wire.HashSHA2_256
	case crypto.SHA384:
		return wire.HashSHA2_384
	case crypto.SHA512:
		return wire.HashSHA2_512
	}
	return 0
}

var hashOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1: oidSHA1, crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512,
}

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

// pssParams is RSASSA-PSS-params (RFC 4055 §3.1).
type pssParams struct {
	Hash         algorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF          algorithmIdentifier `asn1:"explicit,tag:1,optional"`
	SaltLength   int                 `asn1:"explicit,tag:2,optional,default:20"`
	TrailerField int                 `asn1:"explicit,tag:3,optional,default:1"`
}

var asn1NULL = asn1.RawValue{Tag: asn1.TagNull}

func pssAlgID(h crypto.Hash) []byte {
	hashAlg := algorithmIdentifier{Algorithm: hashOIDs[h], Parameters: asn1.RawValue{FullBytes: []byte{5, 0}}}
	hashDER, err := asn1.Marshal(hashAlg)
	if err != nil {
		panic("cert: " + err.Error())
	}
	params := pssParams{
		Hash:         hashAlg,
		MGF:          algorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: hashDER}},
		SaltLength:   h.Size(),
		TrailerField: 1,
	}
	pDER, err := asn1.Marshal(params)
	if err != nil {
		panic("cert: " + err.Error())
	}
	der, err := asn1.Marshal(algorithmIdentifier{Algorithm: oidRSAPSS, Parameters: asn1.RawValue{FullBytes: pDER}})
	if err != nil {
		panic("cert: " + err.Error())
	}
	return der
}

// parsedAlg is what a received AlgorithmIdentifier asks for.
type parsedAlg struct {
	scheme Scheme
	salt   int // RSA-PSS salt length
}

// parseAlgorithmIdentifier maps a received AlgorithmIdentifier to a scheme.
// Fixed identifiers must match their DER exactly; RSASSA-PSS parameters are
// decoded, so any salt length is accepted but the MGF1 hash must equal the
// message hash.
func parseAlgorithmIdentifier(der []byte) (parsedAlg, error) {
	for s, i := range schemes {
		if !i.pss && bytes.Equal(i.algID, der) {
			return parsedAlg{scheme: s}, nil
		}
	}
	var ai algorithmIdentifier
	if rest, err := asn1.Unmarshal(der, &ai); err != nil || len(rest) != 0 {
		return parsedAlg{}, refuse(ReasonMalformed, "", "AlgorithmIdentifier does not parse")
	}
	if !ai.Algorithm.Equal(oidRSAPSS) {
		return parsedAlg{}, refuse(ReasonUnsupportedHash, "", "signature algorithm %v not supported", ai.Algorithm)
	}
	var p pssParams
	if rest, err := asn1.Unmarshal(ai.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
		return parsedAlg{}, refuse(ReasonMalformed, "", "RSASSA-PSS parameters do not parse")
	}
	var h crypto.Hash
	for hh, oid := range hashOIDs {
		if p.Hash.Algorithm.Equal(oid) {
			h = hh
		}
	}
	var mgfHash algorithmIdentifier
	if len(p.MGF.Parameters.FullBytes) > 0 {
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil {
			return parsedAlg{}, refuse(ReasonMalformed, "", "RSASSA-PSS MGF parameters do not parse")
		}
	}
	if h == 0 || !p.MGF.Algorithm.Equal(oidMGF1) || !mgfHash.Algorithm.Equal(hashOIDs[h]) || p.TrailerField != 1 {
		return parsedAlg{}, refuse(ReasonUnsupportedHash, "", "RSASSA-PSS with hash %v, MGF %v(%v) not supported",
			p.Hash.Algorithm, p.MGF.Algorithm, mgfHash.Algorithm)
	}
	for s, i := range schemes {
		if i.pss && i.hash == h {
			return parsedAlg{scheme: s, salt: p.SaltLength}, nil
		}
	}
	return parsedAlg{}, refuse(ReasonUnsupportedHash, "", "RSASSA-PSS with %v not supported", h)
}

func kindOf(pub crypto.PublicKey) keyKind {
	switch pub.(type) {
	case *rsa.PublicKey:
		return keyRSA
	case *ecdsa.PublicKey:
		return keyECDSA
	case ed25519.PublicKey:
		return keyEd25519
	}
	return 0
}
