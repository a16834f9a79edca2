package wire

import "encoding/binary"

// CP is the Configuration payload (RFC 7296 §3.15).
type CP struct {
	CFGType CFGType
	Attrs   []CPAttr
}

// CPAttr is one configuration attribute (RFC 7296 §3.15.1). An empty Value
// in a CFG_REQUEST asks for any value of that type.
type CPAttr struct {
	Type  CPAttrType // 15 bits; the R bit is sent as zero
	Value []byte
}

func (*CP) Type() PayloadType { return PayloadCP }

func (c *CP) BodyLen() int {
	n := 4
	for _, a := range c.Attrs {
		n += 4 + len(a.Value)
	}
	return n
}

func (c *CP) AppendBody(b []byte) []byte {
	b = append(b, byte(c.CFGType), 0, 0, 0)
	for _, a := range c.Attrs {
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type)&0x7fff)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

// ParseCP parses a CP payload body. The reserved R bit of each attribute
// type is ignored (RFC 7296 §3.15.1).
func ParseCP(b []byte) (*CP, error) {
	if len(b) < 4 {
		return nil, errTruncated("CP payload", 4, len(b))
	}
	c := &CP{CFGType: CFGType(b[0])}
	b = b[4:]
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, errTruncated("CP attribute", 4, len(b))
		}
		typ := CPAttrType(binary.BigEndian.Uint16(b[0:2]) & 0x7fff)
		alen := int(binary.BigEndian.Uint16(b[2:4]))
		if 4+alen > len(b) {
			return nil, errTruncated("CP attribute "+typ.String(), alen, len(b)-4)
		}
		c.Attrs = append(c.Attrs, CPAttr{Type: typ, Value: orNil(b[4 : 4+alen])})
		b = b[4+alen:]
	}
	return c, nil
}
