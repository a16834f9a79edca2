// Package esp implements the Encapsulating Security Payload (RFC 4303) packet
// transforms that petrel's userspace data plane runs: in-place sealing and
// opening of ESP packets, the anti-replay window (RFC 4303 §3.4.3, bitmap as
// in RFC 6479), per-SA counters, and the UDP encapsulation helpers of
// RFC 3948. It does no I/O: callers hand it buffers.
//
// Algorithms: AES-GCM with a 16-octet ICV (RFC 4106), ChaCha20-Poly1305
// (RFC 7634), and AES-CBC (RFC 3602) with HMAC-SHA-256-128, -384-192,
// -512-256 (RFC 4868) or HMAC-SHA1-96 (RFC 2404). 32-bit and extended (64-bit)
// sequence numbers are supported (RFC 4303 §2.2.1, §3.3.3).
//
// An SA is one direction: an Outbound seals, an Inbound opens. Both are safe
// for concurrent use by several goroutines, so a data plane can run the
// crypto of one SA on every core. The sequence number of an Outbound never
// wraps: once it is exhausted Seal returns ErrSeqExhausted and the SA must
// be rekeyed (RFC 4303 §3.3.3).
//
// Buffer layout for Seal, so that no packet is copied:
//
//	buf[0:HeaderLen]                 room for SPI, sequence number and IV
//	buf[HeaderLen:HeaderLen+n]       the payload (an IP packet in tunnel mode)
//	cap(buf) >= HeaderLen+n+MaxTrailerLen  room for padding, trailer and ICV
//
// Import rules (enforced at the module root): stdlib crypto,
// golang.org/x/crypto and package wire (for the IANA transform IDs only).
package esp
