package wire

// Encrypted is the Encrypted and Authenticated payload, SK (RFC 7296 §3.14).
// NextPayload is the type of the first inner payload (the SK payload's own
// Next Payload field); Body is IV | ciphertext | ICV, opened by
// Message.Open with a Protector.
//
// To build a protected message, do not add an Encrypted payload yourself:
// put the inner payloads in Message.Inner and call Message.Encode with a
// Protector.
type Encrypted struct {
	NextPayload PayloadType
	Body        []byte
	bodyOff     int // offset of Body in the parsed message, 0 if not parsed
}

func (*Encrypted) Type() PayloadType            { return PayloadSK }
func (e *Encrypted) BodyLen() int               { return len(e.Body) }
func (e *Encrypted) AppendBody(b []byte) []byte { return append(b, e.Body...) }

func parseEncrypted(next PayloadType, body []byte, bodyOff int) (*Encrypted, error) {
	return &Encrypted{NextPayload: next, Body: orNil(body), bodyOff: bodyOff}, nil
}
