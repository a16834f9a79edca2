package node

import (
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/petrel-vpn/petrel/dataplane"
)

// AttachTUN creates the TUN interface name (root or CAP_NET_ADMIN), attaches
// it to the data plane (policy-based: packets pick their SA by policy),
// brings it up and routes every configured child's remote selectors that
// are prefixes through it, so that the protected hosts' traffic reaches it.
func (n *Node) AttachTUN(name string, mtu int) error {
	dev, err := dataplane.NewTUN(name, mtu)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.dp.AttachDevice(dev, 0); err != nil {
		dev.Close()
		return fmt.Errorf("node: %w", err)
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("node: TUN %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("node: TUN %s up: %w", name, err)
	}
	var routes []string
	_ = n.do(func(time.Time) {
		for _, c := range n.current().conns {
			for _, ch := range c.Children {
				for _, t := range ch.RemoteTS {
					if s := tsString(t); t.Proto == 0 && t.StartPort == 0 && t.EndPort == 0xffff {
						routes = append(routes, s)
					}
				}
			}
		}
	})
	for _, r := range routes {
		_, dst, err := net.ParseCIDR(r)
		if err != nil {
			continue // a range that is no prefix: route it yourself
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst}); err != nil {
			return fmt.Errorf("node: route %s dev %s: %w", r, name, err)
		}
		n.dpLog.Info("node: route", "dst", r, "dev", name)
	}
	return nil
}
