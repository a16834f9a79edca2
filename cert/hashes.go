package cert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// SupportedHashes is what petrel announces in SIGNATURE_HASH_ALGORITHMS
// (RFC 7427 §4): SHA-2 and, for Ed25519, Identity (RFC 8420 §2).
var SupportedHashes = []wire.HashAlgorithm{wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512, wire.HashIdentity}

// HashNotify builds the SIGNATURE_HASH_ALGORITHMS notification an
// IKE_SA_INIT carries (RFC 7427 §4).
func HashNotify() *wire.Notify { return wire.NewSignatureHashAlgorithms(SupportedHashes...) }

// PeerHashes extracts the peer's SIGNATURE_HASH_ALGORITHMS list from its
// IKE_SA_INIT payloads. sent is false if the peer did not send one, which
// means it does not support RFC 7427 and gets the classic methods.
func PeerHashes(payloads []wire.Payload) (algs []wire.HashAlgorithm, sent bool) {
	n := wire.FindNotify(payloads, wire.SIGNATURE_HASH_ALGORITHMS)
	if n == nil {
		return nil, false
	}
	algs, _ = n.SignatureHashAlgorithms()
	return algs, true
}

// Choose picks the AUTH method and scheme for signing with a key of type
// pub, given the peer's SIGNATURE_HASH_ALGORITHMS (peerSent false when it
// sent none). With the notification, method 14 is used with the first hash
// the peer lists in our order: SHA-256 first for RSA, the curve's own hash
// first for ECDSA, Identity for Ed25519 (RFC 7427 §4, RFC 8420); rsaPSS
// picks RSASSA-PSS over PKCS#1 v1.5. Without the notification, or with no
// common hash, the classic method for the key is used: 1 for RSA, 9/10/11
// for ECDSA on P-256/384/521 (RFC 7296 §3.8); Ed25519 has none.
func Choose(pub crypto.PublicKey, peerHashes []wire.HashAlgorithm, peerSent, rsaPSS bool) (wire.AuthMethod, Scheme, error) {
	if !peerSent {
		return classic(pub)
	}
	if m, s, ok := choose7427(pub, peerHashes, rsaPSS); ok {
		return m, s, nil
	}
	// No common hash: RFC 7427 §4 leaves the classic methods, as strongSwan
	// does; Ed25519 has none.
	if m, s, err := classic(pub); err == nil {
		return m, s, nil
	}
	return 0, 0, refuse(ReasonUnsupportedHash, "", "peer's hash algorithms %v share none with a %T key", peerHashes, pub)
}

// classic picks the RFC 7296 §3.8 / RFC 4754 method for the key.
func classic(pub crypto.PublicKey) (wire.AuthMethod, Scheme, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return wire.AuthRSASignature, SchemeRSAPKCS1SHA1, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return wire.AuthECDSA256, SchemeECDSASHA256, nil
		case elliptic.P384():
			return wire.AuthECDSA384, SchemeECDSASHA384, nil
		case elliptic.P521():
			return wire.AuthECDSA521, SchemeECDSASHA512, nil
		}
	}
	return 0, 0, refuse(ReasonUnsupportedHash, "", "peer sent no SIGNATURE_HASH_ALGORITHMS and a %T key has no classic AUTH method", pub)
}

func choose7427(pub crypto.PublicKey, peerHashes []wire.HashAlgorithm, rsaPSS bool) (wire.AuthMethod, Scheme, bool) {
	var order []Scheme
	switch k := pub.(type) {
	case ed25519.PublicKey:
		order = []Scheme{SchemeEd25519}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			order = []Scheme{SchemeECDSASHA384, SchemeECDSASHA512, SchemeECDSASHA256}
		case elliptic.P521():
			order = []Scheme{SchemeECDSASHA512, SchemeECDSASHA384, SchemeECDSASHA256}
		default:
			order = []Scheme{SchemeECDSASHA256, SchemeECDSASHA384, SchemeECDSASHA512}
		}
	case *rsa.PublicKey:
		order = []Scheme{SchemeRSAPKCS1SHA256, SchemeRSAPKCS1SHA384, SchemeRSAPKCS1SHA512}
		if rsaPSS {
			order = []Scheme{SchemeRSAPSSSHA256, SchemeRSAPSSSHA384, SchemeRSAPSSSHA512}
		}
	}
	for _, s := range order {
		if slices.Contains(peerHashes, s.Hash()) {
			return wire.AuthDigitalSignature, s, true
		}
	}
	return 0, 0, false
}
