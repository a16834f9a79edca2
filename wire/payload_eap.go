package wire

import "encoding/binary"

// EAP codes (RFC 3748 §4).
const (
	EAPRequest  uint8 = 1
	EAPResponse uint8 = 2
	EAPSuccess  uint8 = 3
	EAPFailure  uint8 = 4
)

// EAP is the Extensible Authentication payload (RFC 7296 §3.16): one whole
// EAP message (RFC 3748 §4), kept as bytes.
type EAP struct {
	Message []byte
}

func (*EAP) Type() PayloadType            { return PayloadEAP }
func (e *EAP) BodyLen() int               { return len(e.Message) }
func (e *EAP) AppendBody(b []byte) []byte { return append(b, e.Message...) }

// Code is the EAP Code (1 Request, 2 Response, 3 Success, 4 Failure).
func (e *EAP) Code() uint8 {
	if len(e.Message) < 1 {
		return 0
	}
	return e.Message[0]
}

// Identifier is the EAP Identifier.
func (e *EAP) Identifier() uint8 {
	if len(e.Message) < 2 {
		return 0
	}
	return e.Message[1]
}

// EAPType is the Type of a Request or Response (1 Identity, 26 MSCHAPv2,
// ...), 0 for other codes.
func (e *EAP) EAPType() uint8 {
	if (e.Code() != EAPRequest && e.Code() != EAPResponse) || len(e.Message) < 5 {
		return 0
	}
	return e.Message[4]
}

// ParseEAP parses an EAP payload body: at least the 4-octet EAP header, an
// EAP Length equal to the body length, and a Type octet in Requests and
// Responses (RFC 3748 §4).
func ParseEAP(b []byte) (*EAP, error) {
	if len(b) < 4 {
		return nil, errTruncated("EAP message", 4, len(b))
	}
	if l := int(binary.BigEndian.Uint16(b[2:4])); l != len(b) {
		return nil, errSyntax("EAP Length %d in a %d-octet payload", l, len(b))
	}
	if (b[0] == EAPRequest || b[0] == EAPResponse) && len(b) < 5 {
		return nil, errSyntax("EAP %d without a Type", b[0])
	}
	return &EAP{Message: b}, nil
}
