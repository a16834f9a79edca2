package dataplane

import (
	"fmt"

	"golang.zx2c4.com/wireguard/tun"
)

// NewTUN creates (or opens) the TUN interface name with the given MTU, for
// AttachDevice. On Linux wireguard-go's TUN driver turns on the kernel's
// virtio-net offloads (TSO/USO on read, GRO on write) when it offers them;
// BatchSize then reports more than 1. Bringing the interface up, its
// addresses and routes are the caller's (the daemon's) job.
func NewTUN(name string, mtu int) (tun.Device, error) {
	if mtu <= 0 || mtu > MaxPacket {
		return nil, fmt.Errorf("dataplane: TUN MTU %d outside 1..%d", mtu, MaxPacket)
	}
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("dataplane: TUN %q: %w", name, err)
	}
	return dev, nil
}
