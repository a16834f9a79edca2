//go:build linux

package node

import (
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/petrel-vpn/petrel/dataplane"
)

// openXFRM starts the kernel backend: states and policies through netlink,
// ESP in the kernel. The NAT-T socket keeps carrying IKE; the kernel takes
// ESP in UDP off it once UDP_ENCAP is set (RFC 3948).
func (n *Node) openXFRM() error {
	x, err := dataplane.NewXFRM()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.xfrm, n.dp = x, x
	if sc, ok := any(n.bind).(interface {
		SyscallConn() (syscall.RawConn, error)
	}); ok {
		rc, err := sc.SyscallConn()
		if err == nil {
			err = dataplane.EnableUDPDecap(rc)
		}
		if err != nil {
			x.Close()
			return fmt.Errorf("node: NAT-T socket: %w", err)
		}
	} else {
		n.dpLog.Warn("node: xfrm: the NAT-T socket does not expose its descriptor: UDP_ENCAP not set, only plain ESP carries traffic")
	}
	n.drainBind(&n.drainWG)
	return nil
}

// addXFRMInterface creates an XFRM interface for a route-based child; the
// returned function deletes it.
func (n *Node) addXFRMInterface(name string, ifID uint32) (func() error, error) {
	if err := n.xfrm.AddInterface(name, ifID); err != nil {
		return nil, err
	}
	return func() error {
		link, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		return netlink.LinkDel(link)
	}, nil
}
