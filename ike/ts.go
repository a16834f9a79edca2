package ike

import (
	"fmt"
	"net/netip"
)

// TrafficSelector is one entry of a TSi/TSr payload (RFC 7296 §3.13.1): an
// IP protocol (0 = any), a port range and an address range of one family.
type TrafficSelector struct {
	Proto              uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
}

// TSFromPrefix selects all traffic of a prefix, any protocol and port.
func TSFromPrefix(p netip.Prefix) TrafficSelector {
	p = p.Masked()
	start := p.Addr()
	end := lastAddr(p)
	return TrafficSelector{StartPort: 0, EndPort: 0xffff, Start: start, End: end}
}

// TSHost selects all traffic of one address.
func TSHost(a netip.Addr) TrafficSelector {
	return TrafficSelector{EndPort: 0xffff, Start: a, End: a}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Valid reports whether the selector is well formed: one family, ordered
// ranges.
func (ts TrafficSelector) Valid() bool {
	return ts.Start.IsValid() && ts.End.IsValid() && ts.Start.Is4() == ts.End.Is4() &&
		ts.Start.Compare(ts.End) <= 0 && ts.StartPort <= ts.EndPort
}

func (ts TrafficSelector) String() string {
	s := ts.Start.String() + "-" + ts.End.String()
	if ts.Proto != 0 || ts.StartPort != 0 || ts.EndPort != 0xffff {
		s += fmt.Sprintf("[%d/%d-%d]", ts.Proto, ts.StartPort, ts.EndPort)
	}
	return s
}

// intersect returns the traffic both selectors cover, if any.
func (ts TrafficSelector) intersect(o TrafficSelector) (TrafficSelector, bool) {
	if !ts.Valid() || !o.Valid() || ts.Start.Is4() != o.Start.Is4() {
		return TrafficSelector{}, false
	}
	var r TrafficSelector
	switch {
	case ts.Proto == 0:
		r.Proto = o.Proto
	case o.Proto == 0 || o.Proto == ts.Proto:
		r.Proto = ts.Proto
	default:
		return TrafficSelector{}, false
	}
	r.StartPort, r.EndPort = max(ts.StartPort, o.StartPort), min(ts.EndPort, o.EndPort)
	r.Start, r.End = ts.Start, ts.End
	if o.Start.Compare(r.Start) > 0 {
		r.Start = o.Start
	}
	if o.End.Compare(r.End) < 0 {
		r.End = o.End
	}
	if r.StartPort > r.EndPort || r.Start.Compare(r.End) > 0 {
		return TrafficSelector{}, false
	}
	return r, true
}

// contains reports whether o lies within ts.
func (ts TrafficSelector) contains(o TrafficSelector) bool {
	r, ok := ts.intersect(o)
	return ok && r == o
}

// narrow is the responder's narrowing (RFC 7296 §2.9): every part of the
// proposed selectors that the configured ones allow. The first proposed
// selector may be the packet that triggered the request; narrowing over the
// whole list keeps it when allowed. Empty means TS_UNACCEPTABLE.
func narrow(proposed, allowed []TrafficSelector) []TrafficSelector {
	var out []TrafficSelector
	for _, p := range proposed {
		for _, a := range allowed {
			if r, ok := p.intersect(a); ok && !containsTS(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

func containsTS(list []TrafficSelector, t TrafficSelector) bool {
	for _, x := range list {
		if x == t {
			return true
		}
	}
	return false
}

// subsetOf reports whether every selector in got lies within one of
// proposed: what an initiator checks on the responder's narrowed answer.
func subsetOf(got, proposed []TrafficSelector) bool {
	if len(got) == 0 {
		return false
	}
	for _, g := range got {
		ok := false
		for _, p := range proposed {
			if p.contains(g) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
