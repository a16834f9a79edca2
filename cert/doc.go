// Package cert holds petrel's certificate authentication building blocks:
// signature AUTH payloads (RFC 7296 §2.15 and §3.8, RFC 7427 method 14,
// RFC 4754 ECDSA methods 9/10/11, RFC 8420 Ed25519), SIGNATURE_HASH_ALGORITHMS
// negotiation (RFC 7427 §4), credential loading (PEM, DER, PKCS#12), a store
// of local credentials and trust anchors with CERTREQ handling (RFC 7296
// §3.7), chain validation with crypto/x509 plus key usage and EKU policy
// (RFC 4945 §5), identity-to-certificate matching (RFC 4945 §3.1),
// revocation by CRL and OCSP (RFC 5280, RFC 6960), hash-and-URL
// certificates (RFC 7296 §3.6) and a small test CA for `petrel pki`.
//
// The package does no network I/O of its own: CRLs, OCSP responses and
// hash-and-URL certificates are fetched through the Fetcher interface, which
// the daemon fills with cert/httpfetch and tests fill with fakes. It imports
// wire, the standard library's crypto packages and golang.org/x/crypto (ocsp,
// pkcs12, cryptobyte); it imports neither net nor net/url, so the sans-I/O
// protocol core may import it.
//
// Every refusal is an *Error carrying a Reason, so the core can answer
// AUTHENTICATION_FAILED and log one precise line.
package cert
