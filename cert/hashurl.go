package cert

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// HashURL builds the data of a hash-and-URL CERT payload (RFC 7296 §3.6,
// encodings 12 and 13): the 20-octet SHA-1 hash of the DER object (a
// certificate, or a CertBundle) followed by the URL.
func HashURL(enc wire.CertEncoding, der []byte, url string) *wire.Cert {
	h := sha1.Sum(der)
	return &wire.Cert{Encoding: enc, Data: append(h[:], url...)}
}

// SplitHashURL splits hash-and-URL data into the hash and the URL.
func SplitHashURL(data []byte) (hash [20]byte, url string, err error) {
	if len(data) <= 20 {
		return hash, "", refuse(ReasonMalformed, "", "hash-and-URL data of %d octets", len(data))
	}
	copy(hash[:], data)
	return hash, string(data[20:]), nil
}

// certBundle is the X.509 bundle of RFC 7296 §3.6 encoding 13, as defined
// in RFC 4306 Appendix B: version 0 and a list of certificates ([0]) and
// CRLs ([1]).
type certBundle struct {
	Version int
	Items   []asn1.RawValue
}

// EncodeBundle builds a CertBundle of certificates (tagged [0], EXPLICIT).
func EncodeBundle(certs []*x509.Certificate) ([]byte, error) {
	var b certBundle
	for _, c := range certs {
		b.Items = append(b.Items, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: c.Raw})
	}
	return asn1.Marshal(b)
}

// parseBundle reads the certificates of a CertBundle. A [0] item holds a
// Certificate either EXPLICIT (a whole SEQUENCE inside) or IMPLICIT (the
// SEQUENCE's contents); CRLs ([1]) are skipped.
func parseBundle(der []byte) ([]*x509.Certificate, error) {
	var b certBundle
	if rest, err := asn1.Unmarshal(der, &b); err != nil || len(rest) != 0 {
		return nil, errors.New("CertBundle does not parse")
	}
	var out []*x509.Certificate
	for _, it := range b.Items {
		if it.Class != asn1.ClassContextSpecific || it.Tag != 0 {
			continue
		}
		c, err := x509.ParseCertificate(it.Bytes)
		if err != nil {
			implicit, merr := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: it.Bytes})
			if merr != nil {
				return nil, err
			}
			if c, err = x509.ParseCertificate(implicit); err != nil {
				return nil, fmt.Errorf("CertBundle certificate: %w", err)
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("CertBundle holds no certificate")
	}
	return out, nil
}

// HashURLResolver fetches hash-and-URL certificates, checks the hash and
// caches the result by hash (RFC 7296 §3.6).
type HashURLResolver struct {
	Fetcher Fetcher
	// Timeout bounds one fetch; 0 means 10 s.
	Timeout time.Duration
	// MaxSize bounds the fetched object; 0 means 64 KiB.
	MaxSize int64
	// MaxCache bounds the number of cached objects; 0 means 256.
	MaxCache int

	mu    sync.Mutex
	cache map[[20]byte][]*x509.Certificate
}

// Resolve returns the certificates a hash-and-URL CERT payload stands for:
// one for encoding 12, the bundle's for encoding 13. An error wrapping
// ErrFetchPending means the object is still being fetched (MayDefer).
func (r *HashURLResolver) Resolve(ctx context.Context, c *wire.Cert) ([]*x509.Certificate, error) {
	if c.Encoding != wire.CertHashURLX509 && c.Encoding != wire.CertHashURLBundle {
		return nil, fmt.Errorf("cert: %v is not a hash-and-URL encoding", c.Encoding)
	}
	hash, url, err := SplitHashURL(c.Data)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	cached, ok := r.cache[hash]
	r.mu.Unlock()
	if ok {
		return cached, nil
	}
	if !isHTTPURL(url) {
		return nil, refuse(ReasonHashURL, "", "URL %q is not http", url)
	}
	timeout, maxSize := r.Timeout, r.MaxSize
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	if maxSize == 0 {
		maxSize = 64 << 10
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	der, err := r.Fetcher.Fetch(ctx, Request{URL: url, MaxSize: maxSize, Peer: true})
	if isPending(err) {
		return nil, fmt.Errorf("cert: hash-and-URL %s: %w", url, err) // no answer yet, not a refusal
	}
	if err != nil {
		return nil, refuseErr(ReasonHashURL, "", err, "fetching %s", url)
	}
	if got := sha1.Sum(der); !bytes.Equal(got[:], hash[:]) {
		return nil, refuse(ReasonHashURL, "", "%s: SHA-1 %x, announced %x", url, got, hash)
	}
	var certs []*x509.Certificate
	if c.Encoding == wire.CertHashURLX509 {
		var one *x509.Certificate
		one, err = x509.ParseCertificate(der)
		certs = []*x509.Certificate{one}
	} else {
		certs, err = parseBundle(der)
	}
	if err != nil {
		return nil, refuseErr(ReasonHashURL, "", err, "%s", url)
	}
	r.mu.Lock()
	if r.cache == nil {
		r.cache = map[[20]byte][]*x509.Certificate{}
	}
	limit := r.MaxCache
	if limit == 0 {
		limit = 256
	}
	if len(r.cache) >= limit {
		for k := range r.cache { // evict an arbitrary entry
			delete(r.cache, k)
			break
		}
	}
	r.cache[hash] = certs
	r.mu.Unlock()
	return certs, nil
}

// HTTPLookupNotify builds N(HTTP_CERT_LOOKUP_SUPPORTED) (RFC 7296 §3.10.1),
// which a side sends in IKE_AUTH (or IKE_SA_INIT) when it can fetch
// hash-and-URL certificates, that is when its Remote has a HashURL resolver.
func HTTPLookupNotify() *wire.Notify {
	return &wire.Notify{NotifyType: wire.HTTP_CERT_LOOKUP_SUPPORTED}
}

// PeerHTTPLookup reports whether the peer's payloads announce
// HTTP_CERT_LOOKUP_SUPPORTED, for ProveInput.PeerHTTPLookup.
func PeerHTTPLookup(payloads []wire.Payload) bool {
	return wire.FindNotify(payloads, wire.HTTP_CERT_LOOKUP_SUPPORTED) != nil
}
