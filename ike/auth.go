package ike

import (
	"crypto/subtle"
	"errors"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// AuthContext is what a proof of identity is computed over (RFC 7296
// §2.15): the octets the side being authenticated signs, the negotiated PRF,
// and the identity being proven.
type AuthContext struct {
	PRF *suite.PRF
	// SignedOctets are RealMessage | Nonce | prf(SK_p, RestOfIDPayload) of
	// the side being authenticated.
	SignedOctets []byte
	// ID is the identity the side claims (its IDi or IDr).
	ID Identity
	// Peer is the other side's identity.
	Peer Identity

	// What the peer announced, for certificate authentication. The core
	// fills these; PSK ignores them.
	//
	// PeerHashes is the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4);
	// PeerSentHashes is false when it sent none (classic AUTH methods).
	PeerHashes     []wire.HashAlgorithm
	PeerSentHashes bool
	// PeerCAs are the CA public key hashes of the peer's CERTREQs
	// (RFC 7296 §3.7).
	PeerCAs [][]byte
	// PeerHTTPLookup: the peer sent HTTP_CERT_LOOKUP_SUPPORTED
	// (RFC 7296 §3.10.1), so hash-and-URL certificates may be sent.
	PeerHTTPLookup bool
}

// IdentityChooser is implemented by Authenticators that decide which
// identity this side claims, before the core builds IDi/IDr (the signed
// octets cover it, RFC 7296 §2.15). ctx.ID is the configured identity (zero
// when none is); a certificate authenticator returns it, or its
// certificate's subject DN for a zero one.
type IdentityChooser interface {
	ChooseID(ctx *AuthContext) (Identity, error)
}

// CertRequester is implemented by Verifiers that trust certificate
// authorities: the core sends their CERTREQ (RFC 7296 §3.7) and, when
// HTTPLookup is true, HTTP_CERT_LOOKUP_SUPPORTED (§3.10.1) — as responder
// in IKE_SA_INIT, as initiator in IKE_AUTH.
type CertRequester interface {
	CertReq() *wire.CertReq // nil: no trust anchors to name
	HTTPLookup() bool
}

// InfoVerifier is implemented by Verifiers that say more about a verified
// peer than "ok": the method, scheme and certificate, for logs, events and
// the session listing.
type InfoVerifier interface {
	VerifyInfo(ctx *AuthContext, payloads []wire.Payload) (AuthSide, error)
}

// AuthSide says how one side authenticated.
type AuthSide struct {
	Method wire.AuthMethod
	// Detail names the signature scheme, e.g. "ECDSA-SHA384 (method 14)";
	// empty for PSK.
	Detail string
	// Subject and Issuer of the end-entity certificate (RFC 4514); empty
	// without one.
	Subject, Issuer string
}

// String renders the side for one log line or the session listing.
func (s AuthSide) String() string {
	out := s.Method.String()
	if s.Detail != "" {
		out = s.Detail
	}
	if s.Subject != "" {
		out += " subject=\"" + s.Subject + "\" issuer=\"" + s.Issuer + "\""
	}
	return out
}

// AuthInfo is how both sides of an established IKE SA authenticated.
type AuthInfo struct {
	Local, Remote AuthSide
}

// Authenticator proves this side's identity. PSK is the first
// implementation. Local and remote authentication are configured
// independently (Connection.LocalAuth, Connection.RemoteAuth), so asymmetric
// setups (PSK one way, signature the other) need no exchange changes.
//
// How later methods plug in:
//   - Certificates (RFC 7296 §2.15, RFC 7427): Prove returns CERT payloads
//     before AUTH; Verify gets every payload of the peer's message and the
//     signed octets in AuthContext.
//   - EAP (§2.16) and multiple authentication rounds (RFC 4739) need more
//     IKE_AUTH round trips: the task manager already keeps choosing
//     IKE_AUTH while the SA is not established and a task answers needMore,
//     so they come as an optional round-based interface that task_auth.go
//     drives, leaving the task manager and the other tasks untouched.
type Authenticator interface {
	// Prove returns the payloads that authenticate ctx.ID: an AUTH payload
	// and, for other methods, CERT payloads before it.
	Prove(ctx *AuthContext) ([]wire.Payload, error)
}

// Verifier checks the peer's proof of identity. payloads are every payload
// of the peer's IKE_AUTH message (AUTH, CERT, ...). An error is answered
// with AUTHENTICATION_FAILED without saying which part failed; its text goes
// to the local log only.
type Verifier interface {
	Verify(ctx *AuthContext, payloads []wire.Payload) error
}

// PSK authenticates with a pre-shared key (AUTH method 2, RFC 7296 §2.15).
// Using the same PSK value as both LocalAuth and RemoteAuth is the common
// symmetric setup; asymmetric setups configure two different values.
type PSK struct {
	Secret []byte
}

// Prove computes AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"),
// <SignedOctets>).
func (p *PSK) Prove(ctx *AuthContext) ([]wire.Payload, error) {
	if len(p.Secret) == 0 {
		return nil, errors.New("ike: empty pre-shared key")
	}
	return []wire.Payload{&wire.Auth{
		Method: wire.AuthSharedKeyMIC,
		Data:   suite.PSKAuth(ctx.PRF, p.Secret, ctx.SignedOctets),
	}}, nil
}

// Verify compares the peer's AUTH in constant time.
func (p *PSK) Verify(ctx *AuthContext, payloads []wire.Payload) error {
	a, _ := wire.Find(payloads, wire.PayloadAUTH).(*wire.Auth)
	if a == nil {
		return errors.New("ike: no AUTH payload")
	}
	if a.Method != wire.AuthSharedKeyMIC {
		return errors.New("ike: peer used AUTH method " + a.Method.String() + ", expected PSK")
	}
	if len(p.Secret) == 0 {
		return errors.New("ike: empty pre-shared key")
	}
	want := suite.PSKAuth(ctx.PRF, p.Secret, ctx.SignedOctets)
	defer clear(want)
	if subtle.ConstantTimeCompare(want, a.Data) != 1 {
		return errors.New("ike: PSK AUTH value does not verify")
	}
	return nil
}
