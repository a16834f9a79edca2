package cert

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlgorithmIdentifierKAT checks the AlgorithmIdentifier octets against
// RFC 7427 Appendix A (A.1 PKCS#1 v1.5, A.3 ECDSA, A.4.3 RSASSA-PSS with
// SHA-256) and RFC 8420 §2 (Ed25519).
func TestAlgorithmIdentifierKAT(t *testing.T) {
	for s, want := range map[Scheme]string{
		SchemeRSAPKCS1SHA1:   "30 0d 06 09 2a 86 48 86 f7 0d 01 01 05 05 00",
		SchemeRSAPKCS1SHA256: "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0b 05 00",
		SchemeRSAPKCS1SHA384: "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0c 05 00",
		SchemeRSAPKCS1SHA512: "30 0d 06 09 2a 86 48 86 f7 0d 01 01 0d 05 00",
		SchemeECDSASHA256:    "30 0a 06 08 2a 86 48 ce 3d 04 03 02",
		SchemeECDSASHA384:    "30 0a 06 08 2a 86 48 ce 3d 04 03 03",
		SchemeECDSASHA512:    "30 0a 06 08 2a 86 48 ce 3d 04 03 04",
		SchemeEd25519:        "30 05 06 03 2b 65 70",
		SchemeRSAPSSSHA256: `30 41 06 09 2a 86 48 86 f7 0d 01 01 0a 30 34 a0 0f 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00
			a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00 a2 03 02 01 20`,
	} {
		if got := s.AlgorithmIdentifier(); !bytes.Equal(got, unhex(t, want)) {
			t.Errorf("%v: AlgorithmIdentifier %x, want %s", s, got, want)
		}
	}
	// The PSS identifiers for SHA-384/512 are built, not tabled: they must
	// decode to their own scheme with the hash length as salt.
	for _, s := range []Scheme{SchemeRSAPSSSHA256, SchemeRSAPSSSHA384, SchemeRSAPSSSHA512} {
		p, err := parseAlgorithmIdentifier(s.AlgorithmIdentifier())
		if err != nil || p.scheme != s || p.salt != schemes[s].hash.Size() {
			t.Errorf("%v: parsed back as %+v, %v", s, p, err)
		}
	}
	var ai pkix.AlgorithmIdentifier
	if _, err := asn1.Unmarshal(SchemeEd25519.AlgorithmIdentifier(), &ai); err != nil || ai.Algorithm.String() != "1.3.101.112" {
		t.Errorf("Ed25519 OID %v, %v", ai.Algorithm, err)
	}
}

// TestRFC4754Vector verifies the ECDSA-256 test signature of RFC 4754 §8.1
// as an AUTH method 9 payload (r|s over "abc").
func TestRFC4754Vector(t *testing.T) {
	w := unhex(t, "DC51D386 6A15BACD E33D96F9 92FCA99D A7E6EF09 34E70975 59C27F16 14C88A7F")
	priv, err := ecdh.P256().NewPrivateKey(w)
	if err != nil {
		t.Fatal(err)
	}
	pt := priv.PublicKey().Bytes() // 04 | x | y
	if want := unhex(t, "2442A5CC 0ECD015F A3CA31DC 8E2BBC70 BF42D60C BCA20085 E0822CB0 4235E970"); !bytes.Equal(pt[1:33], want) {
		t.Fatalf("public x %x, RFC 4754 says %x", pt[1:33], want)
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(pt[1:33]), Y: new(big.Int).SetBytes(pt[33:])}
	sig := unhex(t, `CB28E099 9B9C7715 FD0A80D8 E47A7707 9716CBBF 917DD72E 97566EA1 C066957C
		86FA3BB4 E26CAD5B F90B7F81 899256CE 7594BB1E A0C89212 748BFF3B 3D5B0315`)
	auth := &wire.Auth{Method: wire.AuthECDSA256, Data: sig}
	if _, err := VerifyAuth(nil, pub, auth, []byte("abc")); err != nil {
		t.Fatalf("RFC 4754 §8.1 signature: %v", err)
	}
	if _, err := VerifyAuth(nil, pub, auth, []byte("abd")); ReasonOf(err) != ReasonBadSignature {
		t.Errorf("other message: %v, want bad signature", err)
	}
}

