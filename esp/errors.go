package esp

import "errors"

// Errors returned by Open and Seal. Open's errors say which counter the
// packet was charged to; none of them changes the replay window.
var (
	// ErrShort: the packet is too short or its ciphertext is not a whole
	// number of cipher blocks.
	ErrShort = errors.New("esp: packet too short or misaligned")
	// ErrSPI: the packet's SPI is not this SA's.
	ErrSPI = errors.New("esp: SPI mismatch")
	// ErrReplay: the sequence number was seen before (RFC 4303 §3.4.3).
	ErrReplay = errors.New("esp: replayed packet")
	// ErrTooOld: the sequence number lies left of the replay window.
	ErrTooOld = errors.New("esp: sequence number left of replay window")
	// ErrAuth: the ICV did not verify (RFC 4303 §3.4.4).
	ErrAuth = errors.New("esp: integrity check failed")
	// ErrPadding: the padding or pad length is invalid (RFC 4303 §2.4).
	ErrPadding = errors.New("esp: invalid padding")
	// ErrNextHeader: the next header is not allowed in this SA's mode.
	ErrNextHeader = errors.New("esp: next header not allowed in this mode")
	// ErrDummy: a dummy packet (next header 59, RFC 4303 §2.6); drop it
	// silently. It authenticated and advanced the replay window.
	ErrDummy = errors.New("esp: dummy packet")
	// ErrSeqExhausted: the outbound sequence number space is used up; the
	// SA must be rekeyed, it never wraps (RFC 4303 §3.3.3).
	ErrSeqExhausted = errors.New("esp: sequence number exhausted, rekey required")
	// ErrBuffer: the caller's buffer lacks header room or trailer capacity.
	ErrBuffer = errors.New("esp: buffer too small")
)
