//go:build linux

package node

import (
	"errors"
	"fmt"

	"github.com/petrel-vpn/petrel/dataplane"
)

// openXFRM starts the kernel backend: states and policies through netlink,
// ESP in the kernel. The NAT-T socket keeps carrying IKE; UDP_ENCAP is set
// on it here (UDPBind.EnableKernelDecap) so that the kernel takes ESP in
// UDP off it (RFC 3948) and IKE, behind its non-ESP marker, still reaches
// the node. It is set when XFRM is chosen rather than with the first SA
// that has Encap: under XFRM no userspace data plane reads ESP from the
// socket (drainBind only drops it), and the first packets of a NAT-T SA
// must not reach the socket before the option is there. The userspace
// backends never set it: the kernel would eat the ESP they must read.
// The backend reports the kernel's acquires (XFRM_MSG_ACQUIRE) to
// onDataPlaneEvent, as the userspace backend reports its own.
func (n *Node) openXFRM() error {
	x, err := dataplane.NewXFRMWith(dataplane.XFRMOptions{Logger: n.dpLog, OnEvent: n.onDataPlaneEvent})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if err := n.bind.EnableKernelDecap(); err != nil {
		if !errors.Is(err, dataplane.ErrNotSupport) {
			x.Close()
			return fmt.Errorf("node: NAT-T socket: %w", err)
		}
		n.dpLog.Warn("node: xfrm: the NAT-T socket does not expose its descriptor (PETREL_UDP=std?): UDP_ENCAP not set, only plain ESP carries traffic", "err", err)
	}
	n.xfrm, n.dp = x, x
	n.drainBind(&n.drainWG)
	return nil
}

// addXFRMInterface creates an XFRM interface for a route-based child (in
// the backend's namespace, with the child's if_id); the returned function
// deletes it.
func (n *Node) addXFRMInterface(name string, ifID uint32) (func() error, error) {
	if err := n.xfrm.AddInterface(name, ifID); err != nil {
		return nil, err
	}
	return func() error { return n.xfrm.DeleteInterface(name) }, nil
}
