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
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XFRM)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip")
	}
	name := fmt.Sprintf("pr-xfrm-%d", os.Getpid())
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
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
	if _, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400); !errors.Is(err, dataplane.ErrNotSupport) {
		t.Fatalf("netstack on XFRM: %v", err)
	}
	if err := a.AttachTUN("pr-xfrm-tun", 1400); err != nil || linkExists(name, "pr-xfrm-tun") {
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
	if !strings.Contains(log, "UDP_ENCAP not set") {
		t.Fatalf("NAT-T decap gap not logged:\n%s", log)
	}
}
