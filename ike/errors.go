package ike

import (
	"errors"

	"github.com/petrel-vpn/petrel/wire"
)

// Errors returned to callers of the Endpoint API.
var (
	ErrUnknownConnection = errors.New("ike: unknown connection")
	ErrNoSA              = errors.New("ike: no such IKE SA")
	ErrConfig            = errors.New("ike: invalid configuration")
)

// notifyError is a failure inside an exchange that is answered with (or
// caused by) a notification (RFC 7296 §2.21). reason is for the local log
// only and never goes on the wire.
type notifyError struct {
	notify wire.NotifyType
	data   []byte
	reason string
	// tellPeer: an initiator sends the notification to the responder in
	// an INFORMATIONAL before dropping the SA (RFC 7296 §2.21.2).
	tellPeer bool
}

func (e *notifyError) Error() string { return "ike: " + e.notify.String() + ": " + e.reason }

func notifyErr(n wire.NotifyType, reason string) *notifyError {
	return &notifyError{notify: n, reason: reason}
}
