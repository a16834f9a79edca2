package cert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// UnreachablePolicy says what happens when no CRL or OCSP answer can be had.
type UnreachablePolicy int

const (
	// Lenient accepts the certificate and logs one warning (strongSwan's
	// "relaxed").
	Lenient UnreachablePolicy = iota
	// Strict refuses it with ReasonRevocationUnavailable, also when the
	// certificate names no OCSP responder or CRL distribution point.
	Strict
	// IfURI refuses only a certificate that names an OCSP responder or a
	// CRL distribution point from which no answer came (strongSwan's
	// "ifuri"); one naming none is accepted with a warning.
	IfURI
)

func (p UnreachablePolicy) String() string {
	switch p {
	case Strict:
		return "strict"
	case IfURI:
		return "ifuri"
	}
	return "lenient"
}

// Size bounds for fetched revocation data.
const (
	MaxCRLSize  = 8 << 20
	MaxOCSPSize = 64 << 10
)

// maxCachedCRLs bounds the CRLs a Revocation keeps parsed (by URL); the
// URLs come from certificates that chain to a trust anchor, but a CA may
// name many.
const maxCachedCRLs = 256

// Revocation checks certificates against OCSP responders named in their
// Authority Information Access (RFC 6960) and CRLs from their CRL
// distribution points (RFC 5280 §4.2.1.13), fetched over HTTP through
// Fetcher. CRLs and OCSP responses are cached until their nextUpdate. OCSP is asked first;
// a definite OCSP answer (good or revoked) is final, otherwise the CRL
// decides.
type Revocation struct {
	Fetcher Fetcher
	Policy  UnreachablePolicy
	Log     *slog.Logger // nil: slog.Default()
	Now     func() time.Time
	// OCSPSkew is the clock skew allowed on OCSP thisUpdate; 0 means 5 min.
	OCSPSkew time.Duration

	mu   sync.Mutex
	crls map[string]*x509.RevocationList
	ocsp map[string]*ocsp.Response // by issuer key hash and serial
}

func (r *Revocation) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Revocation) log() *slog.Logger {
	if r.Log == nil {
		return slog.Default()
	}
	return r.Log
}

// errUnavailable is a source that gave no definite answer.
type errUnavailable struct{ why string }

func (e errUnavailable) Error() string { return e.why }

// Check decides whether c, issued by issuer, is revoked. An error
// wrapping ErrFetchPending (from a Fetcher under MayDefer) means no
// decision yet: neither "unavailable" nor a refusal.
func (r *Revocation) Check(ctx context.Context, c, issuer *x509.Certificate) error {
	warn, err := r.check(ctx, c, issuer)
	if warn != nil {
		warn()
	}
	return err
}

// check is Check with the warning of an acceptance without revocation
// status returned, not logged, so that Validate logs it only once the
// chain's verdict is in (not on every attempt while another certificate's
// fetch is pending).
func (r *Revocation) check(ctx context.Context, c, issuer *x509.Certificate) (warn func(), err error) {
	subj := c.Subject.String()
	var why []string
	if len(c.OCSPServer) > 0 {
		err := r.checkOCSP(ctx, c, issuer)
		if _, ok := err.(errUnavailable); !ok {
			return nil, err
		}
		why = append(why, "OCSP: "+err.Error())
	}
	if len(c.CRLDistributionPoints) > 0 {
		err := r.checkCRL(ctx, c, issuer)
		if _, ok := err.(errUnavailable); !ok {
			return nil, err
		}
		why = append(why, "CRL: "+err.Error())
	}
	named := len(why) > 0
	if !named {
		why = append(why, "certificate names no OCSP responder and no CRL distribution point")
	}
	if r.Policy == Strict || (r.Policy == IfURI && named) {
		return nil, refuse(ReasonRevocationUnavailable, subj, "%s", strings.Join(why, "; "))
	}
	return func() {
		r.log().Warn("cert: revocation status unavailable, accepted under the "+r.Policy.String()+" policy",
			"subject", subj, "serial", c.SerialNumber.String(), "why", strings.Join(why, "; "))
	}, nil
}

