package wire

import "encoding/binary"

// HeaderLen is the length of the IKE header (RFC 7296 §3.1).
const HeaderLen = 28

// Header is the IKE header (RFC 7296 §3.1):
//
//	 0                   1                   2                   3
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                       IKE SA Responder's SPI                  |
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	|                          Message ID                           |
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// When a Message is encoded, NextPayload and Length are computed from the
// payloads; the values in the struct are ignored. A zero MajorVersion is
// encoded as 2.
type Header struct {
	SPIi         uint64
	SPIr         uint64
	NextPayload  PayloadType
	MajorVersion uint8
	MinorVersion uint8
	Exchange     ExchangeType
	Flags        Flags
	MessageID    uint32
	Length       uint32
}

// ParseHeader parses the first HeaderLen octets of b. It checks the major
// version (INVALID_MAJOR_VERSION unless 2, RFC 7296 §1.5/§2.5) and that Length
// is at least HeaderLen, but not Length against len(b): Parse does that.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, errTruncated("IKE header", HeaderLen, len(b))
	}
	h := Header{
		SPIi:         binary.BigEndian.Uint64(b[0:8]),
		SPIr:         binary.BigEndian.Uint64(b[8:16]),
		NextPayload:  PayloadType(b[16]),
		MajorVersion: b[17] >> 4,
		MinorVersion: b[17] & 0x0f,
		Exchange:     ExchangeType(b[18]),
		Flags:        Flags(b[19]),
		MessageID:    binary.BigEndian.Uint32(b[20:24]),
		Length:       binary.BigEndian.Uint32(b[24:28]),
	}
	if h.MajorVersion != 2 {
		// RFC 7296 §2.5: reject higher versions with INVALID_MAJOR_VERSION.
		return h, &Error{Notify: INVALID_MAJOR_VERSION, Reason: "major version " + itoa(int(h.MajorVersion))}
	}
	if h.Length < HeaderLen {
		return h, errSyntax("IKE header length %d below %d", h.Length, HeaderLen)
	}
	return h, nil
}

// Append appends the encoded header to b, exactly as the fields say.
func (h *Header) Append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	major := h.MajorVersion
	if major == 0 {
		major = 2
	}
	b = append(b, byte(h.NextPayload), major<<4|h.MinorVersion&0x0f, byte(h.Exchange), byte(h.Flags))
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}

// IsResponse reports whether the R flag is set.
func (h *Header) IsResponse() bool { return h.Flags.Response() }
