package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// RawBind carries plain ESP (IP protocol 50, RFC 4303 §2) on raw IPv4 and
// IPv6 sockets, for peers without NAT that do not use UDP encapsulation.
// It needs CAP_NET_RAW. It moves one packet per system call (no batching):
// ESP in UDP on port 4500 is the fast path.
type RawBind struct {
	conns []*net.IPConn
}

// NewRawBind opens the raw ESP sockets; a family the host lacks is skipped.
func NewRawBind() (*RawBind, error) {
	var b RawBind
	var errs []error
	for _, network := range []string{"ip4:50", "ip6:50"} {
		c, err := net.ListenIP(network, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.conns = append(b.conns, c)
	}
	if len(b.conns) == 0 {
		return nil, fmt.Errorf("dataplane: raw ESP sockets: %w", errors.Join(errs...))
	}
	return &b, nil
}

// Send implements Bind; the port of ep is ignored.
func (b *RawBind) Send(bufs [][]byte, ep netip.AddrPort) error {
	dst := &net.IPAddr{IP: ep.Addr().AsSlice()}
	for _, c := range b.conns {
		if la, ok := c.LocalAddr().(*net.IPAddr); ok && (la.IP.To4() != nil || la.IP == nil) != ep.Addr().Unmap().Is4() {
			continue
		}
		for _, p := range bufs {
			if _, err := c.WriteToIP(p, dst); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("dataplane: no raw ESP socket for %v", ep.Addr())
}

// ReceiveFuncs implements Bind. The kernel strips the outer IPv4 header;
// each call returns one packet.
func (b *RawBind) ReceiveFuncs() []ReceiveFunc {
	var fns []ReceiveFunc
	for _, c := range b.conns {
		fns = append(fns, func(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
			for {
				n, from, err := c.ReadFromIP(bufs[0])
				if err != nil {
					return 0, err
				}
				if n < 8 {
					continue
				}
				a, _ := netip.AddrFromSlice(from.IP)
				sizes[0], eps[0] = n, netip.AddrPortFrom(a.Unmap(), 0)
				return 1, nil
			}
		})
	}
	return fns
}

// BatchSize implements Bind.
func (b *RawBind) BatchSize() int { return 1 }

// Close implements Bind.
func (b *RawBind) Close() error {
	for _, c := range b.conns {
		c.Close()
	}
	return nil
}

// MultiBind sends through UDP when the destination has a port (NAT-T,
// RFC 3948) and through Raw otherwise, and receives from both.
type MultiBind struct {
	UDP Bind
	Raw Bind
}

// Send implements Bind.
func (m *MultiBind) Send(bufs [][]byte, ep netip.AddrPort) error {
	if ep.Port() == 0 {
		return m.Raw.Send(bufs, ep)
	}
	return m.UDP.Send(bufs, ep)
}

// ReceiveFuncs implements Bind.
func (m *MultiBind) ReceiveFuncs() []ReceiveFunc {
	return append(m.UDP.ReceiveFuncs(), m.Raw.ReceiveFuncs()...)
}

// BatchSize implements Bind.
func (m *MultiBind) BatchSize() int { return max(m.UDP.BatchSize(), m.Raw.BatchSize()) }

// Close implements Bind.
func (m *MultiBind) Close() error {
	return errors.Join(m.UDP.Close(), m.Raw.Close())
}
