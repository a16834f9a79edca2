package cert

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/petrel-vpn/petrel/wire"
)

// Credential is a local end-entity certificate, the intermediates to send
// with it, and its private key.
type Credential struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate // intermediates, leaf's issuer first
	Key   crypto.Signer
	// HashURL, if set, is where the DER certificate can be fetched; it is
	// sent as hash-and-URL (RFC 7296 §3.6) when the peer announced
	// HTTP_CERT_LOOKUP_SUPPORTED.
	HashURL string
}

// NewCredential checks that key belongs to c.
func NewCredential(c *x509.Certificate, chain []*x509.Certificate, key crypto.Signer) (*Credential, error) {
	if c == nil || key == nil {
		return nil, errors.New("cert: credential needs a certificate and a key")
	}
	if !keyMatches(c.PublicKey, key.Public()) {
		return nil, fmt.Errorf("cert: private key does not belong to certificate %q", c.Subject)
	}
	return &Credential{Cert: c, Chain: chain, Key: key}, nil
}

// SPKIHash is the SHA-1 hash of a certificate's SubjectPublicKeyInfo, the
// form CERTREQ and hash-and-URL name CAs in (RFC 7296 §3.7).
func SPKIHash(c *x509.Certificate) [20]byte { return sha1.Sum(c.RawSubjectPublicKeyInfo) }

// Store holds local credentials and trust anchors. It is safe for
// concurrent use; Replace swaps everything at once for `petrel reload`.
type Store struct {
	mu      sync.RWMutex
	creds   []*Credential
	anchors []*x509.Certificate
	pool    *x509.CertPool
}

// NewStore makes a store with the given credentials and trust anchors.
func NewStore(creds []*Credential, anchors []*x509.Certificate) *Store {
	s := &Store{}
	s.Replace(creds, anchors)
	return s
}

// Replace swaps the credentials and trust anchors atomically; SAs being
// authenticated keep what they already read.
func (s *Store) Replace(creds []*Credential, anchors []*x509.Certificate) {
	pool := x509.NewCertPool()
	for _, a := range anchors {
		pool.AddCert(a)
	}
	s.mu.Lock()
	s.creds, s.anchors, s.pool = append([]*Credential(nil), creds...), append([]*x509.Certificate(nil), anchors...), pool
	s.mu.Unlock()
}

// Anchors returns the trust anchors.
func (s *Store) Anchors() []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*x509.Certificate(nil), s.anchors...)
}

// Credentials returns the local credentials.
func (s *Store) Credentials() []*Credential {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Credential(nil), s.creds...)
}

func (s *Store) roots() *x509.CertPool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pool
}

// CertReq builds the CERTREQ payload naming every trust anchor by the SHA-1
// hash of its SubjectPublicKeyInfo (RFC 7296 §3.7), or nil with no anchors.
func (s *Store) CertReq() *wire.CertReq {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.anchors) == 0 {
		return nil
	}
	data := make([]byte, 0, 20*len(s.anchors))
	for _, a := range s.anchors {
		h := SPKIHash(a)
		data = append(data, h[:]...)
	}
	return &wire.CertReq{Encoding: wire.CertX509Signature, Data: data}
}

// CertReqAuthorities collects the CA hashes of every X.509 CERTREQ in
// payloads (RFC 7296 §3.7); malformed ones are skipped.
func CertReqAuthorities(payloads []wire.Payload) [][]byte {
	var out [][]byte
	for _, p := range payloads {
		cr, ok := p.(*wire.CertReq)
		if !ok || cr.Encoding != wire.CertX509Signature {
			continue
		}
		if hs, ok := cr.Authorities(); ok {
			out = append(out, hs...)
		}
	}
	return out
}

// authorities returns the SPKI hashes of every CA certificate behind cred:
// its intermediates and the trust anchors that issued the top of its chain.
func (s *Store) authorities(cred *Credential) [][20]byte {
	var out [][20]byte
	top := cred.Cert
	for _, c := range cred.Chain {
		out = append(out, SPKIHash(c))
		top = c
	}
	for _, a := range s.Anchors() {
		if bytes.Equal(top.RawIssuer, a.RawSubject) && top.CheckSignatureFrom(a) == nil {
			out = append(out, SPKIHash(a))
		}
	}
	return out
}

// Select chooses the local credential to authenticate as id. Candidates
// must carry id (MatchIdentity); among them the first whose chain leads to a
// CA named in the peer's CERTREQ hashes wins (RFC 7296 §3.7: the CERTREQ
// says which CAs the peer trusts), else the first candidate. A zero id
// (Type 0) matches every credential.
func (s *Store) Select(id ID, caHashes [][]byte) (*Credential, error) {
	var cands []*Credential
	for _, c := range s.Credentials() {
		if id.Type == 0 || MatchIdentity(c.Cert, id) == nil {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil, refuse(ReasonNoCertificate, "", "no local certificate carries identity %v", id)
	}
	for _, c := range cands {
		for _, h := range s.authorities(c) {
			for _, want := range caHashes {
				if bytes.Equal(h[:], want) {
					return c, nil
				}
			}
		}
	}
	return cands[0], nil
}
