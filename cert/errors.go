package cert

import (
	"errors"
	"fmt"
)

// Reason says why a peer's certificate authentication was refused. Each
// reason ends in AUTHENTICATION_FAILED on the wire (RFC 7296 §2.21.2); the
// reason itself is for the local log only.
type Reason int

// Refusal reasons.
const (
	ReasonBadSignature          Reason = iota + 1 // the AUTH signature does not verify
	ReasonMethodNotAccepted                       // AUTH method or signature scheme refused by policy
	ReasonUnsupportedHash                         // no common or an unknown signature hash algorithm
	ReasonUntrustedCA                             // the chain does not lead to a configured trust anchor
	ReasonExpired                                 // a certificate in the chain is expired or not yet valid
	ReasonRevokedCRL                              // revoked according to a CRL
	ReasonRevokedOCSP                             // revoked according to an OCSP response
	ReasonRevocationUnavailable                   // no usable CRL or OCSP answer under the strict policy
	ReasonIdentityMismatch                        // the claimed identity is not in the certificate
	ReasonKeyUsage                                // keyUsage or extendedKeyUsage forbids IKE signatures
	ReasonNoCertificate                           // no (usable) end-entity certificate or local credential
	ReasonHashURL                                 // a hash-and-URL certificate could not be fetched or did not match
	ReasonMalformed                               // a CERT or AUTH payload could not be parsed
)

var reasonNames = map[Reason]string{
	ReasonBadSignature:          "bad signature",
	ReasonMethodNotAccepted:     "authentication method not accepted",
	ReasonUnsupportedHash:       "unsupported hash",
	ReasonUntrustedCA:           "untrusted CA",
	ReasonExpired:               "certificate expired",
	ReasonRevokedCRL:            "revoked (CRL)",
	ReasonRevokedOCSP:           "revoked (OCSP)",
	ReasonRevocationUnavailable: "revocation status unavailable",
	ReasonIdentityMismatch:      "identity not in certificate",
	ReasonKeyUsage:              "wrong key usage",
	ReasonNoCertificate:         "no certificate",
	ReasonHashURL:               "hash-and-URL certificate unusable",
	ReasonMalformed:             "malformed payload",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Error is a refusal with its reason, the certificate subject it concerns
// (if any) and a detail for the log line. It never holds key material.
type Error struct {
	Reason  Reason
	Subject string // RFC 4514 subject of the certificate concerned, or ""
	Detail  string
	Err     error // underlying error, if any
}

func (e *Error) Error() string {
	s := "cert: " + e.Reason.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Subject != "" {
		s += " (subject " + e.Subject + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, &Error{Reason: R}) match any Error with reason R.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason && t.Subject == "" && t.Detail == "" && t.Err == nil
}

// ReasonOf returns the Reason of the first *Error in err's chain, or 0.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}

func refuse(r Reason, subject, format string, args ...any) *Error {
	return &Error{Reason: r, Subject: subject, Detail: fmt.Sprintf(format, args...)}
}

func refuseErr(r Reason, subject string, err error, format string, args ...any) *Error {
	return &Error{Reason: r, Subject: subject, Detail: fmt.Sprintf(format, args...), Err: err}
}
