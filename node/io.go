package node

import (
	"bytes"
	"net"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// maxDatagram bounds what the IKE socket reader accepts (RFC 7296 §2 asks
// for at least 1280 octets; fragmentation keeps messages small).
const maxDatagram = 65535

// readIKE is one IKE socket's reader goroutine.
func (n *Node) readIKE(c *net.UDPConn) {
	defer n.wg.Done()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, maxDatagram)
	for {
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-n.quit:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			n.log.Debug("node: IKE socket closed", "addr", local, "err", err)
			return
		}
		n.deliver(bytes.Clone(buf[:k]), from, local)
	}
}

// onNATTIKE receives IKE messages from the NAT-T bind (marker removed).
func (n *Node) onNATTIKE(msg []byte, from netip.AddrPort) {
	n.deliver(bytes.Clone(msg), from, netip.AddrPortFrom(netip.IPv4Unspecified(), n.nattPort))
}

// deliver queues a datagram for the loop, dropping it when the loop is
// overloaded (IKE retransmits) or closed.
func (n *Node) deliver(b []byte, from, local netip.AddrPort) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	select {
	case n.in <- input{d: ike.Datagram{Src: from, Dst: local, Data: b}}:
	case <-n.quit:
	default:
		n.stats.add(&n.stats.queueDrops, 1)
	}
}

// keepaliveInterval is how often an SA behind a NAT sends a NAT-keepalive
// (RFC 3948 §4 suggests 20 s).
const keepaliveInterval = 20 * time.Second

// keepalives sends a NAT-keepalive (one 0xFF octet, RFC 3948 §2.3) from
// the NAT-T socket for every IKE SA whose local side is behind a NAT, so
// the NAT keeps the mapping ESP and IKE use.
func (n *Node) keepalives() {
	for _, g := range n.gens {
		g.ep.Range(func(sa *ike.SA) bool {
			if sa.Established() && sa.BehindNAT() {
				_, remote := sa.Addrs()
				if err := n.bind.SendKeepalive(remote); err != nil {
					n.log.Debug("node: keepalive", "to", remote, "err", err)
				}
			}
			return true
		})
	}
}

// handle runs a received datagram through the generation owning its SA.
// A socket bound to a wildcard address does not say which address the
// datagram arrived on; the connection towards its source says it.
func (n *Node) handle(now time.Time, d ike.Datagram) {
	if d.Dst.Addr().IsUnspecified() {
		d.Dst = netip.AddrPortFrom(n.localFor(d.Src.Addr()), d.Dst.Port())
	}
	g := n.route(d.Data)
	g.ep.HandleDatagram(now, d.Src, d.Dst, d.Data, &n.out)
	n.flush(now)
}

// localFor guesses our address towards peer: the local address of a
// connection to peer, else of any connection of its family, else loopback
// for a loopback peer.
func (n *Node) localFor(peer netip.Addr) netip.Addr {
	var fallback netip.Addr
	for _, c := range n.current().conns {
		a := c.Local.Addr()
		if !a.IsValid() || a.Is4() != peer.Is4() {
			continue
		}
		if c.Remote.Addr() == peer {
			return a
		}
		if !fallback.IsValid() {
			fallback = a
		}
	}
	if fallback.IsValid() {
		return fallback
	}
	if peer.IsLoopback() {
		return peer
	}
	if peer.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// route picks the generation whose Endpoint holds the SA of a message: by
// the SPI this side chose (SPIr if the sender is the original initiator,
// RFC 7296 §3.1), else the newest generation, which also takes every new
// IKE_SA_INIT.
func (n *Node) route(b []byte) *gen {
	h, err := wire.ParseHeader(b)
	if err != nil || len(n.gens) == 1 {
		return n.current()
	}
	spi := h.SPIi
	if h.Flags.Initiator() {
		spi = h.SPIr
	}
	for _, g := range n.gens {
		if spi != 0 && g.ep.SA(spi) != nil {
			return g
		}
	}
	return n.current()
}

// flush applies what the core produced to the data plane, then sends its
// datagrams and publishes its events. The operations go first: a pair we
// answer for is installed before the answer leaves (the peer may send on
// it at once), and we stop sending on a pair (OpDeactivate, after any new
// pair's install) before our Delete of it leaves, as the peer may drop it
// on reading the Delete.
func (n *Node) flush(now time.Time) {
	// A dead peer's trap is held before its pairs go, so a policy the
	// trap shares with them is never missing, not even for a moment (under
	// XFRM a packet could leave in the clear).
	for _, ev := range n.out.Events {
		if ev.Kind == ike.EventPeerDead {
			n.dpdTrap(ev)
		}
	}
	for i := range n.out.Ops {
		n.apply(now, &n.out.Ops[i])
	}
	for _, d := range n.out.Datagrams {
		n.send(d)
	}
	for _, ev := range n.out.Events {
		n.onEvent(now, ev)
	}
	n.out.Reset()
}

// send writes an IKE datagram: from the NAT-T bind (which adds the non-ESP
// marker, RFC 3948 §2.2) when its source port is ours, else from the IKE
// socket of its source address or family.
func (n *Node) send(d ike.Datagram) {
	var err error
	if d.Src.Port() == n.nattPort {
		err = n.bind.SendIKE(d.Data, d.Dst)
	} else if c := n.socketFor(d.Src.Addr(), d.Dst.Addr()); c != nil {
		_, err = c.WriteToUDPAddrPort(d.Data, d.Dst)
	}
	if err != nil {
		n.log.Debug("node: send", "to", d.Dst, "err", err)
	}
}

func (n *Node) socketFor(src, dst netip.Addr) *net.UDPConn {
	var fam *net.UDPConn
	for _, c := range n.ikeSocks {
		a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		if a == src {
			return c
		}
		if fam == nil && (a.Is4() == dst.Is4() || a.Is6() && a.IsUnspecified()) {
			fam = c
		}
	}
	return fam
}
