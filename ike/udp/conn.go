package udp

import (
	"net"
	"net/netip"
)

// PacketConn is the part of *net.UDPConn the Server uses. Tests wrap it to
// drop, duplicate and reorder datagrams.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// socket is one bound UDP socket.
type socket struct {
	conn  PacketConn
	local netip.AddrPort
	natt  bool // IKE carries the non-ESP marker here
}

func listen(ap netip.AddrPort) (*net.UDPConn, netip.AddrPort, error) {
	network := "udp4"
	if ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c, netip.AddrPortFrom(local.Addr().Unmap(), local.Port()), nil
}

// nonESPMarker precedes IKE messages on the NAT-T port (RFC 3948 §2.2).
var nonESPMarker = [4]byte{}

// classify sorts a datagram received on the NAT-T port (RFC 3948 §2.2,
// §2.3): an IKE message after the marker, a keepalive, or ESP.
func classify(b []byte) (kind int, ike []byte) {
	switch {
	case len(b) == 1 && b[0] == 0xff:
		return kindKeepalive, nil
	case len(b) >= 4 && b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0:
		return kindIKE, b[4:]
	case len(b) >= 8:
		return kindESP, nil // SPI is never zero (RFC 4303 §2.1)
	}
	return kindJunk, nil
}

const (
	kindJunk = iota
	kindIKE
	kindESP
	kindKeepalive
)
