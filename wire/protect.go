package wire

// Protector seals and opens the body of an SK (RFC 7296 §3.14) or SKF
// (RFC 7383 §2.5) payload. The crypto suites implement it; wire only lays out
// the octets.
//
// The body is everything after the payload's generic header (and, for SKF,
// after the Fragment Number and Total Fragments fields): the IV, the
// ciphertext of the inner payloads plus padding and Pad Length, and the ICV.
// An SK or SKF payload is always the last payload of a message, so the body
// runs to the end of msg.
type Protector interface {
	// SealedLen is the body length for plaintextLen octets of inner
	// payloads: IV + ciphertext (including padding and the Pad Length
	// octet) + ICV.
	SealedLen(plaintextLen int) int

	// Seal encrypts plaintext into msg[bodyOff:]. msg is the complete
	// message, already holding its final header and length fields, with
	// len(msg)-bodyOff == SealedLen(len(plaintext)). For AEAD transforms the
	// associated data is msg[:bodyOff] (RFC 5282 §5.1); for
	// encrypt-then-MAC transforms the ICV covers msg[:len(msg)-ICVLen].
	Seal(msg []byte, bodyOff int, plaintext []byte) error

	// Open checks the ICV of msg and decrypts msg[bodyOff:], returning the
	// inner payloads with padding and Pad Length removed. It must not
	// modify msg. It fails (without panicking) on any length or
	// authentication error.
	Open(msg []byte, bodyOff int) ([]byte, error)
}
