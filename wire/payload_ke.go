package wire

import "encoding/binary"

// KE is the Key Exchange payload (RFC 7296 §3.4): the key exchange method
// (Diffie-Hellman group) and the sender's public value.
type KE struct {
	Group KEID
	Data  []byte
}

func (*KE) Type() PayloadType { return PayloadKE }
func (k *KE) BodyLen() int    { return 4 + len(k.Data) }

func (k *KE) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(k.Group))
	b = append(b, 0, 0) // RESERVED
	return append(b, k.Data...)
}

// ParseKE parses a KE payload body. Whether Data has the length the group
// requires (RFC 7296 §3.4) is the crypto suite's check.
func ParseKE(b []byte) (*KE, error) {
	if len(b) < 4 {
		return nil, errTruncated("KE payload", 4, len(b))
	}
	return &KE{Group: KEID(binary.BigEndian.Uint16(b)), Data: orNil(b[4:])}, nil
}