func genKey(t *testing.T, kt KeyType) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSignVerifyEveryScheme signs and verifies with every RFC 7427 scheme
// and checks that a flipped octet in the signed octets is refused.
func TestSignVerifyEveryScheme(t *testing.T) {
	keys := map[keyKind]crypto.Signer{keyRSA: genKey(t, KeyRSA2048), keyECDSA: genKey(t, KeyECDSAP256), keyEd25519: genKey(t, KeyEd25519)}
	msg := []byte("RealMessage | Nonce | prf(SK_p, RestOfIDPayload)")
	for s, info := range schemes {
		key := keys[info.key]
		auth, err := SignAuth(nil, key, wire.AuthDigitalSignature, s, msg)
		if err != nil {
			t.Fatalf("%v: %v", s, err)
		}
		if n := int(auth.Data[0]); !bytes.Equal(auth.Data[1:1+n], info.algID) {
			t.Errorf("%v: AUTH data does not start with its AlgorithmIdentifier", s)
		}
		pol := &Policy{Schemes: []Scheme{s}}
		v, err := VerifyAuth(pol, key.Public(), auth, msg)
		if err != nil || v.Scheme != s || v.Method != wire.AuthDigitalSignature {
			t.Errorf("%v: verify %+v, %v", s, v, err)
		}
		bad := bytes.Clone(msg)
		bad[0] ^= 1
		if _, err := VerifyAuth(pol, key.Public(), auth, bad); ReasonOf(err) != ReasonBadSignature {
			t.Errorf("%v: tampered octets: %v", s, err)
		}
		other := keys[info.key%3+1]
		if _, err := VerifyAuth(pol, other.Public(), auth, msg); ReasonOf(err) != ReasonMethodNotAccepted {
			t.Errorf("%v: key of another type: %v", s, err)
		}
	}
}

// TestClassicMethods round-trips methods 1, 9, 10 and 11 (RFC 7296 §3.8,
// RFC 4754 §7: r|s, each as long as the curve's order).
func TestClassicMethods(t *testing.T) {
	msg := []byte("signed octets")
	for _, c := range []struct {
		m    wire.AuthMethod
		kt   KeyType
		size int
	}{
		{wire.AuthRSASignature, KeyRSA2048, 256},
		{wire.AuthECDSA256, KeyECDSAP256, 64},
		{wire.AuthECDSA384, KeyECDSAP384, 96},
		{wire.AuthECDSA521, KeyECDSAP521, 132},
	} {
		key := genKey(t, c.kt)
		auth, err := SignAuth(nil, key, c.m, 0, msg)
		if err != nil {
			t.Fatalf("%v: %v", c.m, err)
		}
		if len(auth.Data) != c.size {
			t.Errorf("%v: signature of %d octets, want %d", c.m, len(auth.Data), c.size)
		}
		if _, err := VerifyAuth(nil, key.Public(), auth, msg); err != nil {
			t.Errorf("%v: %v", c.m, err)
		}
		if _, err := VerifyAuth(nil, key.Public(), auth, append(msg, 0)); ReasonOf(err) != ReasonBadSignature {
			t.Errorf("%v: tampered: %v", c.m, err)
		}
		if _, err := VerifyAuth(&Policy{Methods: []wire.AuthMethod{wire.AuthDigitalSignature}}, key.Public(), auth, msg); ReasonOf(err) != ReasonMethodNotAccepted {
			t.Errorf("%v with only method 14 accepted: %v", c.m, err)
		}
	}
	// A P-384 key cannot sign with method 9.
	if _, err := SignAuth(nil, genKey(t, KeyECDSAP384), wire.AuthECDSA256, 0, msg); err == nil {
		t.Error("method 9 with a P-384 key succeeded")
	}
}

