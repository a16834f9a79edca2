package cert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// classicECDSA maps the RFC 4754 AUTH methods to their fixed curve and hash.
var classicECDSA = map[wire.AuthMethod]struct {
	curve elliptic.Curve
	hash  crypto.Hash
}{
	wire.AuthECDSA256: {elliptic.P256(), crypto.SHA256},
	wire.AuthECDSA384: {elliptic.P384(), crypto.SHA384},
	wire.AuthECDSA521: {elliptic.P521(), crypto.SHA512},
}

// SignAuth signs signedOctets (RFC 7296 §2.15) with key and returns the
// AUTH payload. With method AuthDigitalSignature (RFC 7427 §3) scheme picks
// the algorithm and the data is the AlgorithmIdentifier length, the
// AlgorithmIdentifier and the signature (ECDSA in DER, RFC 7427 §3). The
// classic methods ignore scheme: AuthRSASignature is PKCS#1 v1.5 with SHA-1
// (RFC 7296 §3.8), AuthECDSA256/384/521 use the curve's fixed hash and the
// r|s encoding of RFC 4754 §7. rnd may be nil for crypto/rand.
func SignAuth(rnd io.Reader, key crypto.Signer, method wire.AuthMethod, scheme Scheme, signedOctets []byte) (*wire.Auth, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	pub := key.Public()
	switch method {
	case wire.AuthDigitalSignature:
		info, ok := schemes[scheme]
		if !ok {
			return nil, refuse(ReasonUnsupportedHash, "", "unknown signature scheme %v", scheme)
		}
		if kindOf(pub) != info.key {
			return nil, fmt.Errorf("cert: scheme %v does not fit a %T key", scheme, pub)
		}
		sig, err := signWith(rnd, key, info, signedOctets)
		if err != nil {
			return nil, err
		}
		data := make([]byte, 0, 1+len(info.algID)+len(sig))
		data = append(append(append(data, byte(len(info.algID))), info.algID...), sig...)
		return &wire.Auth{Method: method, Data: data}, nil
	case wire.AuthRSASignature:
		if kindOf(pub) != keyRSA {
			return nil, fmt.Errorf("cert: AUTH method %v needs an RSA key, have %T", method, pub)
		}
		sig, err := signWith(rnd, key, schemes[SchemeRSAPKCS1SHA1], signedOctets)
		if err != nil {
			return nil, err
		}
		return &wire.Auth{Method: method, Data: sig}, nil
	case wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521:
		c := classicECDSA[method]
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != c.curve {
			return nil, fmt.Errorf("cert: AUTH method %v needs an ECDSA %s key", method, c.curve.Params().Name)
		}
		der, err := key.Sign(rnd, digest(c.hash, signedOctets), c.hash)
		if err != nil {
			return nil, fmt.Errorf("cert: signing: %w", err)
		}
		rs, err := derToRS(der, c.curve)
		if err != nil {
			return nil, err
		}
		return &wire.Auth{Method: method, Data: rs}, nil
	}
	return nil, fmt.Errorf("cert: AUTH method %v is not a signature method", method)
}

func digest(h crypto.Hash, msg []byte) []byte {
	hh := h.New()
	hh.Write(msg)
	return hh.Sum(nil)
}

func signWith(rnd io.Reader, key crypto.Signer, info *schemeInfo, msg []byte) ([]byte, error) {
	var (
		sig []byte
		err error
	)
	switch {
	case info.key == keyEd25519:
		sig, err = key.Sign(rnd, msg, crypto.Hash(0))
	case info.pss:
		sig, err = key.Sign(rnd, digest(info.hash, msg), &rsa.PSSOptions{SaltLength: info.hash.Size(), Hash: info.hash})
	default:
		sig, err = key.Sign(rnd, digest(info.hash, msg), info.hash)
	}
	if err != nil {
		return nil, fmt.Errorf("cert: signing with %s: %w", info.name, err)
	}
	return sig, nil
}

type ecdsaSig struct{ R, S *big.Int }

// derToRS converts an Ecdsa-Sig-Value to the RFC 4754 §7 form: r and s as
// fixed-length big-endian integers, concatenated.
func derToRS(der []byte, c elliptic.Curve) ([]byte, error) {
	var s ecdsaSig
	if rest, err := asn1.Unmarshal(der, &s); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("cert: ECDSA signature does not parse")
	}
	n := (c.Params().BitSize + 7) / 8
	out := make([]byte, 2*n)
	s.R.FillBytes(out[:n])
	s.S.FillBytes(out[n:])
	return out, nil
}

func rsToDER(rs []byte, c elliptic.Curve) ([]byte, bool) {
	n := (c.Params().BitSize + 7) / 8
	if len(rs) != 2*n {
		return nil, false
	}
	der, err := asn1.Marshal(ecdsaSig{new(big.Int).SetBytes(rs[:n]), new(big.Int).SetBytes(rs[n:])})
	return der, err == nil
}

// Verified says how a peer's AUTH payload was verified, for logs and the
// session listing.
type Verified struct {
	Method wire.AuthMethod
	Scheme Scheme // for method 14, and the implied scheme of classic methods
}

func (v Verified) String() string {
	if v.Method == wire.AuthDigitalSignature {
		return v.Method.String() + "/" + v.Scheme.String()
	}
	return v.Method.String()
}

