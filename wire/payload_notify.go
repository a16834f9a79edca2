package wire

import "encoding/binary"

// Notify is the Notify payload (RFC 7296 §3.10). Protocol and SPI name the SA
// the notification is about; both are empty for notifications about the IKE
// SA (except the few that carry an SPI, RFC 7296 §3.10).
type Notify struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadN }
func (n *Notify) BodyLen() int    { return 4 + len(n.SPI) + len(n.Data) }

func (n *Notify) AppendBody(b []byte) []byte {
	b = append(b, byte(n.Protocol), byte(len(n.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(n.NotifyType))
	b = append(b, n.SPI...)
	return append(b, n.Data...)
}

func (n *Notify) check() error {
	if len(n.SPI) > 255 {
		return errSyntax("notify SPI of %d octets", len(n.SPI))
	}
	return nil
}

// ParseNotify parses a Notify payload body.
func ParseNotify(b []byte) (*Notify, error) {
	if len(b) < 4 {
		return nil, errTruncated("Notify payload", 4, len(b))
	}
	spiSize := int(b[1])
	if 4+spiSize > len(b) {
		return nil, errTruncated("Notify SPI", spiSize, len(b)-4)
	}
	n := &Notify{Protocol: ProtocolID(b[0]), NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:4]))}
	if spiSize > 0 {
		n.SPI = b[4 : 4+spiSize]
	}
	n.Data = orNil(b[4+spiSize:])
	return n, nil
}
