package suite

import (
	"errors"
	"strconv"

	"github.com/petrel-vpn/petrel/wire"
)

// Sentinel errors; the typed errors below wrap or accompany them so callers
// can use errors.Is.
var (
	// ErrAuthentication means an ICV or AEAD tag did not verify.
	ErrAuthentication = errors.New("suite: integrity check failed")
	// ErrMalformed means an encrypted body had an impossible length or padding.
	ErrMalformed = errors.New("suite: malformed encrypted payload")
	// ErrInvalidPublic means a peer's KE data failed validation (RFC 7296 §5).
	ErrInvalidPublic = errors.New("suite: invalid key exchange data")
	// ErrIVExhausted means an AEAD key has sealed 2^64-1 messages and must be
	// rekeyed before the next one (nonce reuse would break the AEAD).
	ErrIVExhausted = errors.New("suite: AEAD IV counter exhausted, rekey required")
	// ErrForbidden is matched by every *ForbiddenError.
	ErrForbidden = errors.New("suite: transform forbidden")
	// ErrNotSupported is matched by every *NotSupportedError.
	ErrNotSupported = errors.New("suite: transform not supported")
)

// ForbiddenError reports a transform that RFC 8247 (IKE) or RFC 8221 (ESP)
// says MUST NOT be used. Section names the rule.
type ForbiddenError struct {
	Transform wire.Transform
	Section   string // e.g. "RFC 8247 §2.1"
}

func (e *ForbiddenError) Error() string {
	return "suite: " + e.Transform.String() + " MUST NOT be used (" + e.Section + ")"
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// NotSupportedError reports a transform (or key length) that is allowed by
// policy but that this package does not implement.
type NotSupportedError struct {
	Transform wire.Transform
	Reason    string // optional detail, e.g. "key length must be 128, 192 or 256"
}

func (e *NotSupportedError) Error() string {
	s := "suite: " + e.Transform.String() + " not supported"
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// KEDataError reports peer KE data that failed validation (RFC 7296 §5,
// RFC 5903 §7, RFC 8031 §2.1). It matches ErrInvalidPublic.
type KEDataError struct {
	Method wire.KEID
	Reason string
}

func (e *KEDataError) Error() string {
	return "suite: invalid " + e.Method.String() + " key exchange data: " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidPublic) true.
func (e *KEDataError) Is(target error) bool { return target == ErrInvalidPublic }

func keLenError(id wire.KEID, got, want int) error {
	return &KEDataError{Method: id, Reason: "length " + strconv.Itoa(got) + ", want " + strconv.Itoa(want)}
}
