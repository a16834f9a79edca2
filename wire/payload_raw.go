package wire

// RawPayload is a payload this package does not decode (RFC 7296 §2.5):
// kept with its type, critical bit and body so it can be reported or
// re-encoded unchanged.
type RawPayload struct {
	PType    PayloadType
	Critical bool
	Body     []byte
}

func (r *RawPayload) Type() PayloadType          { return r.PType }
func (r *RawPayload) BodyLen() int               { return len(r.Body) }
func (r *RawPayload) AppendBody(b []byte) []byte { return append(b, r.Body...) }
