package wire

import (
	"fmt"
	"strconv"
)

// Error is a protocol error found while parsing or checking a message. Notify
// is the notification to answer with (RFC 7296 §2.21.1, §3.10.1) and Data its
// notification data: for UNSUPPORTED_CRITICAL_PAYLOAD the one-octet type of
// the payload that was not understood (RFC 7296 §2.5). Use errors.As:
//
//	var we *wire.Error
//	if errors.As(err, &we) { /* answer with N(we.Notify, we.Data) */ }
//
// Errors returned by a Protector while opening SK/SKF payloads are not
// *Error: an integrity failure means the message is dropped silently
// (RFC 7296 §2.21).
type Error struct {
	Notify NotifyType
	Data   []byte
	Reason string
}

func (e *Error) Error() string {
	return "wire: " + e.Notify.String() + ": " + e.Reason
}

// errSyntax returns an INVALID_SYNTAX error (RFC 7296 §2.21.1).
func errSyntax(format string, a ...any) *Error {
	return &Error{Notify: INVALID_SYNTAX, Reason: fmt.Sprintf(format, a...)}
}

// errTruncated reports that a structure claims more octets than it has.
func errTruncated(what string, need, have int) *Error {
	return errSyntax("%s: need %d octets, have %d", what, need, have)
}

// errCritical is UNSUPPORTED_CRITICAL_PAYLOAD for payload type t (RFC 7296 §2.5).
func errCritical(t PayloadType) *Error {
	return &Error{
		Notify: UNSUPPORTED_CRITICAL_PAYLOAD,
		Data:   []byte{byte(t)},
		Reason: "unsupported critical payload " + t.String() + " (" + strconv.Itoa(int(t)) + ")",
	}
}
