package wire

import "encoding/binary"

// SA is the Security Association payload (RFC 7296 §3.3): a list of
// proposals, each a list of transforms.
type SA struct {
	Proposals []Proposal
}

// Proposal is a Proposal substructure (RFC 7296 §3.3.1).
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte // empty in an IKE_SA_INIT proposal, 8 octets for IKE rekeys, 4 for ESP/AH
	Transforms []ProposalTransform
}

// ProposalTransform is a Transform substructure (RFC 7296 §3.3.2): the
// embedded Transform (type, ID and Key Length attribute) plus any other
// attributes, kept in the order received so they can be re-encoded.
type ProposalTransform struct {
	Transform
	Attrs []TransformAttr
}

// TransformAttr is a transform attribute other than a non-zero Key Length
// (RFC 7296 §3.3.5); a Key Length of 0, meaningless, is kept here. TV-format attributes carry a 2-octet Value (other
// lengths are truncated or zero-padded when encoding); TLV-format attributes
// carry any Value up to 65535 octets.
type TransformAttr struct {
	Type  uint16 // 15 bits; the AF bit is TV
	TV    bool
	Value []byte
}

const (
	proposalHeaderLen  = 8
	transformHeaderLen = 8
	lastSubstruc       = 0
	moreProposals      = 2 // RFC 7296 §3.3.1: "Last Substruc" of a non-last proposal
	moreTransforms     = 3 // RFC 7296 §3.3.2: "Last Substruc" of a non-last transform
	attrFormatTV       = 0x8000
)

func (*SA) Type() PayloadType { return PayloadSA }

func (s *SA) BodyLen() int {
	n := 0
	for i := range s.Proposals {
		n += s.Proposals[i].encodedLen()
	}
	return n
}

func (p *Proposal) encodedLen() int {
	n := proposalHeaderLen + len(p.SPI)
	for i := range p.Transforms {
		n += p.Transforms[i].encodedLen()
	}
	return n
}

func (t *ProposalTransform) encodedLen() int {
	n := transformHeaderLen
	if t.KeyLength != 0 {
		n += 4
	}
	for _, a := range t.Attrs {
		if a.TV {
			n += 4
		} else {
			n += 4 + len(a.Value)
		}
	}
	return n
}