// VerifyAuth checks a peer's signature AUTH payload over signedOctets with
// pub, under policy p. The errors are *Error with ReasonMethodNotAccepted,
// ReasonUnsupportedHash, ReasonMalformed or ReasonBadSignature.
func VerifyAuth(p *Policy, pub crypto.PublicKey, a *wire.Auth, signedOctets []byte) (Verified, error) {
	if a == nil {
		return Verified{}, refuse(ReasonMalformed, "", "no AUTH payload")
	}
	if !p.acceptsMethod(a.Method) {
		return Verified{}, refuse(ReasonMethodNotAccepted, "", "AUTH method %v not accepted", a.Method)
	}
	switch a.Method {
	case wire.AuthDigitalSignature:
		// RFC 7427 §3: one octet length, AlgorithmIdentifier, signature.
		if len(a.Data) < 1 || len(a.Data) < 1+int(a.Data[0]) {
			return Verified{}, refuse(ReasonMalformed, "", "AUTH data shorter than its AlgorithmIdentifier")
		}
		n := int(a.Data[0])
		alg, err := parseAlgorithmIdentifier(a.Data[1 : 1+n])
		if err != nil {
			return Verified{}, err
		}
		v := Verified{Method: a.Method, Scheme: alg.scheme}
		if !p.acceptsScheme(alg.scheme) {
			return v, refuse(ReasonUnsupportedHash, "", "signature scheme %v not accepted", alg.scheme)
		}
		info := schemes[alg.scheme]
		if kindOf(pub) != info.key {
			return v, refuse(ReasonMethodNotAccepted, "", "scheme %v does not fit the certificate's %T key", alg.scheme, pub)
		}
		return v, verifyWith(pub, info, alg.salt, signedOctets, a.Data[1+n:])
	case wire.AuthRSASignature:
		v := Verified{Method: a.Method, Scheme: SchemeRSAPKCS1SHA1}
		if kindOf(pub) != keyRSA {
			return v, refuse(ReasonMethodNotAccepted, "", "AUTH method %v with a %T key", a.Method, pub)
		}
		return v, verifyWith(pub, schemes[SchemeRSAPKCS1SHA1], 0, signedOctets, a.Data)
	case wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521:
		c := classicECDSA[a.Method]
		v := Verified{Method: a.Method, Scheme: map[crypto.Hash]Scheme{crypto.SHA256: SchemeECDSASHA256,
			crypto.SHA384: SchemeECDSASHA384, crypto.SHA512: SchemeECDSASHA512}[c.hash]}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != c.curve {
			return v, refuse(ReasonMethodNotAccepted, "", "AUTH method %v needs a %s key", a.Method, c.curve.Params().Name)
		}
		der, ok := rsToDER(a.Data, c.curve)
		if !ok || !ecdsa.VerifyASN1(ec, digest(c.hash, signedOctets), der) {
			return v, refuse(ReasonBadSignature, "", "%v signature does not verify", a.Method)
		}
		return v, nil
	}
	return Verified{}, refuse(ReasonMethodNotAccepted, "", "AUTH method %v is not a signature method", a.Method)
}

func verifyWith(pub crypto.PublicKey, info *schemeInfo, salt int, msg, sig []byte) error {
	ok := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		ok = ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(k, digest(info.hash, msg), sig)
	case *rsa.PublicKey:
		if info.pss {
			ok = rsa.VerifyPSS(k, info.hash, digest(info.hash, msg), sig, &rsa.PSSOptions{SaltLength: salt, Hash: info.hash}) == nil
		} else {
			ok = rsa.VerifyPKCS1v15(k, info.hash, digest(info.hash, msg), sig) == nil
		}
	}
	if !ok {
		return refuse(ReasonBadSignature, "", "%s signature does not verify", info.name)
	}
	return nil
}

// Policy says which signature AUTH methods and RFC 7427 schemes a peer may
// use. The zero Policy accepts methods 14, 1, 9, 10 and 11 and every
// method-14 scheme except SHA-1 ones (RFC 8247 §3.2, §3.3).
type Policy struct {
	Methods []wire.AuthMethod // nil: DefaultMethods
	Schemes []Scheme          // nil: DefaultSchemes
}

// DefaultMethods are the signature methods accepted by the zero Policy.
var DefaultMethods = []wire.AuthMethod{wire.AuthDigitalSignature, wire.AuthRSASignature,
	wire.AuthECDSA256, wire.AuthECDSA384, wire.AuthECDSA521}

// DefaultSchemes are the method-14 schemes accepted by the zero Policy.
var DefaultSchemes = []Scheme{SchemeRSAPKCS1SHA256, SchemeRSAPKCS1SHA384, SchemeRSAPKCS1SHA512,
	SchemeRSAPSSSHA256, SchemeRSAPSSSHA384, SchemeRSAPSSSHA512,
	SchemeECDSASHA256, SchemeECDSASHA384, SchemeECDSASHA512, SchemeEd25519}

func (p *Policy) acceptsMethod(m wire.AuthMethod) bool {
	if p == nil || p.Methods == nil {
		return slices.Contains(DefaultMethods, m)
	}
	return slices.Contains(p.Methods, m)
}

func (p *Policy) acceptsScheme(s Scheme) bool {
	if p == nil || p.Schemes == nil {
		return slices.Contains(DefaultSchemes, s)
	}
	return slices.Contains(p.Schemes, s)
}
