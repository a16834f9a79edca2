package ike

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// CertAuth proves this side's identity with an X.509 certificate and its
// private key (RFC 7296 §2.15, §3.6): CERT payloads for the end-entity
// certificate (or its hash-and-URL) and the intermediates, then a signature
// AUTH — RFC 7427 method 14 when the peer sent SIGNATURE_HASH_ALGORITHMS,
// else the classic method for the key (1 for RSA, 9/10/11 for ECDSA).
//
// The credential is chosen by identity and by the CAs the peer named in
// its CERTREQ (cert.Store.Select); a zero LocalID claims the certificate's
// subject DN.
type CertAuth struct {
	Local *cert.Local
}

// ChooseID returns the identity to claim (IdentityChooser).
func (c *CertAuth) ChooseID(ctx *AuthContext) (Identity, error) {
	if c.Local == nil || c.Local.Store == nil {
		return Identity{}, errors.New("ike: certificate authentication without a credential store")
	}
	_, id, err := c.Local.Choose(cert.ID(ctx.ID), ctx.PeerCAs)
	return Identity(id), err
}

// Prove returns CERT..., AUTH for ctx.ID, the identity ChooseID returned.
func (c *CertAuth) Prove(ctx *AuthContext) ([]wire.Payload, error) {
	if c.Local == nil || c.Local.Store == nil {
		return nil, errors.New("ike: certificate authentication without a credential store")
	}
	cred, _, err := c.Local.Choose(cert.ID(ctx.ID), ctx.PeerCAs)
	if err != nil {
		return nil, err
	}
	return c.Local.Prove(cred, cert.ProveInput{
		SignedOctets:   ctx.SignedOctets,
		PeerHashes:     ctx.PeerHashes,
		PeerSentHashes: ctx.PeerSentHashes,
		PeerHTTPLookup: ctx.PeerHTTPLookup,
	})
}

// DefaultCertTimeout bounds the revocation and hash-and-URL fetches of one
// verification when CertVerifier.Timeout is zero.
const DefaultCertTimeout = 5 * time.Second

// CertVerifier checks the peer's certificate authentication: the
// end-entity certificate carries the peer's identity (RFC 4945 §3.1), the
// AUTH signature verifies under the accepted methods and schemes, and the
// chain leads to a trust anchor, is valid now, has the right key usage and
// is not revoked (cert.Remote.Verify).
//
// Fetching and the SA loop: the core is sans-I/O and one goroutine runs
// an SA (in the daemon, one loop runs them all), so Verify should not wait
// on the network. Package cert caches CRLs and OCSP responses until their
// nextUpdate and hash-and-URL certificates by hash, and the daemon's
// Fetcher (node) answers from memory what it fetched before and refreshes
// it in the background, so a verification in steady state does no I/O.
// A fetch that still has to happen — the first contact with a CA, a new
// hash-and-URL certificate — does not hold the loop either when the
// Fetcher can fetch in the background (it honours cert.MayDefer, as the
// node's does): the core sets the peer's IKE_AUTH aside, the SA
// unchanged, and tries it again once the fetch is done (certwait.go), for
// at most Timeout and a margin; then a fetch still running counts as
// unavailable with the node's Fetcher (it never waits on the loop), and
// with any other Fetcher the fetch is waited for, bounded by Timeout. What happens when the data does not
// come is the revocation policy's call (cert.Lenient, cert.Strict,
// cert.IfURI) either way.
type CertVerifier struct {
	Remote *cert.Remote
	// Timeout bounds the fetches of one verification; 0 means
	// DefaultCertTimeout.
	Timeout time.Duration
}

// Verify implements Verifier.
func (v *CertVerifier) Verify(ctx *AuthContext, payloads []wire.Payload) error {
	_, err := v.VerifyInfo(ctx, payloads)
	return err
}

// VerifyInfo implements InfoVerifier. Its errors are *cert.Error with the
// reason (untrusted CA, expired, revoked by CRL or OCSP, identity not in
// the certificate, key usage, unsupported hash, ...) for the log line.
func (v *CertVerifier) VerifyInfo(ctx *AuthContext, payloads []wire.Payload) (AuthSide, error) {
	return v.verify(ctx, payloads, false)
}

// verify implements deferringVerifier: with mayDefer the fetches run
// under cert.MayDefer, and an error wrapping cert.ErrFetchPending says
// that one is still under way.
func (v *CertVerifier) verify(ctx *AuthContext, payloads []wire.Payload, mayDefer bool) (AuthSide, error) {
	if v.Remote == nil {
		return AuthSide{}, errors.New("ike: certificate verification without trust anchors")
	}
	c, cancel := context.WithTimeout(context.Background(), v.timeout())
	defer cancel()
	if mayDefer {
		c = cert.MayDefer(c)
	}
	info, err := v.Remote.Verify(c, cert.VerifyInput{SignedOctets: ctx.SignedOctets, PeerID: cert.ID(ctx.ID), Payloads: payloads})
	if err != nil {
		return AuthSide{}, err
	}
	return AuthSide{Method: info.Method, Detail: info.Verified.String(), Subject: info.Subject, Issuer: info.Issuer}, nil
}

