//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// routeSA is the outbound SA of a route-based child behind NAT (ESP in
// UDP), IPv4 inner traffic 10.1.0.0/24 <-> 10.2.0.0/24.
func routeSA() SA {
	return SA{Dir: Out, SPI: 0xc0de0002, ReqID: 7, IfID: 5, Mode: esp.Tunnel, Encap: true,
		Local: netip.MustParseAddrPort("192.0.2.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.7:61000"),
		Encr: wire.EncrAES_CBC, EncrKey: make([]byte, 16), Integ: wire.IntegHMAC_SHA2_256_128, IntegKey: make([]byte, 32),
		LocalTS: []Selector{MustSelector("10.1.0.0/24")}, RemoteTS: []Selector{MustSelector("10.2.0.0/24")}}
}

// The netlink message of a route-based outbound SA, as a value (this
// kernel refuses ESP states, so only their construction can be checked).
func TestXFRMStateRouteBasedOut(t *testing.T) {
	sa := routeSA()
	st, err := xfrmState(&sa)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Src.Equal(netip.MustParseAddr("192.0.2.1").AsSlice()) || !st.Dst.Equal(netip.MustParseAddr("198.51.100.7").AsSlice()) {
		t.Fatalf("outbound %v -> %v", st.Src, st.Dst)
	}
	if st.Proto != netlink.XFRM_PROTO_ESP || st.Mode != netlink.XFRM_MODE_TUNNEL || st.Spi != 0xc0de0002 || st.Reqid != 7 || st.Ifid != 5 {
		t.Fatalf("state %v", st)
	}
	// RFC 3948 encapsulation from our NAT-T port to the peer's mapped one.
	if e := st.Encap; e == nil || e.Type != netlink.XFRM_ENCAP_ESPINUDP || e.SrcPort != 4500 || e.DstPort != 61000 || !e.OriginalAddress.Equal(netip.IPv4Unspecified().AsSlice()) {
		t.Fatalf("encap %+v", st.Encap)
	}
	if st.Aead != nil || st.Crypt.Name != "cbc(aes)" || len(st.Crypt.Key) != 16 || st.Auth.Name != "hmac(sha256)" || st.Auth.TruncateLen != 128 {
		t.Fatalf("algorithms %+v %+v %+v", st.Aead, st.Crypt, st.Auth)
	}
	// Outbound without ESN: no replay state; with ESN: the kernel's
	// replay-ESN attribute needs a window of at least 1.
	if st.ReplayWindow != 0 || st.ESN {
		t.Fatalf("outbound replay window %d esn %v", st.ReplayWindow, st.ESN)
	}
	sa.ESN = true
	if st, _ = xfrmState(&sa); st.ReplayWindow != 1 || !st.ESN {
		t.Fatalf("outbound ESN: replay window %d esn %v", st.ReplayWindow, st.ESN)
	}
	// Inbound, transport mode, an explicit window, no encapsulation,
	// ChaCha20-Poly1305 (RFC 7634).
	sa.Dir, sa.Mode, sa.ReplayWindow, sa.Encap, sa.IfID = In, esp.Transport, 1024, false, 0
	sa.Encr, sa.EncrKey, sa.Integ, sa.IntegKey = wire.EncrCHACHA20_POLY1305, make([]byte, 36), wire.IntegNONE, nil
	st, err = xfrmState(&sa)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != netlink.XFRM_MODE_TRANSPORT || st.ReplayWindow != 1024 || st.Encap != nil || st.Ifid != 0 ||
		st.Aead == nil || st.Aead.Name != "rfc7539esp(chacha20,poly1305)" || st.Crypt != nil || st.Auth != nil ||
		!st.Src.Equal(netip.MustParseAddr("198.51.100.7").AsSlice()) {
		t.Fatalf("inbound transport state %v", st)
	}
}

func polString(p *netlink.XfrmPolicy) string {
	s := fmt.Sprintf("%v %v->%v if_id=%d", p.Dir, p.Src, p.Dst, p.Ifid)
	for _, tm := range p.Tmpls {
		s += fmt.Sprintf(" tmpl %v->%v reqid=%d mode=%v", tm.Src, tm.Dst, tm.Reqid, tm.Mode)
	}
	return s
}

func polStrings(ps []*netlink.XfrmPolicy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, polString(p))
	}
	sort.Strings(out)
	return out
}

