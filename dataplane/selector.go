package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// Selector is one traffic selector (RFC 7296 §3.13.1): an inclusive address
// range of one family, an IP protocol (0 = any) and an inclusive port range.
// For ICMP and ICMPv6 the "port" is Type<<8 | Code (RFC 4301 §4.4.1.1).
type Selector struct {
	Start, End         netip.Addr
	Proto              uint8
	StartPort, EndPort uint16
}

// PrefixSelector is a selector for a whole prefix, any protocol and port.
func PrefixSelector(p netip.Prefix) Selector {
	p = p.Masked()
	start := p.Addr()
	end := start.As16()
	bits := p.Bits()
	if start.Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		end[i/8] |= 1 << (7 - i%8)
	}
	e := netip.AddrFrom16(end)
	if start.Is4() {
		e = e.Unmap()
	}
	return Selector{Start: start, End: e, EndPort: 65535}
}

// MustSelector parses a prefix into a selector and panics on error; for
// tests and static configuration.
func MustSelector(prefix string) Selector {
	return PrefixSelector(netip.MustParsePrefix(prefix))
}

// Contains reports whether the selector covers address a with protocol
// proto and port port.
func (s Selector) Contains(a netip.Addr, proto uint8, port uint16) bool {
	if a.Is4() != s.Start.Is4() || a.Less(s.Start) || s.End.Less(a) {
		return false
	}
	if s.Proto != 0 && s.Proto != proto {
		return false
	}
	return port >= s.StartPort && port <= s.EndPort
}

// span is the number of addresses in the range minus one, as 128 bits.
func (s Selector) span() (hi, lo uint64) {
	a, b := s.Start.As16(), s.End.As16()
	ah, al := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	bh, bl := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	lo = bl - al
	hi = bh - ah
	if bl < al {
		hi--
	}
	return hi, lo
}

// narrower orders selectors most specific first: fewer addresses, then a
// named protocol, then fewer ports.
func (s Selector) narrower(o Selector) (less, equal bool) {
	sh, sl := s.span()
	oh, ol := o.span()
	if sh != oh {
		return sh < oh, false
	}
	if sl != ol {
		return sl < ol, false
	}
	if (s.Proto != 0) != (o.Proto != 0) {
		return s.Proto != 0, false
	}
	sp, op := s.EndPort-s.StartPort, o.EndPort-o.StartPort
	if sp != op {
		return sp < op, false
	}
	return false, true
}

func inAny(sels []Selector, a netip.Addr, proto uint8, port uint16) bool {
	for i := range sels {
		if sels[i].Contains(a, proto, port) {
			return true
		}
	}
	return false
}

// Flow is the 5-tuple of an IP packet.
type Flow struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
}

// Protocol numbers this package looks at.
const (
	protoICMP   = 1
	protoIPIP   = 4
	protoTCP    = 6
	protoUDP    = 17
	protoIPv6   = 41
	protoICMPv6 = 58
)

// parseFlow reads the 5-tuple of an IPv4 or IPv6 packet and the offset of
// its upper-layer payload. Non-first fragments have ports 0. It never panics.
func parseFlow(p []byte) (f Flow, payloadOff int, ok bool) {
	if len(p) < 1 {
		return f, 0, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return f, 0, false
		}
		ihl := int(p[0]&0xf) * 4
		if ihl < 20 || len(p) < ihl {
			return f, 0, false
		}
		f.Src = netip.AddrFrom4([4]byte(p[12:16]))
		f.Dst = netip.AddrFrom4([4]byte(p[16:20]))
		f.Proto = p[9]
		payloadOff = ihl
		if binary.BigEndian.Uint16(p[6:8])&0x1fff != 0 { // fragment offset
			return f, payloadOff, true
		}
	case 6:
		if len(p) < 40 {
			return f, 0, false
		}
		f.Src = netip.AddrFrom16([16]byte(p[8:24]))
		f.Dst = netip.AddrFrom16([16]byte(p[24:40]))
		nh, off := p[6], 40
		// Skip the extension headers that may precede the upper layer
		// (RFC 8200 §4), a bounded number of times.
		for range 8 {
			if nh != 0 && nh != 43 && nh != 60 && nh != 44 {
				break
			}
			if len(p) < off+8 {
				return f, 0, false
			}
			if nh == 44 {
				if binary.BigEndian.Uint16(p[off+2:off+4])&0xfff8 != 0 {
					f.Proto = p[off]
					return f, off + 8, true // non-first fragment
				}
				nh, off = p[off], off+8
				continue
			}
			nh, off = p[off], off+8*(int(p[off+1])+1)
		}
		if off > len(p) { // an extension header claims more than is there
			return f, 0, false
		}
		f.Proto, payloadOff = nh, off
	default:
		return f, 0, false
	}
	l4 := p[payloadOff:]
	switch f.Proto {
	case protoTCP, protoUDP, 132: // 132 = SCTP
		if len(l4) >= 4 {
			f.SrcPort = binary.BigEndian.Uint16(l4[0:2])
			f.DstPort = binary.BigEndian.Uint16(l4[2:4])
		}
	case protoICMP, protoICMPv6:
		if len(l4) >= 2 {
			f.SrcPort = uint16(l4[0])<<8 | uint16(l4[1])
			f.DstPort = f.SrcPort
		}
	}
	return f, payloadOff, true
}
