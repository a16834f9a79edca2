// Package wire is petrel's IKEv2 message codec (RFC 7296 §3, RFC 7383 §2.5):
// the IKE header, every payload, whole messages, the IANA registries and the
// table of which payloads each exchange may carry.
//
// Import rules (enforced by a test at the module root): wire imports no
// crypto package and no socket package. Encryption of SK and SKF payloads is
// delegated to a Protector that the crypto suites implement.
package wire