func TestXFRMIfPoliciesMapping(t *testing.T) {
	sa := routeSA()
	pols, err := xfrmIfPolicies(&sa)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dir fwd 10.2.0.0/24->10.1.0.0/24 if_id=5 tmpl 198.51.100.7->192.0.2.1 reqid=7 mode=tunnel",
		"dir in 10.2.0.0/24->10.1.0.0/24 if_id=5 tmpl 198.51.100.7->192.0.2.1 reqid=7 mode=tunnel",
		"dir out 0.0.0.0/0->0.0.0.0/0 if_id=5 tmpl 192.0.2.1->198.51.100.7 reqid=7 mode=tunnel",
	}
	if got := polStrings(pols); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("policies\n%q\nwant\n%q", got, want)
	}
	// Dual stack, one IPv6 selector a range that is no prefix: IPv6 in/fwd
	// fall back to catch-alls; IPv4 keeps its selectors.
	odd := Selector{Start: netip.MustParseAddr("2001:db8::1"), End: netip.MustParseAddr("2001:db8::5"), EndPort: 65535}
	sa.LocalTS = append(sa.LocalTS, MustSelector("2001:db8:1::/48"))
	sa.RemoteTS = append(sa.RemoteTS, odd)
	pols, err = xfrmIfPolicies(&sa)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"dir fwd 10.2.0.0/24->10.1.0.0/24 if_id=5 tmpl 198.51.100.7->192.0.2.1 reqid=7 mode=tunnel",
		"dir fwd ::/0->::/0 if_id=5 tmpl 198.51.100.7->192.0.2.1 reqid=7 mode=tunnel",
		"dir in 10.2.0.0/24->10.1.0.0/24 if_id=5 tmpl 198.51.100.7->192.0.2.1 reqid=7 mode=tunnel",
		"dir in ::/0->::/0 if_id=5 tmpl 198.51.100.7->192.0.2.1 reqid=7 mode=tunnel",
		"dir out 0.0.0.0/0->0.0.0.0/0 if_id=5 tmpl 192.0.2.1->198.51.100.7 reqid=7 mode=tunnel",
		"dir out ::/0->::/0 if_id=5 tmpl 192.0.2.1->198.51.100.7 reqid=7 mode=tunnel",
	}
	if got := polStrings(pols); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dual-stack policies\n%q\nwant\n%q", got, want)
	}
	// No selectors at all: catch-alls for both families.
	sa.LocalTS, sa.RemoteTS = nil, nil
	if pols, _ = xfrmIfPolicies(&sa); len(pols) != 6 {
		t.Fatalf("no selectors: %q", polStrings(pols))
	}
	for _, bad := range []SA{{Dir: In, IfID: 5}, {Dir: Out}} {
		bad.Local, bad.Remote = sa.Local, sa.Remote
		if _, err := xfrmIfPolicies(&bad); !errors.Is(err, ErrBadSA) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

// scratchXFRM opens the backend in a fresh network namespace named
// pxfrm-<tag>-<pid>, removed at cleanup.
func scratchXFRM(t *testing.T, tag string) (*XFRM, *netlink.Handle, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XFRM)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not installed")
	}
	name := fmt.Sprintf("pxfrm-%s-%d", tag, os.Getpid())
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	x := newXFRM(h)
	t.Cleanup(func() { x.Close() })
	return x, h, name
}

func kernelPolicies(t *testing.T, h *netlink.Handle) []*netlink.XfrmPolicy {
	t.Helper()
	var out []*netlink.XfrmPolicy
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		ps, err := h.XfrmPolicyList(fam)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ps {
			out = append(out, &ps[i])
		}
	}
	return out
}

