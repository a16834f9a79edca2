package esp

import "encoding/binary"

// NATTPort is the UDP port that carries both IKE and ESP once NAT traversal
// is in use (RFC 3948 §2, RFC 7296 §2.23).
const NATTPort = 4500

// UDPKind classifies a datagram received on the NAT-T port (RFC 3948 §2.2).
type UDPKind uint8

const (
	UDPInvalid   UDPKind = iota // too short to be anything
	UDPIKE                      // begins with the 4-octet Non-ESP Marker
	UDPESP                      // an ESP packet (SPI is non-zero)
	UDPKeepalive                // a NAT-keepalive (RFC 3948 §2.3)
)

func (k UDPKind) String() string {
	switch k {
	case UDPIKE:
		return "IKE"
	case UDPESP:
		return "ESP"
	case UDPKeepalive:
		return "keepalive"
	}
	return "invalid"
}

// KeepaliveByte is the single octet of a NAT-keepalive packet (RFC 3948 §2.3).
const KeepaliveByte = 0xFF

// ClassifyUDP tells IKE, ESP and keepalives apart in a UDP payload received
// on port 4500. RFC 3948 §2.2: a zero first 32 bits (the Non-ESP Marker)
// means IKE, which follows the marker; otherwise those bits are an ESP SPI.
// A 1-octet 0xFF payload is a NAT-keepalive, to be ignored.
func ClassifyUDP(b []byte) UDPKind {
	switch {
	case len(b) == 1 && b[0] == KeepaliveByte:
		return UDPKeepalive
	case len(b) < 4:
		return UDPInvalid
	case binary.BigEndian.Uint32(b) == 0:
		return UDPIKE
	case len(b) < 8:
		return UDPInvalid
	}
	return UDPESP
}
