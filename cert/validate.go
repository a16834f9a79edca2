package cert

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"slices"
	"time"
)

// EKU is an extended key usage an IKE peer certificate may carry
// (RFC 4945 §5.1.3.12).
type EKU int

// Extended key usages for EKUPolicy.
const (
	EKUServerAuth EKU = iota + 1
	EKUClientAuth
	EKUIPsecIKE        // id-kp-ipsecIKE, RFC 4945 §5.1.3.12
	EKUAny             // anyExtendedKeyUsage
	EKUIKEIntermediate // iKEIntermediate (1.3.6.1.5.5.8.2.2), strongSwan's --flag ikeIntermediate
)

var (
	oidIPsecIKE        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 17}
	oidIKEIntermediate = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 8, 2, 2}
)

func (e EKU) String() string {
	return map[EKU]string{EKUServerAuth: "serverAuth", EKUClientAuth: "clientAuth", EKUIPsecIKE: "ipsecIKE", EKUAny: "anyExtendedKeyUsage", EKUIKEIntermediate: "ikeIntermediate"}[e]
}

func hasEKU(c *x509.Certificate, e EKU) bool {
	switch e {
	case EKUServerAuth:
		return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	case EKUClientAuth:
		return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	case EKUAny:
		return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
	case EKUIPsecIKE:
		return slices.ContainsFunc(c.UnknownExtKeyUsage, oidIPsecIKE.Equal)
	case EKUIKEIntermediate:
		return slices.ContainsFunc(c.UnknownExtKeyUsage, oidIKEIntermediate.Equal)
	}
	return false
}

// Validator checks a peer's certificate chain: path to a trust anchor with
// crypto/x509, validity at Now, key usage, EKU and revocation.
type Validator struct {
	Store *Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// EKUs lists the extended key usages of which the end-entity
	// certificate must carry one when it has an EKU extension at all
	// (RFC 4945 §5.1.3.12: no extension means no restriction;
	// anyExtendedKeyUsage always passes). Empty accepts any EKU.
	EKUs []EKU
	// Revocation, if set, checks every certificate below the anchor.
	Revocation *Revocation
}

func (v *Validator) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// Validate builds and checks the chain from leaf through intermediates
// (from the peer's CERT payloads) to a trust anchor and returns it, leaf
// first. Refusals are *Error with ReasonExpired, ReasonUntrustedCA,
// ReasonKeyUsage, ReasonRevokedCRL/OCSP or ReasonRevocationUnavailable;
// an error wrapping ErrFetchPending means no decision yet (see MayDefer).
func (v *Validator) Validate(ctx context.Context, leaf *x509.Certificate, intermediates []*x509.Certificate) ([]*x509.Certificate, error) {
	subj := leaf.Subject.String()
	now := v.now()
	if now.After(leaf.NotAfter) {
		return nil, refuse(ReasonExpired, subj, "expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, refuse(ReasonExpired, subj, "not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	// RFC 4945 §5.1.3.2: digitalSignature or nonRepudiation when keyUsage
	// is present.
	if leaf.KeyUsage != 0 && leaf.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, refuse(ReasonKeyUsage, subj, "keyUsage lacks digitalSignature")
	}
	if len(v.EKUs) > 0 && (len(leaf.ExtKeyUsage) > 0 || len(leaf.UnknownExtKeyUsage) > 0) && !hasEKU(leaf, EKUAny) &&
		!slices.ContainsFunc(v.EKUs, func(e EKU) bool { return hasEKU(leaf, e) }) {
		return nil, refuse(ReasonKeyUsage, subj, "extendedKeyUsage has none of %v", v.EKUs)
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	var roots *x509.CertPool
	if v.Store != nil {
		roots = v.Store.roots()
	}
	if roots == nil {
		roots = x509.NewCertPool()
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: pool, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, // EKU checked above, per policy
	})
	if err != nil {
		return nil, mapVerifyError(subj, err)
	}
	chain := chains[0]
	if v.Revocation != nil {
		// The verdict is the first certificate's, leaf first, that is not
		// accepted — the same as when every fetch is waited for. A check
		// still waiting on a fetch (ErrFetchPending) makes the result
		// pending, even if a later certificate is refused (its reason
		// would not be the one given once the fetch is in), but the later
		// checks still run, so that their fetches start now and the next
		// attempt finds them done. Warnings of certificates accepted
		// without revocation status are logged once the verdict is in:
		// not for a refused chain, not on each attempt while pending.
		var pending error
		var warns []func()
		for i := 0; i+1 < len(chain); i++ {
			warn, err := v.Revocation.check(ctx, chain[i], chain[i+1])
			if isPending(err) {
				if pending == nil {
					pending = err
				}
				continue
			}
			if err != nil {
				if pending == nil {
					return nil, err
				}
				continue
			}
			if warn != nil {
				warns = append(warns, warn)
			}
		}
		if pending != nil {
			return nil, pending
		}
		for _, w := range warns {
			w()
		}
	}
	return chain, nil
}

func mapVerifyError(subj string, err error) error {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		s := inv.Cert.Subject.String()
		switch inv.Reason {
		case x509.Expired:
			return refuseErr(ReasonExpired, s, err, "certificate in chain of %s", subj)
		case x509.IncompatibleUsage:
			return refuseErr(ReasonKeyUsage, s, err, "certificate in chain of %s", subj)
		}
		return refuseErr(ReasonUntrustedCA, s, err, "chain of %s", subj)
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		if ua.Cert != nil && ua.Cert.Subject.String() != subj {
			return refuse(ReasonUntrustedCA, subj, "chain ends at %q, issued by %q, which is no trust anchor",
				ua.Cert.Subject.String(), ua.Cert.Issuer.String())
		}
		issuer := ""
		if ua.Cert != nil {
			issuer = ua.Cert.Issuer.String()
		}
		return refuse(ReasonUntrustedCA, subj, "issuer %q is no trust anchor", issuer)
	}
	return refuseErr(ReasonUntrustedCA, subj, err, "chain does not verify")
}
