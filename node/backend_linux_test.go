//go:build linux

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/dataplane"
)

// inNetns runs f on a thread switched into the namespace ns: sockets and
// netlink handles f opens stay there. Goroutines f starts do not.
func inNetns(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(err) // never hand a thread in the wrong namespace back
		}
	}()
	f()
}

// The XFRM backend wired into a node, as far as this kernel allows, in a
// scratch namespace: the probe is told the kernel has ESP, so the node
// runs XFRM; IKE still flows over the NAT-T socket (read by the node, no
// userspace data plane there); the Child SA's states then reach the
// kernel, which installs them where it has ESP and refuses them with the
// missing feature where it does not (nothing faked: the error is the
// kernel's), leaving no policies behind.
func TestXFRMBackendInNamespace(t *testing.T) {
	name, ns := xfrmTestNetns(t, "pxfrm-node")
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	pa, pb, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pa.Config.Daemon.Dataplane = "xfrm"
	pb.Config.Daemon.Dataplane = "userspace-tun"
	var logs syncBuffer
	var a, b *Node
	var errA, errB, kernelESP error
	inNetns(t, ns, func() {
		kernelESP = dataplane.ProbeXFRM()
		withProbe(t, func() error { return nil })
		a, errA = New(Options{Config: pa.Config, Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoAutoStart: true})
		b, errB = New(Options{Config: pb.Config, Logger: testLogger(t), NoAutoStart: true, NoRawESP: true})
	})
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	defer b.Close(context.Background())
	defer a.Close(context.Background())
	t.Logf("kernel ESP probe in %s: %v", name, kernelESP)

	if a.Backend() != "xfrm" || a.DataPlane() != nil {
		t.Fatalf("backend %q", a.Backend())
	}
	// XFRM: the kernel decapsulates ESP in UDP on the NAT-T socket;
	// userspace: it must not (the data plane reads ESP there).
	checkEncap(t, a, unix.UDP_ENCAP_ESPINUDP)
	checkEncap(t, b, 0)
	if _, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400); !errors.Is(err, dataplane.ErrNotSupport) {
		t.Fatalf("netstack on XFRM: %v", err)
	}
	if err := a.AttachTUN("pxfrm-tun", 1400); err != nil || linkExists(name, "pxfrm-tun") {
		t.Fatalf("AttachTUN under XFRM: %v (it needs no device)", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := a.Up(ctx, "b")
	if err != nil {
		t.Fatalf("IKE over the NAT-T socket under XFRM: %v", err)
	}
	t.Logf("Up: %s", ev.Kind)
	var children int
	_ = a.do(func(time.Time) { children = len(a.children) })
	states, err := h.XfrmStateList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	pols, err := h.XfrmPolicyList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if kernelESP == nil {
		// A kernel with ESP: both states and out/in/fwd policies.
		if children != 1 || len(states) != 2 || len(pols) != 3 {
			t.Fatalf("children %d, states %d, policies %d; want 1, 2, 3", children, len(states), len(pols))
		}
		return
	}
	// This kernel: the state is refused, logged with the kernel's reason,
	// and nothing is half-installed.
	log := logs.String()
	if !strings.Contains(log, "dataplane: xfrm add state") || !strings.Contains(log, "inbound SA") {
		t.Fatalf("no state error logged:\n%s", log)
	}
	if children != 0 || len(states) != 0 || len(pols) != 0 {
		t.Fatalf("children %d, states %d, policies %d left on a kernel without ESP", children, len(states), len(pols))
	}
	want := kernelESP.Error()
	if i := strings.LastIndex(want, ": "); i > 0 {
		want = want[:i]
	}
	if !strings.Contains(log, want) {
		t.Fatalf("state error does not name the missing kernel feature %q:\n%s", want, log)
	}
}

// checkEncap reads UDP_ENCAP back from a node's NAT-T sockets.
func checkEncap(t *testing.T, n *Node, want int) {
	t.Helper()
	types, err := n.bind.EncapTypes()
	if err != nil {
		t.Fatal(err)
	}
	if len(types) == 0 {
		t.Fatal("no NAT-T sockets")
	}
	for i, v := range types {
		if v != want {
			t.Fatalf("%s node: NAT-T socket %d has UDP_ENCAP %d, want %d", n.Backend(), i, v, want)
		}
	}
}

// The userspace backends leave UDP_ENCAP off the NAT-T sockets, whatever
// the kernel can do.
func TestBackendUserspaceNoUDPEncap(t *testing.T) {
	if os.Getenv("PETREL_UDP") == "std" {
		t.Skip("PETREL_UDP=std: StdNetBind does not expose its sockets")
	}
	for _, dp := range []string{"auto", "userspace-tun", "netstack"} {
		withProbe(t, func() error { return errors.New("no ESP (test)") })
		pa, _, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pa.Config.Daemon.Dataplane = dp
		n, err := New(Options{Config: pa.Config, Logger: testLogger(t), NoAutoStart: true, NoRawESP: true})
		if err != nil {
			t.Fatal(err)
		}
		checkEncap(t, n, 0)
		n.Close(context.Background())
	}
}

// A route-based child under XFRM gets an XFRM interface (not a TUN) in
// the backend's namespace, with the if_id its SAs carry, removed at
// Close. This machine's kernel has no CONFIG_XFRM_INTERFACE: there the
// node must log that reason, make no device, and the test skips.
func TestXFRMRouteDevice(t *testing.T) {
	name, ns := xfrmTestNetns(t, "pxfrm-rt")
	rt, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	pa, _, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pa.Config.Daemon.Dataplane = "xfrm"
	const dev = "pxfrm-b"
	pa.Config.Connections[0].Children[0].Interface = dev
	var logs syncBuffer
	var a *Node
	inNetns(t, ns, func() {
		withProbe(t, func() error { return nil })
		a, err = New(Options{Config: pa.Config, Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoAutoStart: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			a.Close(context.Background())
		}
	}()
	conn, child := pa.Config.Connections[0].Name, pa.Config.Connections[0].Children[0].Name
	var rd *routeDev
	_ = a.do(func(time.Time) { rd = a.routeChild(conn, child) })
	link, lerr := rt.LinkByName(dev)
	if rd == nil {
		if lerr == nil {
			t.Fatalf("device %s made but not recorded", dev)
		}
		if !strings.Contains(logs.String(), dataplane.ErrNoXFRMInterface.Error()) {
			t.Fatalf("no route-based device and no reason logged:\n%s", logs.String())
		}
		if linkExists(name, dev) || exec.Command("ip", "link", "show", dev).Run() == nil {
			t.Fatalf("a device %s exists anyway", dev)
		}
		t.Skipf("this kernel has no XFRM interfaces; the node logged: %s", dataplane.ErrNoXFRMInterface)
	}
	if lerr != nil {
		t.Fatalf("route-based device %s not in the backend's namespace: %v", dev, lerr)
	}
	xi, ok := link.(*netlink.Xfrmi)
	if !ok || xi.Ifid != rd.ifID || rd.ifID == 0 || link.Attrs().Flags&unix.IFF_UP == 0 {
		t.Fatalf("device %T %+v, want an XFRM interface up with if_id %d", link, link.Attrs(), rd.ifID)
	}
	a.Close(context.Background())
	closed = true
	if _, err := rt.LinkByName(dev); err == nil {
		t.Fatalf("%s left after Close", dev)
	}
}

// Under XFRM the node hears the kernel's acquires: a trap's policies in
// the kernel (held the way applyTraps holds them, with the tunnel
// endpoints given to the backend first), a packet that matches them in
// the backend's namespace, and the node initiates the trapped connection
// (onDataPlaneEvent -> onAcquire). No in-kernel ESP is needed: the
// kernel sends the acquire for the policy's template whether or not it
// could install the state. Everything stays in the scratch namespace
// pacq-node-PID: the packet is dropped at the kernel's larval state, IKE
// goes to 127.0.0.1.
func TestXFRMAcquireInitiates(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XFRM)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip")
	}
	name := fmt.Sprintf("pacq-node-%d", os.Getpid())
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	sh(t, "ip", "-n", name, "addr", "add", "10.1.0.1/24", "dev", "lo")
	// lo has disable_xfrm: the route to the trapped subnet goes to a veth
	// pair whose two ends are both in the namespace.
	sh(t, "ip", "-n", name, "link", "add", "pacqa", "type", "veth", "peer", "name", "pacqb")
	sh(t, "ip", "-n", name, "link", "set", "pacqa", "up")
	sh(t, "ip", "-n", name, "link", "set", "pacqb", "up")
	sh(t, "ip", "-n", name, "addr", "add", "203.0.113.1/24", "dev", "pacqa")
	sh(t, "ip", "-n", name, "route", "add", "10.2.0.0/24", "via", "203.0.113.2", "dev", "pacqa", "onlink")
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()

	pa, _, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{StartAction: "trap"})
	if err != nil {
		t.Fatal(err)
	}
	pa.Config.Daemon.Dataplane = "xfrm"
	var logs syncBuffer
	var a *Node
	inNetns(t, ns, func() {
		withProbe(t, func() error { return nil })
		a, err = New(Options{Config: pa.Config, Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoAutoStart: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	// start_action: trap installs the trap's policies when the node
	// starts (applyTraps, which gives the XFRM backend the tunnel
	// endpoints first: its policy templates need them before any SA).
	var held int
	_ = a.do(func(time.Time) {
		for _, keys := range a.traps {
			held += len(keys)
		}
	})
	if held != 1 {
		t.Fatalf("trap policies held: %d, want 1:\n%s", held, logs.String())
	}

	inNetns(t, ns, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{10, 1, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		_ = unix.Sendto(fd, []byte{0}, 0, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 2, 0, 1}})
	})
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "acquire: initiating trapped connection") {
		if time.Now().After(deadline) {
			t.Fatalf("no initiation on the kernel's acquire within 5 s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if conn := pa.Config.Connections[0].Name; !strings.Contains(logs.String(), "conn="+conn) {
		t.Fatalf("initiated, but not %q:\n%s", conn, logs.String())
	}
}

// xfrmTestNetns makes a namespace named prefix-PID with lo up, removed when
// the test ends, or skips without root or ip(8).
func xfrmTestNetns(t *testing.T, prefix string) (string, netns.NsHandle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XFRM)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip")
	}
	name := fmt.Sprintf("%s-%d", prefix, os.Getpid())
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return name, ns
}
