// Package suite holds petrel's IKEv2 crypto suites: transform descriptors
// and registries, RFC 8247 / RFC 8221 policy, default proposals, the key
// schedule and SK payload protection.
//
// It may import only the standard library's crypto packages (plus math/big
// for MODP), golang.org/x/crypto and petrel's wire package. It does no I/O
// and opens no sockets.
//
// # Registries
//
// Each transform type is a map from IANA ID to a small immutable descriptor,
// in the manner of golang.org/x/crypto/ssh's cipher table:
//
//	LookupEncr(id wire.EncrID, keyBits int) (*Encr, error)    // RFC 7296 §3.3.5 key length in bits
//	LookupESPEncr(id wire.EncrID, keyBits int) (*Encr, error) // RFC 8221 policy, allows ENCR_NULL
//	LookupPRF(id wire.PRFID) (*PRF, error)
//	LookupInteg(id wire.IntegID) (*Integ, error)
//	LookupKE(id wire.KEID) (*KEMethod, error)
//	Supported(t wire.Transform) error                         // any of the above by transform
//	NegotiatedIKE(ts []wire.Transform) (*Negotiated, error)   // a chosen proposal → descriptors
//	NegotiatedESP(ts []wire.Transform) (*Negotiated, error)   // same under RFC 8221, KE optional
//
// Errors: *ForbiddenError (errors.Is ErrForbidden) names the RFC section that
// says MUST NOT; *NotSupportedError (errors.Is ErrNotSupported) is for
// allowed transforms not implemented here, and bad key lengths.
//
// Implemented: ENCR AES-CBC, AES-CTR, AES-GCM-8/12/16, AES-CCM-8/12/16 (each
// 128/192/256; CCM is this package's own, NewCCM), ChaCha20-Poly1305;
// PRF HMAC-SHA1, HMAC-SHA2-256/384/512; INTEG HMAC-SHA1-96,
// HMAC-SHA2-256-128/384-192/512-256; KE MODP 2048/3072/4096/6144/8192,
// ECP 256/384/521, Curve25519, ML-KEM-768/1024.
//
// # Key exchange
//
// KEMethod serves DH groups and KEMs alike: the initiator calls Initiate,
// sends KEState.Public and passes the peer's reply to KEState.Shared; the
// responder calls Respond(peerData) and gets (its KE data, shared secret).
// Peer data is validated (RFC 7296 §5); errors match ErrInvalidPublic.
// KEState.Zero destroys the ephemeral secret.
//
// # Key schedule (RFC 7296 §2.13-§2.18, RFC 9370)
//
//	PRF.Plus(key, seed, n)                      // prf+
//	SKEYSEED(prf, ni, nr, gir)
//	DeriveIKEKeys(Suite, skeyseed, ni, nr, spiI, spiR) (*IKEKeys, error) // SK_d ... SK_pr, Zero()
//	RekeySKEYSEED(prf, oldSKd, gir, ni, nr, additional...)
//	IntermediateSKEYSEED(prf, prevSKd, shared, ni, nr)
//	ChildKeymat(prf, skd, gir, ni, nr, n, additional...) // gir nil: no PFS
//	SplitChildKeymat(keymat, encrKeyMatLen, integKeyLen) (*ChildKeys, error)
//	SignedOctets(prf, realMessage, nonce, skp, restOfID)
//	PSKAuth(prf, secret, signedOctets), VerifyPSKAuth(...)
//
// # SK payload protection
//
// SKProtector implements wire.Protector for SK and SKF payloads:
// NewIKEProtector(Suite, *IKEKeys, initiator) seals with this end's keys and
// opens with the peer's; NewSKProtector takes explicit keys (for decoders).
// AEAD bodies are IV(8) | ciphertext | tag with AAD = msg[:bodyOff]
// (RFC 5282 §5.1); CBC/CTR bodies are IV | ciphertext | ICV with the ICV
// over the message up to it. ICVs are compared in constant time.
//
// # Policy and defaults
//
// CheckIKE / CheckESP apply RFC 8247 / RFC 8221's MUST NOTs.
// DefaultIKEProposals and DefaultESPProposals return [][]wire.Transform, an
// AEAD proposal first and an encrypt-then-MAC one second (RFC 7296 §3.3
// forbids mixing AEAD and INTEG in one proposal).
package suite