func (v *CertVerifier) timeout() time.Duration {
	if v.Timeout <= 0 {
		return DefaultCertTimeout
	}
	return v.Timeout
}

// deferLimit implements deferringVerifier: a background fetch started at
// the first message set aside has ended (bounded by the same timeout).
func (v *CertVerifier) deferLimit() time.Duration { return v.timeout() + certWaitMargin }

// CertReq names the trust anchors (CertRequester).
func (v *CertVerifier) CertReq() *wire.CertReq {
	if v.Remote == nil || v.Remote.Validator == nil || v.Remote.Validator.Store == nil {
		return nil
	}
	return v.Remote.Validator.Store.CertReq()
}

// HTTPLookup reports whether hash-and-URL certificates can be fetched
// (CertRequester).
func (v *CertVerifier) HTTPLookup() bool { return v.Remote != nil && v.Remote.HashURL != nil }

// describeLocal says how we authenticated from the payloads we sent: the
// AUTH method and, with a certificate, its subject and issuer.
func describeLocal(ps []wire.Payload) AuthSide {
	var s AuthSide
	if a, ok := wire.Find(ps, wire.PayloadAUTH).(*wire.Auth); ok {
		s.Method = a.Method
		if a.Method == wire.AuthDigitalSignature && len(a.Data) > 0 && len(a.Data) > int(a.Data[0]) {
			// RFC 7427 §3: the AlgorithmIdentifier names the scheme.
			alg := a.Data[1 : 1+int(a.Data[0])]
			for sc := cert.SchemeRSAPKCS1SHA1; sc <= cert.SchemeEd25519; sc++ {
				if bytes.Equal(sc.AlgorithmIdentifier(), alg) {
					s.Detail = cert.Verified{Method: a.Method, Scheme: sc}.String()
				}
			}
		}
	}
	if c, ok := wire.Find(ps, wire.PayloadCERT).(*wire.Cert); ok && c.Encoding == wire.CertX509Signature {
		if x, err := x509.ParseCertificate(c.Data); err == nil {
			s.Subject, s.Issuer = x.Subject.String(), x.Issuer.String()
		}
	}
	return s
}

// peerHashList turns the recorded SIGNATURE_HASH_ALGORITHMS bits back into
// a list, in the order cert prefers them; sent is false without the
// notification (RFC 7427 §4).
func peerHashList(bits uint16) (algs []wire.HashAlgorithm, sent bool) {
	for h := wire.HashAlgorithm(0); h < 16; h++ {
		if bits&(1<<h) != 0 {
			algs = append(algs, h)
		}
	}
	return algs, bits != 0
}

// certRequesters are the Verifiers of the connections a responder may pick
// for this peer (by address; the identity comes in IKE_AUTH) that trust
// certificate authorities.
func (ep *Endpoint) certRequesters(sa *SA) []CertRequester {
	var out []CertRequester
	for _, c := range ep.cfg.Connections {
		if addrScore(c, sa.local, sa.remote) < 0 {
			continue
		}
		if r, ok := c.RemoteAuth.(CertRequester); ok {
			out = append(out, r)
		}
	}
	return out
}

// addCertReqs adds one X.509 CERTREQ naming every CA of rs (duplicates
// removed; RFC 7296 §3.7) and N(HTTP_CERT_LOOKUP_SUPPORTED) if any of rs
// can fetch hash-and-URL certificates (§3.10.1).
func addCertReqs(m *msgOut, rs []CertRequester) {
	var req *wire.CertReq
	seen := map[string]bool{}
	http := false
	for _, r := range rs {
		http = http || r.HTTPLookup()
		cr := r.CertReq()
		if cr == nil {
			continue
		}
		if req == nil {
			req = &wire.CertReq{Encoding: cr.Encoding}
		}
		for i := 0; i+sha1Len <= len(cr.Data); i += sha1Len {
			h := cr.Data[i : i+sha1Len]
			if !seen[string(h)] {
				seen[string(h)] = true
				req.Data = append(req.Data, h...)
			}
		}
	}
	if req != nil && len(req.Data) > 0 {
		m.add(req)
	}
	if http {
		m.add(cert.HTTPLookupNotify())
	}
}

// sha1Len is the length of a CA hash in a CERTREQ (RFC 7296 §3.7).
const sha1Len = 20

// AuthInfo says how both sides authenticated; it is complete once the SA
// is established.
func (sa *SA) AuthInfo() AuthInfo { return sa.auth }
