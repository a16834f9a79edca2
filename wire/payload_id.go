package wire

// ID is the Identification payload (RFC 7296 §3.5): IDi when Responder is
// false, IDr when true.
type ID struct {
	Responder bool
	IDType    IDType
	Data      []byte
}

func (i *ID) Type() PayloadType {
	if i.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (i *ID) BodyLen() int { return 4 + len(i.Data) }

// AppendBody appends ID Type, three RESERVED octets and the data. The
// RESERVED octets are part of what the AUTH payload signs (RFC 7296 §2.15).
func (i *ID) AppendBody(b []byte) []byte {
	b = append(b, byte(i.IDType), 0, 0, 0)
	return append(b, i.Data...)
}

// ParseID parses an IDi (responder false) or IDr body.
func ParseID(responder bool, b []byte) (*ID, error) {
	if len(b) < 4 {
		return nil, errTruncated("ID payload", 4, len(b))
	}
	return &ID{Responder: responder, IDType: IDType(b[0]), Data: orNil(b[4:])}, nil
}
