package config

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// TrafficSelector is one local_ts/remote_ts entry (RFC 7296 §3.13.1): an
// address range of one family, or Dynamic for "the IKE address of this
// side", with an IP protocol (0 = any) and a port range.
type TrafficSelector struct {
	Dynamic            bool
	Start, End         netip.Addr
	Proto              uint8
	StartPort, EndPort uint16
}

// tsExpected is what a selector may look like, for error messages.
const tsExpected = "expected a CIDR like 10.1.0.0/24, an address, a range 10.1.0.1-10.1.0.9 or dynamic, optionally followed by [proto/port] like [tcp/443]"

var protoNames = map[string]uint8{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132, "gre": 47, "esp": 50}

// ParseTS parses strongSwan's traffic selector syntax:
// 10.1.0.0/24, 10.1.0.5, 10.1.0.1-10.1.0.9 or dynamic, each optionally
// followed by [proto], [proto/port] or [proto/lo-hi].
func ParseTS(s string) (TrafficSelector, error) {
	ts := TrafficSelector{EndPort: 0xffff}
	addr, pp, hasPP := strings.Cut(s, "[")
	if hasPP {
		var ok bool
		if pp, ok = strings.CutSuffix(pp, "]"); !ok {
			return ts, errors.New("missing ] after protocol/port")
		}
		if err := ts.parseProtoPort(pp); err != nil {
			return ts, err
		}
	}
	addr = strings.TrimSpace(addr)
	switch {
	case addr == "dynamic" || addr == "%dynamic":
		ts.Dynamic = true
	case strings.Contains(addr, "/"):
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return ts, errors.New("not a valid CIDR")
		}
		if p.Masked() != p {
			return ts, errors.New("host bits set (the network is " + p.Masked().String() + ")")
		}
		ts.Start, ts.End = p.Addr(), lastAddr(p)
	case strings.Contains(addr, "-"):
		lo, hi, _ := strings.Cut(addr, "-")
		a, err1 := netip.ParseAddr(strings.TrimSpace(lo))
		b, err2 := netip.ParseAddr(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil {
			return ts, errors.New("not a valid address range")
		}
		if a.Is4() != b.Is4() {
			return ts, errors.New("range mixes IPv4 and IPv6")
		}
		if a.Compare(b) > 0 {
			return ts, errors.New("range start is above its end")
		}
		ts.Start, ts.End = a, b
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return ts, errors.New("not an address")
		}
		ts.Start, ts.End = a, a
	}
	if ts.Start.Zone() != "" {
		return ts, errors.New("zones are not allowed")
	}
	return ts, nil
}

func (ts *TrafficSelector) parseProtoPort(pp string) error {
	proto, port, hasPort := strings.Cut(pp, "/")
	proto = strings.ToLower(strings.TrimSpace(proto))
	switch {
	case proto == "" || proto == "any" || proto == "%any":
	case protoNames[proto] != 0:
		ts.Proto = protoNames[proto]
	default:
		n, err := strconv.ParseUint(proto, 10, 8)
		if err != nil {
			return errors.New(`unknown protocol "` + proto + `" (tcp, udp, icmp, icmpv6, sctp, gre or a number)`)
		}
		ts.Proto = uint8(n)
	}
	if !hasPort || port == "" || port == "any" || port == "%any" {
		return nil
	}
	lo, hi, isRange := strings.Cut(port, "-")
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || a > b {
		return errors.New(`bad port "` + port + `" (a number or lo-hi from 0 to 65535)`)
	}
	if ts.Proto == 0 {
		return errors.New("a port needs a protocol, like [tcp/" + port + "]")
	}
	ts.StartPort, ts.EndPort = uint16(a), uint16(b)
	return nil
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Resolve replaces a dynamic selector by the host address a (the IKE
// address of its side); ok is false when a is %any.
func (ts TrafficSelector) Resolve(a netip.Addr) (TrafficSelector, bool) {
	if !ts.Dynamic {
		return ts, true
	}
	if !a.IsValid() {
		return ts, false
	}
	ts.Dynamic, ts.Start, ts.End = false, a.Unmap(), a.Unmap()
	return ts, true
}

func (ts TrafficSelector) String() string {
	s := "dynamic"
	if !ts.Dynamic {
		s = ts.Start.String()
		if ts.End != ts.Start {
			s += "-" + ts.End.String()
			for bits := 0; bits <= ts.Start.BitLen(); bits++ {
				if p := netip.PrefixFrom(ts.Start, bits); p.Masked() == p && lastAddr(p) == ts.End {
					s = p.String()
					break
				}
			}
		}
	}
	if ts.Proto != 0 {
		s += "[" + strconv.Itoa(int(ts.Proto))
		if ts.StartPort != 0 || ts.EndPort != 0xffff {
			s += "/" + strconv.Itoa(int(ts.StartPort)) + "-" + strconv.Itoa(int(ts.EndPort))
		}
		s += "]"
	}
	return s
}
