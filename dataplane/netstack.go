package dataplane

import (
	"fmt"
	"net/netip"

	"golang.zx2c4.com/wireguard/tun/netstack"
)

// AttachNetstack creates a gVisor userspace TCP/IP stack owning addrs (the
// protected host's inner addresses) and attaches it like AttachDevice. It
// needs no root: the demo, tests and Go programs embedding petrel use it to
// dial and listen through ESP with the returned Net (DialContextTCP,
// ListenTCP, DialPingAddr, ...). The stack routes everything to the tunnel.
func (u *Userspace) AttachNetstack(addrs []netip.Addr, mtu int, ifID uint32) (*netstack.Net, error) {
	if mtu <= 0 || mtu > MaxPacket {
		return nil, fmt.Errorf("dataplane: netstack MTU %d outside 1..%d", mtu, MaxPacket)
	}
	dev, tnet, err := netstack.CreateNetTUN(addrs, nil, mtu)
	if err != nil {
		return nil, fmt.Errorf("dataplane: netstack: %w", err)
	}
	if err := u.AttachDevice(dev, ifID); err != nil {
		dev.Close()
		return nil, err
	}
	return tnet, nil
}
