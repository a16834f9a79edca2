package node

import (
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/petrel-vpn/petrel/dataplane"
)

// Route-based children.
//
// A child with `interface: NAME` gets its own device, like a Cisco VTI:
// a TUN device NAME attached to the userspace data plane, or an XFRM
// interface NAME under the kernel backend. Its Child SAs carry the
// device's if_id and no policies; whatever the admin routes into NAME is
// sealed with the child's newest outbound SA, and what comes in on its
// SAs leaves through NAME once the inner addresses pass the negotiated
// traffic selectors (else it is dropped and counted as a policy drop).
// The if_id belongs to the device: re-established and rekeyed SAs of the
// child reuse it. The device is created when the connection is loaded
// (New, Reload) and removed when the connection goes away or changes its
// interface, and at Close.
//
// Under XFRM the device is an XFRM interface (CONFIG_XFRM_INTERFACE) made
// on the backend's netlink handle, so in its network namespace; the node
// installs no policies for the child, and the backend adds the if_id's own
// policies with the outbound SA (dataplane/xfrm_route_linux.go: out
// catch-all, in/fwd from the selectors), which only match traffic of that
// interface. Where the device cannot be made (no such kernel module, name
// taken) the error is logged and the child runs policy-based until a
// reload makes the device.

// routeMTU is the MTU of route-based TUN devices, as the daemon's petrel0.
const routeMTU = 1400

type routeDev struct {
	name  string
	ifID  uint32
	close func() error
}

// routeChild returns the route-based device of a connection's child, or
// nil for a policy-based one.
func (n *Node) routeChild(conn, child string) *routeDev {
	return n.routes[conn+"/"+child]
}

// isRouteIface says whether name is the device of a route-based child.
func (n *Node) isRouteIface(name string) bool {
	for _, rd := range n.routes {
		if rd.name == name {
			return true
		}
	}
	return false
}

// applyRoutes creates the devices of the current configuration's
// route-based children and removes those no longer configured. Runs on
// the loop.
func (n *Node) applyRoutes() {
	want := map[string]string{}
	for name, cc := range n.current().cfg {
		for _, ch := range cc.Children {
			if ch.Interface != "" {
				want[name+"/"+ch.Name] = ch.Interface
			}
		}
	}
	for k, rd := range n.routes {
		if want[k] != rd.name {
			n.removeRoute(k, rd)
		}
	}
	for k, name := range want {
		if n.routes[k] != nil {
			continue
		}
		if n.kind == dataplane.KindNetstack {
			n.dpLog.Warn("node: route-based child needs a TUN or XFRM device; dataplane netstack makes none", "child", k, "dev", name)
			continue
		}
		n.nextIfID++
		rd, err := n.addRouteDev(name, n.nextIfID)
		if err != nil {
			n.dpLog.Error("node: route-based device; the child runs policy-based until a reload makes it", "child", k, "dev", name, "err", err)
			continue
		}
		n.routes[k] = rd
		n.dpLog.Info("node: route-based device up", "child", k, "dev", name, "if_id", rd.ifID, "backend", n.Backend())
	}
}

func (n *Node) removeRoute(k string, rd *routeDev) {
	delete(n.routes, k)
	if err := rd.close(); err != nil {
		n.dpLog.Error("node: remove route-based device", "child", k, "dev", rd.name, "err", err)
		return
	}
	n.dpLog.Info("node: route-based device removed", "child", k, "dev", rd.name, "if_id", rd.ifID)
}

// addRouteDev creates and brings up the device of a route-based child.
func (n *Node) addRouteDev(name string, ifID uint32) (*routeDev, error) {
	if n.xfrm != nil {
		cl, err := n.addXFRMInterface(name, ifID)
		if err != nil {
			return nil, err
		}
		return &routeDev{name: name, ifID: ifID, close: cl}, nil
	}
	dev, err := dataplane.NewTUN(name, routeMTU)
	if err != nil {
		return nil, err
	}
	if err := n.us.AttachDevice(dev, ifID); err != nil {
		dev.Close()
		return nil, err
	}
	// Closing the TUN ends the data plane's loops on it and, the device
	// not being persistent, removes the interface.
	rd := &routeDev{name: name, ifID: ifID, close: dev.Close}
	link, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetUp(link)
	}
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("TUN %s up: %w", name, err)
	}
	return rd, nil
}

// closeRoutes removes every route-based device (Close).
func (n *Node) closeRoutes() {
	for k, rd := range n.routes {
		n.removeRoute(k, rd)
	}
}

// routeIfName is the device of a route-based child, "" for a policy-based
// one; for the session listing (runs on the loop, like Sessions).
func (n *Node) routeIfName(conn, child string) string {
	if rd := n.routeChild(conn, child); rd != nil {
		return rd.name
	}
	return ""
}
