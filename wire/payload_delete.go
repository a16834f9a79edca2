package wire

import "encoding/binary"

// Delete is the Delete payload (RFC 7296 §3.11). For the IKE SA Protocol is
// ProtoIKE and SPIs is empty (the SPIs are in the header); for ESP and AH
// SPIs holds the inbound 4-octet SPIs of the sender.
type Delete struct {
	Protocol ProtocolID
	SPIs     []uint32
}

func (*Delete) Type() PayloadType { return PayloadD }

func (d *Delete) spiSize() int {
	if d.Protocol == ProtoIKE {
		return 0
	}
	return 4
}

func (d *Delete) BodyLen() int { return 4 + d.spiSize()*len(d.SPIs) }

func (d *Delete) AppendBody(b []byte) []byte {
	b = append(b, byte(d.Protocol), byte(d.spiSize()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.SPIs)))
	if d.spiSize() == 0 {
		return b
	}
	for _, s := range d.SPIs {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	return b
}

func (d *Delete) check() error {
	switch {
	case d.Protocol == ProtoIKE && len(d.SPIs) != 0:
		return errSyntax("Delete for the IKE SA carries no SPIs")
	case d.Protocol != ProtoIKE && d.Protocol != ProtoESP && d.Protocol != ProtoAH:
		return errSyntax("Delete for protocol %v", d.Protocol)
	case len(d.SPIs) > 0xffff:
		return errSyntax("Delete with %d SPIs", len(d.SPIs))
	}
	return nil
}

// ParseDelete parses a Delete payload body: SPI Size must be 0 for IKE (with
// no SPIs) and 4 for ESP/AH, and the SPIs must fill the body exactly
// (RFC 7296 §3.11).
func ParseDelete(b []byte) (*Delete, error) {
	if len(b) < 4 {
		return nil, errTruncated("Delete payload", 4, len(b))
	}
	d := &Delete{Protocol: ProtocolID(b[0])}
	size, num := int(b[1]), int(binary.BigEndian.Uint16(b[2:4]))
	switch d.Protocol {
	case ProtoIKE:
		if size != 0 || num != 0 || len(b) != 4 {
			return nil, errSyntax("Delete for IKE SA with SPI size %d, %d SPIs, %d octets", size, num, len(b))
		}
		return d, nil
	case ProtoESP, ProtoAH:
		if size != 4 {
			return nil, errSyntax("Delete for %v with SPI size %d", d.Protocol, size)
		}
	default:
		return nil, errSyntax("Delete for protocol %v", d.Protocol)
	}
	if len(b)-4 != num*size {
		return nil, errSyntax("Delete: %d SPIs of %d octets in %d octets", num, size, len(b)-4)
	}
	for p := b[4:]; len(p) > 0; p = p[4:] {
		d.SPIs = append(d.SPIs, binary.BigEndian.Uint32(p))
	}
	return d, nil
}
