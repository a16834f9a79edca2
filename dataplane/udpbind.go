package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/petrel-vpn/petrel/esp"
)

// UDPBind is the NAT-T socket pair (IPv4 and IPv6, one UDP port, normally
// 4500) shared by IKE and ESP (RFC 3948). On Linux it moves batches with
// recvmmsg/sendmmsg, sends runs of equal-sized packets with UDP GSO, and
// allocates nothing per datagram; elsewhere it uses wireguard-go's
// conn.StdNetBind. Received datagrams are demultiplexed by the non-ESP
// marker (RFC 3948 §2.2): IKE messages go to the IKE callback with the
// marker removed, NAT-keepalives (§2.3) are dropped, ESP goes to the data
// plane.
type UDPBind struct {
	t     udpTransport
	onIKE func(msg []byte, from netip.AddrPort)
}

// udpTransport is the socket layer under UDPBind.
type udpTransport interface {
	send(bufs [][]byte, ep netip.AddrPort) error
	receiveFuncs() []ReceiveFunc
	batchSize() int
	port() uint16
	close() error
}

// encapTransport is a socket layer whose sockets can hand ESP in UDP to
// the kernel (Linux recvmmsg sockets; wireguard-go's StdNetBind does not
// expose its sockets).
type encapTransport interface {
	setUDPEncap() error
	udpEncap() ([]int, error)
}

// NewUDPBind opens the socket on port (0 picks one). onIKE, if non-nil,
// receives IKE messages (without the non-ESP marker) from a receive loop;
// msg is only valid during the call.
func NewUDPBind(port uint16, onIKE func(msg []byte, from netip.AddrPort)) (*UDPBind, error) {
	return NewUDPBindOn(nil, port, onIKE)
}

// NewUDPBindOn is NewUDPBind on the daemon's listen addresses: per address
// family, a single specific address is bound (so IKE moved to the NAT-T
// port and ESP in UDP leave from the address IKE_SA_INIT used, not from one
// the kernel picks by route); an unspecified address, several addresses
// of the family, or none listed (nil addrs) bind the wildcard, and a family
// absent from a non-empty list gets no socket. The PETREL_UDP=std transport
// always binds the wildcard.
func NewUDPBindOn(addrs []netip.Addr, port uint16, onIKE func(msg []byte, from netip.AddrPort)) (*UDPBind, error) {
	t, err := newUDPTransport(bindAddrs(addrs), port)
	if err != nil {
		return nil, fmt.Errorf("dataplane: UDP bind on port %d: %w", port, err)
	}
	return &UDPBind{t: t, onIKE: onIKE}, nil
}

// familyAddrs is what a UDP transport binds for each address family: a
// valid address (possibly unspecified) opens that family's socket there.
type familyAddrs struct{ v4, v6 netip.Addr }

func bindAddrs(addrs []netip.Addr) familyAddrs {
	if len(addrs) == 0 {
		return familyAddrs{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	var f familyAddrs
	var n4, n6 int
	for _, a := range addrs {
		if a.Is4() || a.Is4In6() {
			f.v4, n4 = a.Unmap(), n4+1
		} else {
			f.v6, n6 = a, n6+1
		}
	}
	if n4 > 1 {
		f.v4 = netip.IPv4Unspecified()
	}
	if n6 > 1 {
		f.v6 = netip.IPv6Unspecified()
	}
	return f
}

// Port is the bound UDP port.
func (b *UDPBind) Port() uint16 { return b.t.port() }

// EnableKernelDecap sets UDP_ENCAP_ESPINUDP (RFC 3948) on the bind's
// sockets, for the Linux XFRM backend: from then on the kernel takes ESP
// in UDP off them and decapsulates it with its XFRM states, while IKE
// (non-ESP marker) still reaches ReceiveFuncs and NAT-keepalives are eaten
// by the kernel. Only for XFRM: under a userspace data plane the kernel
// would swallow the ESP packets that the data plane must read (and, having
// no state for them, drop them). It cannot be undone. ErrNotSupport where
// the sockets are not reachable (non-Linux, PETREL_UDP=std).
func (b *UDPBind) EnableKernelDecap() error {
	et, ok := b.t.(encapTransport)
	if !ok {
		return fmt.Errorf("%w: UDP_ENCAP on this UDP transport", ErrNotSupport)
	}
	return et.setUDPEncap()
}

// EncapTypes reads UDP_ENCAP back from each socket (IPv4, then IPv6 when
// open): 0 for none, 2 (UDP_ENCAP_ESPINUDP) after EnableKernelDecap.
func (b *UDPBind) EncapTypes() ([]int, error) {
	et, ok := b.t.(encapTransport)
	if !ok {
		return nil, fmt.Errorf("%w: UDP_ENCAP on this UDP transport", ErrNotSupport)
	}
	return et.udpEncap()
}

// Send implements Bind: ESP in UDP to ep (RFC 3948 §2.1). Raw ESP (port
// 0) needs RawBind.
func (b *UDPBind) Send(bufs [][]byte, ep netip.AddrPort) error {
	if ep.Port() == 0 {
		return fmt.Errorf("%w: raw ESP (IP protocol 50) on a UDP bind", ErrNotSupport)
	}
	return b.t.send(bufs, ep)
}

// SendIKE sends an IKE message on the NAT-T port, prefixed by the non-ESP
// marker (RFC 3948 §2.2, RFC 7296 §2.23).
func (b *UDPBind) SendIKE(msg []byte, to netip.AddrPort) error {
	buf := make([]byte, 4+len(msg))
	copy(buf[4:], msg)
	return b.t.send([][]byte{buf}, to)
}

// SendKeepalive sends a NAT-keepalive (RFC 3948 §2.3, §4).
func (b *UDPBind) SendKeepalive(to netip.AddrPort) error {
	return b.t.send([][]byte{{esp.KeepaliveByte}}, to)
}

// BatchSize implements Bind.
func (b *UDPBind) BatchSize() int { return b.t.batchSize() }

// Close implements Bind.
func (b *UDPBind) Close() error { return b.t.close() }

// ReceiveFuncs implements Bind: each wraps one socket's receive function
// with the RFC 3948 §2.2 demultiplexer.
func (b *UDPBind) ReceiveFuncs() []ReceiveFunc {
	var out []ReceiveFunc
	for _, fn := range b.t.receiveFuncs() {
		out = append(out, func(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
			for {
				n, err := fn(bufs, sizes, from)
				if err != nil {
					return 0, err
				}
				if k := b.demux(bufs[:n], sizes, from); k > 0 {
					return k, nil
				}
			}
		})
	}
	return out
}

// demux keeps the ESP packets of a received batch, moved to the front, and
// hands IKE messages to the callback.
func (b *UDPBind) demux(bufs [][]byte, sizes []int, from []netip.AddrPort) int {
	k := 0
	for i := range bufs {
		pkt := bufs[i][:sizes[i]]
		switch esp.ClassifyUDP(pkt) {
		case esp.UDPESP:
			if k != i {
				sizes[k] = copy(bufs[k], pkt)
				from[k] = from[i]
			}
			k++
		case esp.UDPIKE:
			if b.onIKE != nil {
				b.onIKE(pkt[4:], from[i])
			}
		}
	}
	return k
}
