package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/esp"
)

// Data-plane backend.
//
// daemon.dataplane picks the backend: auto probes the kernel
// (dataplane.ProbeXFRM) and uses XFRM when it can do ESP, else logs one
// line naming the missing kernel feature and runs userspace ESP;
// xfrm insists on the kernel and fails New with that line where it cannot;
// userspace-tun and netstack run userspace ESP without probing.

// xfrmIfaces is what the node needs of the XFRM backend beyond DataPlane.
type xfrmIfaces interface {
	AddInterface(name string, ifID uint32) error
	DeleteInterface(name string) error
	// SetTunnelEndpoints lets a trap's policies go in before any SA of
	// their ReqID: the kernel's policy templates need the outer addresses.
	SetTunnelEndpoints(reqID uint32, local, remote netip.Addr, mode esp.Mode) error
}

// probeXFRM is dataplane.ProbeXFRM; tests replace it.
var probeXFRM = dataplane.ProbeXFRM

// backendKind maps daemon.dataplane to a dataplane.Kind.
func backendKind(s string) dataplane.Kind {
	switch s {
	case "xfrm":
		return dataplane.KindXFRM
	case "userspace-tun":
		return dataplane.KindTUN
	case "netstack":
		return dataplane.KindNetstack
	}
	return dataplane.KindAuto
}

// chooseBackend resolves daemon.dataplane, logging the choice in one line.
func (n *Node) chooseBackend(want string) (dataplane.Kind, error) {
	k := backendKind(want)
	switch k {
	case dataplane.KindAuto:
		if err := probeXFRM(); err != nil {
			n.dpLog.Warn("node: data plane: using userspace ESP: " + err.Error())
			return dataplane.KindTUN, nil
		}
		n.dpLog.Info("node: data plane: kernel ESP available: using XFRM")
		return dataplane.KindXFRM, nil
	case dataplane.KindXFRM:
		if err := probeXFRM(); err != nil {
			return 0, fmt.Errorf("node: dataplane xfrm: %w", err)
		}
		n.dpLog.Info("node: data plane: XFRM (kernel ESP)")
		return k, nil
	}
	n.dpLog.Info("node: data plane: userspace ESP", "dataplane", want)
	return k, nil
}

// openDataPlane starts the chosen backend on the node's NAT-T bind.
func (n *Node) openDataPlane(kind dataplane.Kind, noRawESP bool) error {
	n.kind = kind
	if kind == dataplane.KindXFRM {
		return n.openXFRM()
	}
	var espBind dataplane.Bind = n.bind
	if !noRawESP {
		// Plain ESP (IP protocol 50) for peers without NAT; needs
		// CAP_NET_RAW, without which only UDP-encapsulated SAs carry
		// traffic.
		if raw, err := dataplane.NewRawBind(); err == nil {
			espBind = &dataplane.MultiBind{UDP: n.bind, Raw: raw}
		} else {
			n.dpLog.Info("node: no raw ESP sockets (need CAP_NET_RAW): only ESP in UDP carries traffic", "err", err)
		}
	}
	n.us = dataplane.NewUserspace(espBind, dataplane.Options{Logger: n.dpLog, OnEvent: n.onDataPlaneEvent})
	n.dp = n.us
	return nil
}

// drainBind reads the NAT-T bind when no userspace data plane does (XFRM):
// IKE reaches the node through the bind's callback; ESP that the kernel
// did not take off the socket is dropped.
func (n *Node) drainBind(wg *sync.WaitGroup) {
	for _, fn := range n.bind.ReceiveFuncs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			const batch = 16
			bufs := make([][]byte, batch)
			for i := range bufs {
				bufs[i] = make([]byte, 65536)
			}
			sizes := make([]int, batch)
			eps := make([]netip.AddrPort, batch)
			for {
				if _, err := fn(bufs, sizes, eps); err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					time.Sleep(10 * time.Millisecond) // not a busy loop on a persistent error
				}
			}
		}()
	}
}

// kernelHint explains a state the XFRM backend could not install when the
// kernel itself cannot run ESP (the kernel's own errno says little: "function
// not implemented", "protocol not supported"); "" otherwise.
func (n *Node) kernelHint() string {
	if n.kind != dataplane.KindXFRM {
		return ""
	}
	if err := dataplane.ProbeXFRM(); err != nil {
		return " (" + err.Error() + ")"
	}
	return ""
}

// Backend names the data plane that runs: "xfrm", or "userspace" with its
// device kind ("userspace (tun)", "userspace (netstack)").
func (n *Node) Backend() string {
	if n.kind == dataplane.KindXFRM {
		return "xfrm"
	}
	return "userspace (" + n.kind.String() + ")"
}

// closeDataPlane removes the route-based devices, then closes the backend
// (and, under XFRM, the NAT-T bind that no userspace data plane owns).
func (n *Node) closeDataPlane() error {
	n.closeRoutes()
	err := n.dp.Close()
	if n.kind == dataplane.KindXFRM {
		n.bind.Close()
		n.drainWG.Wait()
	}
	return err
}
