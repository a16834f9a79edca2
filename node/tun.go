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
// Route-based children (route.go) have their own devices and are not
// routed here; under the XFRM backend no TUN is needed and none is made.
// policyTUN is the policy-based TUN's name when the one asked for is taken.
const policyTUN = "petrel0"

func (n *Node) AttachTUN(name string, mtu int) error {
	if n.us == nil {
		n.dpLog.Info("node: no TUN device: the kernel's XFRM protects policy-based traffic", "backend", n.Backend())
		return nil
	}
	var taken bool
	_ = n.do(func(time.Time) { taken = n.isRouteIface(name) })
	if taken {
		// The daemon names its policy-based TUN after the first child
		// with an interface; that one is the child's own device now.
		n.dpLog.Info("node: TUN name belongs to a route-based child; policy-based TUN is "+policyTUN, "dev", name)
		name = policyTUN
	}
	dev, err := dataplane.NewTUN(name, mtu)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.us.AttachDevice(dev, 0); err != nil {
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
		for cname, c := range n.current().conns {
			for _, ch := range c.Children {
				if n.routeChild(cname, ch.Name) != nil {
					continue // routed by the admin into its own device
				}
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