func (s *SA) AppendBody(b []byte) []byte {
	for i := range s.Proposals {
		p := &s.Proposals[i]
		last := byte(moreProposals)
		if i == len(s.Proposals)-1 {
			last = lastSubstruc
		}
		b = append(b, last, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(p.encodedLen()))
		b = append(b, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		b = append(b, p.SPI...)
		for j := range p.Transforms {
			t := &p.Transforms[j]
			last := byte(moreTransforms)
			if j == len(p.Transforms)-1 {
				last = lastSubstruc
			}
			b = append(b, last, 0)
			b = binary.BigEndian.AppendUint16(b, uint16(t.encodedLen()))
			b = append(b, byte(t.Type), 0)
			b = binary.BigEndian.AppendUint16(b, t.ID)
			if t.KeyLength != 0 {
				b = binary.BigEndian.AppendUint16(b, attrFormatTV|AttrKeyLength)
				b = binary.BigEndian.AppendUint16(b, t.KeyLength)
			}
			for _, a := range t.Attrs {
				if a.TV {
					var v [2]byte
					copy(v[:], a.Value)
					b = binary.BigEndian.AppendUint16(b, attrFormatTV|a.Type&0x7fff)
					b = append(b, v[:]...)
					continue
				}
				b = binary.BigEndian.AppendUint16(b, a.Type&0x7fff)
				b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
				b = append(b, a.Value...)
			}
		}
	}
	return b
}

// ParseSA parses an SA payload body. It checks every length, that the Last
// Substruc fields agree with the structure, that Num Transforms matches, and
// that Key Length, if present, is a single TV attribute (RFC 7296 §3.3.5).
func ParseSA(b []byte) (*SA, error) {
	s := &SA{}
	if len(b) == 0 {
		return nil, errSyntax("SA payload without proposals")
	}
	for len(b) > 0 {
		if len(b) < proposalHeaderLen {
			return nil, errTruncated("SA proposal header", proposalHeaderLen, len(b))
		}
		plen := int(binary.BigEndian.Uint16(b[2:4]))
		if plen < proposalHeaderLen || plen > len(b) {
			return nil, errSyntax("SA proposal length %d out of range (%d octets left)", plen, len(b))
		}
		switch {
		case b[0] == lastSubstruc && plen != len(b):
			return nil, errSyntax("SA proposal marked last but %d octets follow", len(b)-plen)
		case b[0] == moreProposals && plen == len(b):
			return nil, errSyntax("SA proposal marked not last but nothing follows")
		case b[0] != lastSubstruc && b[0] != moreProposals:
			return nil, errSyntax("SA proposal Last Substruc %d", b[0])
		}
		p, err := parseProposal(b[:plen])
		if err != nil {
			return nil, err
		}
		s.Proposals = append(s.Proposals, p)
		b = b[plen:]
	}
	return s, nil
}

func parseProposal(b []byte) (Proposal, error) {
	p := Proposal{Number: b[4], Protocol: ProtocolID(b[5])}
	spiSize, numT := int(b[6]), int(b[7])
	b = b[proposalHeaderLen:]
	if spiSize > len(b) {
		return p, errTruncated("SA proposal SPI", spiSize, len(b))
	}
	if spiSize > 0 {
		p.SPI = b[:spiSize]
	}
	b = b[spiSize:]
	for len(b) > 0 {
		if len(b) < transformHeaderLen {
			return p, errTruncated("SA transform header", transformHeaderLen, len(b))
		}
		tlen := int(binary.BigEndian.Uint16(b[2:4]))
		if tlen < transformHeaderLen || tlen > len(b) {
			return p, errSyntax("SA transform length %d out of range (%d octets left)", tlen, len(b))
		}
		switch {
		case b[0] == lastSubstruc && tlen != len(b):
			return p, errSyntax("SA transform marked last but %d octets follow", len(b)-tlen)
		case b[0] == moreTransforms && tlen == len(b):
			return p, errSyntax("SA transform marked not last but nothing follows")
		case b[0] != lastSubstruc && b[0] != moreTransforms:
			return p, errSyntax("SA transform Last Substruc %d", b[0])
		}
		t, err := parseTransform(b[:tlen])
		if err != nil {
			return p, err
		}
		p.Transforms = append(p.Transforms, t)
		b = b[tlen:]
	}
	if len(p.Transforms) != numT {
		return p, errSyntax("SA proposal %d: Num Transforms %d but %d present", p.Number, numT, len(p.Transforms))
	}
	return p, nil
}

func parseTransform(b []byte) (ProposalTransform, error) {
	t := ProposalTransform{Transform: Transform{Type: TransformType(b[4]), ID: binary.BigEndian.Uint16(b[6:8])}}
	haveKeyLen := false
	b = b[transformHeaderLen:]
	for len(b) > 0 {
		if len(b) < 4 {
			return t, errTruncated("transform attribute", 4, len(b))
		}
		af := binary.BigEndian.Uint16(b[0:2])
		typ := af & 0x7fff
		if af&attrFormatTV != 0 {
			if typ == AttrKeyLength {
				if haveKeyLen {
					return t, errSyntax("transform %v: duplicate Key Length attribute", t.Transform)
				}
				haveKeyLen = true
				t.KeyLength = binary.BigEndian.Uint16(b[2:4])
				if t.KeyLength == 0 {
					// KeyLength 0 means "absent"; keep an explicit zero as a
					// raw attribute so the transform re-encodes unchanged.
					t.Attrs = append(t.Attrs, TransformAttr{Type: typ, TV: true, Value: b[2:4]})
				}
			} else {
				t.Attrs = append(t.Attrs, TransformAttr{Type: typ, TV: true, Value: b[2:4]})
			}
			b = b[4:]
			continue
		}
		if typ == AttrKeyLength {
			return t, errSyntax("transform %v: Key Length attribute in TLV format", t.Transform)
		}
		alen := int(binary.BigEndian.Uint16(b[2:4]))
		if 4+alen > len(b) {
			return t, errTruncated("transform attribute value", alen, len(b)-4)
		}
		t.Attrs = append(t.Attrs, TransformAttr{Type: typ, Value: orNil(b[4 : 4+alen])})
		b = b[4+alen:]
	}
	return t, nil
}

// check reports fields that do not fit their encoding.
func (s *SA) check() error {
	for i := range s.Proposals {
		p := &s.Proposals[i]
		if len(p.SPI) > 255 || len(p.Transforms) > 255 {
			return errSyntax("SA proposal %d: %d-octet SPI, %d transforms: too many", p.Number, len(p.SPI), len(p.Transforms))
		}
		for j := range p.Transforms {
			for _, a := range p.Transforms[j].Attrs {
				if !a.TV && len(a.Value) > maxPayloadLen {
					return errSyntax("SA transform attribute of %d octets", len(a.Value))
				}
			}
		}
	}
	return nil
}
