package wire

import (
	"encoding/binary"
	"net/netip"
)

// TS is a Traffic Selector payload (RFC 7296 §3.13): TSi when Responder is
// false, TSr when true.
type TS struct {
	Responder bool
	Selectors []TrafficSelector
}

// TrafficSelector is one address-range selector (RFC 7296 §3.13.1). Start
// and End are both IPv4 (TS_IPV4_ADDR_RANGE) or both IPv6
// (TS_IPV6_ADDR_RANGE). IPProtocol 0 means any protocol; ports 0..65535
// mean any port.
type TrafficSelector struct {
	IPProtocol uint8
	StartPort  uint16
	EndPort    uint16
	Start      netip.Addr
	End        netip.Addr
}

const (
	tsHeaderLen = 8
	tsIPv4Len   = tsHeaderLen + 2*4
	tsIPv6Len   = tsHeaderLen + 2*16
)

// TSType is TS_IPV6_ADDR_RANGE if Start is an IPv6 address (including an
// IPv4-mapped one, so that a parsed IPv6 selector keeps its type),
// TS_IPV4_ADDR_RANGE otherwise.
func (s *TrafficSelector) TSType() TSType {
	if s.Start.Is6() {
		return TS_IPV6_ADDR_RANGE
	}
	return TS_IPV4_ADDR_RANGE
}

func (s *TrafficSelector) encodedLen() int {
	if s.TSType() == TS_IPV6_ADDR_RANGE {
		return tsIPv6Len
	}
	return tsIPv4Len
}

// appendAddr appends a as 4 or 16 octets without ever panicking: an address
// of the other family (or the zero Addr) is written as zeros, or unmapped.
func appendAddr(b []byte, a netip.Addr, v6 bool) []byte {
	if v6 {
		if !a.IsValid() {
			return append(b, make([]byte, 16)...)
		}
		x := a.As16()
		return append(b, x[:]...)
	}
	a = a.Unmap()
	if !a.Is4() {
		return append(b, 0, 0, 0, 0)
	}
	x := a.As4()
	return append(b, x[:]...)
}

func (t *TS) Type() PayloadType {
	if t.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

func (t *TS) BodyLen() int {
	n := 4
	for i := range t.Selectors {
		n += t.Selectors[i].encodedLen()
	}
	return n
}

func (t *TS) AppendBody(b []byte) []byte {
	b = append(b, byte(len(t.Selectors)), 0, 0, 0)
	for i := range t.Selectors {
		s := &t.Selectors[i]
		typ := s.TSType()
		b = append(b, byte(typ), s.IPProtocol)
		b = binary.BigEndian.AppendUint16(b, uint16(s.encodedLen()))
		b = binary.BigEndian.AppendUint16(b, s.StartPort)
		b = binary.BigEndian.AppendUint16(b, s.EndPort)
		v6 := typ == TS_IPV6_ADDR_RANGE
		b = appendAddr(b, s.Start, v6)
		b = appendAddr(b, s.End, v6)
	}
	return b
}

func (t *TS) check() error {
	if len(t.Selectors) > 255 {
		return errSyntax("%d traffic selectors in one payload", len(t.Selectors))
	}
	return nil
}

// ParseTS parses a TSi (responder false) or TSr body. Only
// TS_IPV4_ADDR_RANGE and TS_IPV6_ADDR_RANGE are accepted; any other TS Type,
// a Selector Length that does not match the type, or a Number of TSs that
// does not match the body is INVALID_SYNTAX.
func ParseTS(responder bool, b []byte) (*TS, error) {
	if len(b) < 4 {
		return nil, errTruncated("TS payload", 4, len(b))
	}
	t := &TS{Responder: responder}
	num := int(b[0])
	b = b[4:]
	for len(b) > 0 {
		if len(b) < tsHeaderLen {
			return nil, errTruncated("traffic selector", tsHeaderLen, len(b))
		}
		typ := TSType(b[0])
		slen := int(binary.BigEndian.Uint16(b[2:4]))
		var want int
		switch typ {
		case TS_IPV4_ADDR_RANGE:
			want = tsIPv4Len
		case TS_IPV6_ADDR_RANGE:
			want = tsIPv6Len
		default:
			return nil, errSyntax("unsupported traffic selector type %v", typ)
		}
		if slen != want || slen > len(b) {
			return nil, errSyntax("%v selector length %d, want %d (%d octets left)", typ, slen, want, len(b))
		}
		s := TrafficSelector{
			IPProtocol: b[1],
			StartPort:  binary.BigEndian.Uint16(b[4:6]),
			EndPort:    binary.BigEndian.Uint16(b[6:8]),
		}
		if typ == TS_IPV4_ADDR_RANGE {
			s.Start = netip.AddrFrom4([4]byte(b[8:12]))
			s.End = netip.AddrFrom4([4]byte(b[12:16]))
		} else {
			s.Start = netip.AddrFrom16([16]byte(b[8:24]))
			s.End = netip.AddrFrom16([16]byte(b[24:40]))
		}
		t.Selectors = append(t.Selectors, s)
		b = b[slen:]
	}
	if len(t.Selectors) != num {
		return nil, errSyntax("TS payload: Number of TSs %d but %d present", num, len(t.Selectors))
	}
	return t, nil
}

// String prints the selector compactly: a prefix when the range is one
// ("10.1.0.0/16"), "start..end" otherwise, then "[proto/port]" or
// "[proto/start-end]" when protocol or ports are restricted.
func (s TrafficSelector) String() string {
	out := s.Start.String() + ".." + s.End.String()
	if p, ok := rangePrefix(s.Start, s.End); ok {
		out = p.String()
	}
	if s.IPProtocol == 0 && s.StartPort == 0 && s.EndPort == 0xffff {
		return out
	}
	out += "[" + itoa(int(s.IPProtocol))
	switch {
	case s.StartPort == 0 && s.EndPort == 0xffff:
	case s.StartPort == s.EndPort:
		out += "/" + itoa(int(s.StartPort))
	default:
		out += "/" + itoa(int(s.StartPort)) + "-" + itoa(int(s.EndPort))
	}
	return out + "]"
}

// rangePrefix returns the prefix that covers exactly start..end, if any.
func rangePrefix(start, end netip.Addr) (netip.Prefix, bool) {
	if !start.IsValid() || !end.IsValid() || start.Is4() != end.Is4() {
		return netip.Prefix{}, false
	}
	for bits := 0; bits <= start.BitLen(); bits++ {
		p, err := start.Prefix(bits)
		if err != nil || p.Addr() != start {
			continue
		}
		if lastAddr(p) == end {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// lastAddr is the highest address in p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(a)
	return last
}
