package cert

import (
	"context"
	"crypto/x509"
	"errors"
	"io"

	"github.com/petrel-vpn/petrel/wire"
)

// Local proves this side's identity with a certificate (RFC 7296 §2.15,
// §3.6): it picks a credential, sends it and its chain as CERT payloads and
// signs the signed octets into an AUTH payload.
type Local struct {
	Store  *Store
	RSAPSS bool      // sign with RSASSA-PSS rather than PKCS#1 v1.5 under RFC 7427
	Rand   io.Reader // nil: crypto/rand
}

// Choose picks the credential for identity id (zero: any) preferring one
// issued under a CA the peer named in its CERTREQ (caHashes, from
// CertReqAuthorities), and returns the identity to claim in IDi/IDr: id,
// or the certificate's subject DN when id is zero. The core calls it before
// building the ID payload, since the signed octets cover it.
func (l *Local) Choose(id ID, caHashes [][]byte) (*Credential, ID, error) {
	cred, err := l.Store.Select(id, caHashes)
	if err != nil {
		return nil, ID{}, err
	}
	if id.Type == 0 {
		id = SubjectID(cred.Cert)
	}
	return cred, id, nil
}

// ProveInput is what the core knows when it builds its IKE_AUTH message.
type ProveInput struct {
	SignedOctets []byte // RFC 7296 §2.15, this side's
	// PeerHashes is the peer's SIGNATURE_HASH_ALGORITHMS (PeerHashes());
	// PeerSentHashes false selects the classic AUTH methods.
	PeerHashes     []wire.HashAlgorithm
	PeerSentHashes bool
	// PeerHTTPLookup is true when the peer sent HTTP_CERT_LOOKUP_SUPPORTED
	// (RFC 7296 §3.10.1); the end-entity certificate then goes as
	// hash-and-URL if the credential has a HashURL.
	PeerHTTPLookup bool
}

// Prove returns the CERT payloads (end-entity first, then intermediates,
// RFC 7296 §3.6) and the AUTH payload.
func (l *Local) Prove(cred *Credential, in ProveInput) ([]wire.Payload, error) {
	method, scheme, err := Choose(cred.Key.Public(), in.PeerHashes, in.PeerSentHashes, l.RSAPSS)
	if err != nil {
		return nil, err
	}
	auth, err := SignAuth(l.Rand, cred.Key, method, scheme, in.SignedOctets)
	if err != nil {
		return nil, err
	}
	var out []wire.Payload
	if in.PeerHTTPLookup && cred.HashURL != "" {
		out = append(out, HashURL(wire.CertHashURLX509, cred.Cert.Raw, cred.HashURL))
	} else {
		out = append(out, &wire.Cert{Encoding: wire.CertX509Signature, Data: cred.Cert.Raw})
	}
	for _, c := range cred.Chain {
		out = append(out, &wire.Cert{Encoding: wire.CertX509Signature, Data: c.Raw})
	}
	return append(out, auth), nil
}

// Remote checks the peer's certificate authentication.
type Remote struct {
	Validator *Validator
	Policy    *Policy          // nil: the zero Policy
	HashURL   *HashURLResolver // nil: hash-and-URL certificates are refused
}

// MaxCertPayloads bounds the CERT payloads taken from one peer message (an
// end-entity certificate and its intermediates).
const MaxCertPayloads = 8

// PeerInfo describes a verified peer for logs, events and the session
// listing.
type PeerInfo struct {
	Verified
	Subject string // RFC 4514
	Issuer  string
	Chain   []*x509.Certificate // leaf first, anchor last
}

// String renders the peer for one log line or the session listing.
func (p *PeerInfo) String() string {
	return p.Verified.String() + " subject \"" + p.Subject + "\" issuer \"" + p.Issuer + "\""
}

// VerifyInput is what the core knows when the peer's IKE_AUTH arrives.
type VerifyInput struct {
	SignedOctets []byte // RFC 7296 §2.15, the peer's
	PeerID       ID     // the peer's IDi/IDr
	Payloads     []wire.Payload
}

// Verify checks, in order: a usable end-entity certificate among the CERT
// payloads (the first one, RFC 7296 §3.6; hash-and-URL resolved through
// HashURL), the peer's identity in it, the AUTH signature, and the chain
// (anchor, validity, key usage, EKU, revocation). Any error is an *Error
// — the core answers AUTHENTICATION_FAILED and logs err.Error() — except
// one wrapping ErrFetchPending: under MayDefer, a hash-and-URL certificate
// or revocation answer is still being fetched and nothing is decided yet.
func (r *Remote) Verify(ctx context.Context, in VerifyInput) (*PeerInfo, error) {
	if r.Validator == nil {
		return nil, errors.New("cert: Remote has no Validator")
	}
	var certs []*x509.Certificate
	// pending: a hash-and-URL certificate still being fetched. What comes
	// after it is still looked at, so that every fetch starts in this
	// pass, but cannot decide: waiting for that fetch, its answer (a
	// refusal of its own) would have come first.
	var pending error
	n := 0
	for _, p := range in.Payloads {
		c, ok := p.(*wire.Cert)
		if !ok {
			continue
		}
		var err error
		if n++; n > MaxCertPayloads {
			err = refuse(ReasonMalformed, "", "more than %d CERT payloads", MaxCertPayloads)
		} else {
			switch c.Encoding {
			case wire.CertX509Signature:
				x, perr := x509.ParseCertificate(c.Data)
				if perr != nil {
					err = refuseErr(ReasonMalformed, "", perr, "CERT payload %d", len(certs)+1)
					break
				}
				certs = append(certs, x)
			case wire.CertHashURLX509, wire.CertHashURLBundle:
				if r.HashURL == nil {
					err = refuse(ReasonHashURL, "", "hash-and-URL certificates are not accepted")
					break
				}
				xs, rerr := r.HashURL.Resolve(ctx, c)
				if isPending(rerr) {
					if pending == nil {
						pending = rerr
					}
					continue
				}
				if err = rerr; err == nil {
					certs = append(certs, xs...)
				}
			default:
				// RFC 7296 §3.6: the first CERT payload holds the key
				// that verifies AUTH; others of unknown encodings are
				// ignored.
				if len(certs) == 0 && pending == nil {
					err = refuse(ReasonNoCertificate, "", "peer %v sent no X.509 certificate first (CERT encoding %v)", in.PeerID, c.Encoding)
				}
			}
		}
		if err != nil {
			if pending == nil {
				return nil, err
			}
			if n > MaxCertPayloads {
				break
			}
		}
	}
	if pending != nil {
		return nil, pending
	}
	if len(certs) == 0 {
		return nil, refuse(ReasonNoCertificate, "", "peer %v sent no X.509 certificate", in.PeerID)
	}
	leaf := certs[0]
	subj := leaf.Subject.String()
	if err := MatchIdentity(leaf, in.PeerID); err != nil {
		return nil, err
	}
	a, _ := wire.Find(in.Payloads, wire.PayloadAUTH).(*wire.Auth)
	v, err := VerifyAuth(r.Policy, leaf.PublicKey, a, in.SignedOctets)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Subject == "" {
			e.Subject = subj
		}
		return nil, err
	}
	chain, err := r.Validator.Validate(ctx, leaf, certs[1:])
	if err != nil {
		return nil, err
	}
	return &PeerInfo{Verified: v, Subject: subj, Issuer: leaf.Issuer.String(), Chain: chain}, nil
}
