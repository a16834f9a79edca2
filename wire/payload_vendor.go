package wire

// VendorID is the Vendor ID payload (RFC 7296 §3.12).
type VendorID struct {
	Data []byte
}

func (*VendorID) Type() PayloadType            { return PayloadV }
func (v *VendorID) BodyLen() int               { return len(v.Data) }
func (v *VendorID) AppendBody(b []byte) []byte { return append(b, v.Data...) }

// ParseVendorID parses a Vendor ID payload body (any length).
func ParseVendorID(b []byte) (*VendorID, error) { return &VendorID{Data: orNil(b)}, nil }