// The if_id policies of a route-based child in a scratch namespace's SPD,
// read back from the kernel with their if_id: installed, moved (MOBIKE,
// rekey to new addresses: replaced in place, no second set), removed with
// the if_id's last outbound SA. Policies need no in-kernel ESP; where the
// kernel has ESP the real AddSA/DeleteSA path runs, else (this machine)
// the test drives the same steps AddSA and DeleteSA take after and before
// the kernel state, and checks that AddSA fails with the kernel's reason
// without touching the policies.
func TestXFRMIfPoliciesInKernel(t *testing.T) {
	x, h, _ := scratchXFRM(t, "pol")
	kernelESP := ProbeXFRM()
	t.Logf("kernel ESP: %v", kernelESP)
	sa := routeSA()
	sa.LocalTS = append(sa.LocalTS, MustSelector("2001:db8:1::/48"))
	sa.RemoteTS = append(sa.RemoteTS, MustSelector("2001:db8:2::/48"))
	if kernelESP == nil {
		must(t, x.AddSA(sa))
	} else {
		err := x.AddSA(sa)
		if err == nil {
			t.Fatal("ESP state added on a kernel the probe says lacks it")
		}
		t.Logf("AddSA here: %v", err)
		if got := kernelPolicies(t, h); len(got) != 0 {
			t.Fatalf("failed AddSA left policies: %q", polStrings(got))
		}
		x.mu.Lock()
		err = x.setIfPolicies(&sa)
		x.mu.Unlock()
		must(t, err)
	}
	got := kernelPolicies(t, h)
	if len(got) != 6 {
		t.Fatalf("kernel has %d policies, want out/in/fwd for IPv4 and IPv6: %q", len(got), polStrings(got))
	}
	want := polStrings(mustIfPolicies(t, sa))
	if fmt.Sprint(polStrings(got)) != fmt.Sprint(want) {
		t.Fatalf("kernel policies\n%q\nwant\n%q", polStrings(got), want)
	}
	for _, p := range got {
		if p.Ifid != 5 {
			t.Fatalf("policy without the if_id: %s", polString(p))
		}
	}
	if n := len(x.ifIDPolicies(5)); n != 6 {
		t.Fatalf("backend tracks %d if_id policies", n)
	}
	// The peer's NAT mapping moves: the templates follow, still 6.
	moved := netip.MustParseAddrPort("203.0.113.9:62000")
	if kernelESP == nil {
		must(t, x.UpdateSA(Out, sa.SPI, sa.Local, moved, true))
	} else {
		x.mu.Lock()
		err := x.movedIfPolicies(5, sa.Local, moved, true)
		x.mu.Unlock()
		must(t, err)
	}
	got = kernelPolicies(t, h)
	sa.Remote = moved
	if want := polStrings(mustIfPolicies(t, sa)); fmt.Sprint(polStrings(got)) != fmt.Sprint(want) {
		t.Fatalf("after the move\n%q\nwant\n%q", polStrings(got), want)
	}
	// An outbound SA of the if_id remains (make-before-break): kept.
	x.mu.Lock()
	x.states[xfrmKey{Out, 0x5150}] = &netlink.XfrmState{Ifid: 5}
	x.dropIfPolicies(5)
	x.mu.Unlock()
	if got = kernelPolicies(t, h); len(got) != 6 {
		t.Fatalf("policies dropped while an outbound SA of the if_id remains: %d", len(got))
	}
	x.mu.Lock()
	delete(x.states, xfrmKey{Out, 0x5150})
	x.mu.Unlock()
	// The last outbound SA goes: so do the policies.
	if kernelESP == nil {
		must(t, x.DeleteSA(Out, sa.SPI))
	} else {
		x.mu.Lock()
		x.dropIfPolicies(5)
		x.mu.Unlock()
	}
	if got = kernelPolicies(t, h); len(got) != 0 {
		t.Fatalf("%d policies left: %q", len(got), polStrings(got))
	}
	if len(x.ifIDPolicies(5)) != 0 {
		t.Fatal("backend still tracks the if_id")
	}
}

func mustIfPolicies(t *testing.T, sa SA) []*netlink.XfrmPolicy {
	t.Helper()
	ps, err := xfrmIfPolicies(&sa)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// An XFRM interface in a scratch namespace: created up with its if_id and
// removed; where the kernel has no CONFIG_XFRM_INTERFACE (this machine:
// "Unknown device type") AddInterface must say so, and the test skips.
func TestXFRMInterfaceInKernel(t *testing.T) {
	x, h, ns := scratchXFRM(t, "ifc")
	if err := x.AddInterface("pxfrm0", 0); !errors.Is(err, ErrBadSA) {
		t.Fatalf("if_id 0 accepted: %v", err)
	}
	err := x.AddInterface("pxfrm0", 5)
	if errors.Is(err, ErrNoXFRMInterface) {
		t.Skipf("this kernel has no XFRM interfaces: %v", err)
	}
	must(t, err)
	link, err := h.LinkByName("pxfrm0")
	if err != nil {
		t.Fatal(err)
	}
	xi, ok := link.(*netlink.Xfrmi)
	if !ok || xi.Ifid != 5 || link.Attrs().Flags&unix.IFF_UP == 0 {
		t.Fatalf("link %T %+v", link, link.Attrs())
	}
	t.Log(run(t, "ip", "-n", ns, "-d", "link", "show", "pxfrm0"))
	must(t, x.DeleteInterface("pxfrm0"))
	if _, err := h.LinkByName("pxfrm0"); err == nil {
		t.Fatal("interface still there")
	}
}