func (r *Revocation) checkOCSP(ctx context.Context, c, issuer *x509.Certificate) error {
	ih := SPKIHash(issuer)
	key := string(ih[:]) + c.SerialNumber.String()
	r.mu.Lock()
	cached := r.ocsp[key]
	r.mu.Unlock()
	if cached != nil && r.now().Before(cached.NextUpdate) {
		return r.ocspVerdict(c, cached, "cached response")
	}
	req, err := ocsp.CreateRequest(c, issuer, nil)
	if err != nil {
		return errUnavailable{"building request: " + err.Error()}
	}
	var last error = errUnavailable{"no http responder"}
	for _, url := range c.OCSPServer {
		if !isHTTPURL(url) {
			continue
		}
		body, err := r.Fetcher.Fetch(ctx, Request{URL: url, ContentType: "application/ocsp-request", Body: req, MaxSize: MaxOCSPSize})
		if isPending(err) {
			// Not an answer yet: the caller asks again later (Check
			// passes it up; the CRL is not consulted meanwhile, so that
			// a definite OCSP answer stays final).
			return fmt.Errorf("OCSP %s: %w", url, err)
		}
		if err != nil {
			last = errUnavailable{url + ": " + err.Error()}
			continue
		}
		// ParseResponseForCert checks the signature by the issuer or a
		// responder certificate the issuer delegated to (RFC 6960 §4.2.2.2).
		resp, err := ocsp.ParseResponseForCert(body, c, issuer)
		if err != nil {
			last = errUnavailable{url + ": " + err.Error()}
			continue
		}
		now, skew := r.now(), r.OCSPSkew
		if skew == 0 {
			skew = 5 * time.Minute
		}
		// RFC 6960 §4.2.2.1: a response is fresh between thisUpdate and
		// nextUpdate.
		if resp.ThisUpdate.After(now.Add(skew)) || (!resp.NextUpdate.IsZero() && now.After(resp.NextUpdate.Add(skew))) {
			last = errUnavailable{fmt.Sprintf("%s: stale response (thisUpdate %s, nextUpdate %s)", url,
				resp.ThisUpdate.UTC().Format(time.RFC3339), resp.NextUpdate.UTC().Format(time.RFC3339))}
			continue
		}
		if resp.Status == ocsp.Unknown {
			last = errUnavailable{url + ": status unknown"}
			continue
		}
		if !resp.NextUpdate.IsZero() {
			r.mu.Lock()
			if r.ocsp == nil || len(r.ocsp) > 4096 {
				r.ocsp = map[string]*ocsp.Response{}
			}
			r.ocsp[key] = resp
			r.mu.Unlock()
		}
		return r.ocspVerdict(c, resp, url)
	}
	return last
}

func (r *Revocation) ocspVerdict(c *x509.Certificate, resp *ocsp.Response, source string) error {
	if resp.Status == ocsp.Revoked {
		return refuse(ReasonRevokedOCSP, c.Subject.String(), "serial %s revoked at %s (%s)", c.SerialNumber,
			resp.RevokedAt.UTC().Format(time.RFC3339), source)
	}
	return nil
}

func (r *Revocation) checkCRL(ctx context.Context, c, issuer *x509.Certificate) error {
	var last error = errUnavailable{"no http distribution point"}
	for _, url := range c.CRLDistributionPoints {
		if !isHTTPURL(url) {
			continue
		}
		crl, err := r.crl(ctx, url, issuer)
		if isPending(err) {
			return fmt.Errorf("CRL %s: %w", url, err) // not unavailable: later
		}
		if err != nil {
			last = errUnavailable{url + ": " + err.Error()}
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return refuse(ReasonRevokedCRL, c.Subject.String(), "serial %s revoked at %s in %s", c.SerialNumber,
					e.RevocationTime.UTC().Format(time.RFC3339), url)
			}
		}
		return nil
	}
	return last
}

// crl returns the CRL at url, from the cache while it is current.
func (r *Revocation) crl(ctx context.Context, url string, issuer *x509.Certificate) (*x509.RevocationList, error) {
	now := r.now()
	r.mu.Lock()
	cached := r.crls[url]
	r.mu.Unlock()
	if cached != nil && now.Before(cached.NextUpdate) && bytes.Equal(cached.RawIssuer, issuer.RawSubject) &&
		cached.CheckSignatureFrom(issuer) == nil {
		return cached, nil
	}
	data, err := r.Fetcher.Fetch(ctx, Request{URL: url, MaxSize: MaxCRLSize})
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(data); b != nil && b.Type == "X509 CRL" {
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, err
	}
	// RFC 5280 §6.3.3: the CRL must be signed by the certificate's issuer
	// and be current.
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return nil, fmt.Errorf("CRL signature: %w", err)
	}
	if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
		return nil, fmt.Errorf("CRL expired at %s", crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	r.mu.Lock()
	if r.crls == nil {
		r.crls = map[string]*x509.RevocationList{}
	}
	if _, ok := r.crls[url]; !ok && len(r.crls) >= maxCachedCRLs {
		for u, c := range r.crls { // the expired first, else any
			if !c.NextUpdate.IsZero() && now.After(c.NextUpdate) {
				delete(r.crls, u)
			}
		}
		for u := range r.crls {
			if len(r.crls) < maxCachedCRLs {
				break
			}
			delete(r.crls, u)
		}
	}
	r.crls[url] = crl
	r.mu.Unlock()
	return crl, nil
}