// TestPolicyRefusesSHA1 checks RFC 8247 §3.2: method 14 with SHA-1 is
// refused by the default policy as an unsupported hash.
func TestPolicyRefusesSHA1(t *testing.T) {
	key := genKey(t, KeyRSA2048)
	auth, err := SignAuth(nil, key, wire.AuthDigitalSignature, SchemeRSAPKCS1SHA1, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyAuth(nil, key.Public(), auth, []byte("x")); ReasonOf(err) != ReasonUnsupportedHash {
		t.Errorf("SHA-1 under the default policy: %v", err)
	}
	if _, err := VerifyAuth(&Policy{Schemes: []Scheme{SchemeRSAPKCS1SHA1}}, key.Public(), auth, []byte("x")); err != nil {
		t.Errorf("SHA-1 explicitly allowed: %v", err)
	}
	// An unknown AlgorithmIdentifier (dsa-with-sha256) is an unsupported hash.
	dsa := unhex(t, "300b0609608648016503040302")
	unk := &wire.Auth{Method: wire.AuthDigitalSignature, Data: append([]byte{byte(len(dsa))}, append(dsa, 1, 2, 3)...)}
	if _, err := VerifyAuth(nil, key.Public(), unk, []byte("x")); ReasonOf(err) != ReasonUnsupportedHash {
		t.Errorf("unknown algorithm: %v", err)
	}
	short := &wire.Auth{Method: wire.AuthDigitalSignature, Data: []byte{40, 1}}
	if _, err := VerifyAuth(nil, key.Public(), short, []byte("x")); ReasonOf(err) != ReasonMalformed {
		t.Errorf("truncated AUTH: %v", err)
	}
}

func TestChoose(t *testing.T) {
	rsaK, p256, p384, ed := genKey(t, KeyRSA2048), genKey(t, KeyECDSAP256), genKey(t, KeyECDSAP384), genKey(t, KeyEd25519)
	all := SupportedHashes
	for _, c := range []struct {
		key    crypto.Signer
		hashes []wire.HashAlgorithm
		sent   bool
		pss    bool
		method wire.AuthMethod
		scheme Scheme
		reason Reason
	}{
		{rsaK, all, true, false, wire.AuthDigitalSignature, SchemeRSAPKCS1SHA256, 0},
		{rsaK, all, true, true, wire.AuthDigitalSignature, SchemeRSAPSSSHA256, 0},
		{rsaK, []wire.HashAlgorithm{wire.HashSHA2_512}, true, false, wire.AuthDigitalSignature, SchemeRSAPKCS1SHA512, 0},
		{rsaK, nil, false, false, wire.AuthRSASignature, SchemeRSAPKCS1SHA1, 0},
		{p256, all, true, false, wire.AuthDigitalSignature, SchemeECDSASHA256, 0},
		{p384, all, true, false, wire.AuthDigitalSignature, SchemeECDSASHA384, 0},
		{p384, []wire.HashAlgorithm{wire.HashSHA2_256}, true, false, wire.AuthDigitalSignature, SchemeECDSASHA256, 0},
		{p384, nil, false, false, wire.AuthECDSA384, SchemeECDSASHA384, 0},
		{ed, all, true, false, wire.AuthDigitalSignature, SchemeEd25519, 0},
		{ed, []wire.HashAlgorithm{wire.HashSHA2_256}, true, false, 0, 0, ReasonUnsupportedHash},
		{ed, nil, false, false, 0, 0, ReasonUnsupportedHash},
		// No common hash: the classic method (RFC 7427 §4).
		{p256, []wire.HashAlgorithm{wire.HashSHA1}, true, false, wire.AuthECDSA256, SchemeECDSASHA256, 0},
		{rsaK, []wire.HashAlgorithm{wire.HashSTREEBOG256}, true, false, wire.AuthRSASignature, SchemeRSAPKCS1SHA1, 0},
	} {
		m, s, err := Choose(c.key.Public(), c.hashes, c.sent, c.pss)
		if m != c.method || s != c.scheme || ReasonOf(err) != c.reason {
			t.Errorf("Choose(%T, %v, sent=%v, pss=%v) = %v, %v, %v; want %v, %v, reason %v",
				c.key, c.hashes, c.sent, c.pss, m, s, err, c.method, c.scheme, c.reason)
		}
	}
	// The notification we send round-trips through PeerHashes.
	got, sent := PeerHashes([]wire.Payload{HashNotify()})
	if !sent || len(got) != len(SupportedHashes) || got[3] != wire.HashIdentity {
		t.Errorf("PeerHashes(HashNotify()) = %v, %v", got, sent)
	}
	if _, sent := PeerHashes(nil); sent {
		t.Error("PeerHashes(nil) says sent")
	}
}
