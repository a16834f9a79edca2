//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

func TestXFRMStateMapping(t *testing.T) {
	sa := SA{Dir: In, SPI: 0xc0de0001, ReqID: 3, IfID: 9, Mode: esp.Tunnel, Encap: true, ESN: true,
		Local: netip.MustParseAddrPort("192.0.2.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.7:61000"),
		Encr: wire.EncrAES_GCM_16, EncrKey: make([]byte, 36)}
	st, err := xfrmState(&sa)
	if err != nil {
		t.Fatal(err)
	}
	if st.Aead == nil || st.Aead.Name != "rfc4106(gcm(aes))" || st.Aead.ICVLen != 128 || len(st.Aead.Key) != 36 {
		t.Fatalf("aead %+v", st.Aead)
	}
	// Inbound: from the peer to us, encapsulated from its NAT-mapped port.
	if !st.Src.Equal(netip.MustParseAddr("198.51.100.7").AsSlice()) || st.Encap.SrcPort != 61000 || st.Encap.DstPort != 4500 {
		t.Fatalf("addresses %v -> %v encap %+v", st.Src, st.Dst, st.Encap)
	}
	if st.Spi != 0xc0de0001 || st.Reqid != 3 || st.Ifid != 9 || !st.ESN || st.ReplayWindow != esp.DefaultReplayWindow ||
		st.Mode != netlink.XFRM_MODE_TUNNEL || st.Encap.Type != netlink.XFRM_ENCAP_ESPINUDP {
		t.Fatalf("state %v", st)
	}
	sa.Encr, sa.EncrKey, sa.Integ, sa.IntegKey, sa.Dir = wire.EncrAES_CBC, make([]byte, 32), wire.IntegHMAC_SHA2_512_256, make([]byte, 64), Out
	st, err = xfrmState(&sa)
	if err != nil || st.Crypt.Name != "cbc(aes)" || st.Auth.Name != "hmac(sha512)" || st.Auth.TruncateLen != 256 {
		t.Fatalf("cbc state %+v %+v %v", st.Crypt, st.Auth, err)
	}
	sa.Integ = wire.IntegNONE
	if _, err := xfrmState(&sa); !errors.Is(err, ErrInsecure) {
		t.Fatalf("CBC without integrity: %v", err)
	}
}

func TestXFRMPolicyMapping(t *testing.T) {
	web := MustSelector("10.2.0.0/16")
	web.Proto, web.StartPort, web.EndPort = 6, 443, 443
	pols, err := xfrmPolicies(Policy{Local: MustSelector("10.1.0.0/24"), Remote: web, ReqID: 4},
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), esp.Tunnel)
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 3 || pols[0].Dir != netlink.XFRM_DIR_OUT || pols[1].Dir != netlink.XFRM_DIR_IN || pols[2].Dir != netlink.XFRM_DIR_FWD {
		t.Fatalf("policies %v", pols)
	}
	out := pols[0]
	if out.Src.String() != "10.1.0.0/24" || out.Dst.String() != "10.2.0.0/16" || out.Proto != 6 || out.DstPort != 443 ||
		out.Tmpls[0].Reqid != 4 || !out.Tmpls[0].Dst.Equal(netip.MustParseAddr("192.0.2.2").AsSlice()) {
		t.Fatalf("out policy %v", out)
	}
	if in := pols[1]; in.Src.String() != "10.2.0.0/16" || in.SrcPort != 443 || !in.Tmpls[0].Src.Equal(netip.MustParseAddr("192.0.2.2").AsSlice()) {
		t.Fatalf("in policy %v", in)
	}
	odd := Selector{Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("10.0.0.5"), EndPort: 65535}
	if _, err := xfrmPolicies(Policy{Local: odd, Remote: web}, netip.Addr{}, netip.Addr{}, esp.Tunnel); err == nil {
		t.Fatal("non-prefix range accepted")
	}
}

// TestChooseFallsBack: on this kernel (XFRM without in-kernel ESP) the
// probe must name the missing feature and auto selection must fall back
// to userspace; where the kernel has ESP it must pick XFRM.
func TestChooseFallsBack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("probing XFRM needs CAP_NET_ADMIN")
	}
	probeErr := ProbeXFRM()
	kind, why, err := Choose(KindAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("probe: %v; chose %v: %s", probeErr, kind, why)
	if probeErr == nil {
		if kind != KindXFRM {
			t.Fatalf("kernel has ESP but chose %v", kind)
		}
		return
	}
	if kind != KindTUN || !strings.Contains(why, "CONFIG_INET_ESP") {
		t.Fatalf("fallback %v %q", kind, why)
	}
	if _, _, err := Choose(KindXFRM); err == nil || !errors.Is(err, ErrNoBackend) {
		t.Fatalf("forced XFRM on a kernel without ESP: %v", err)
	}
}

func TestChooseAndKind(t *testing.T) {
	var k Kind
	if err := k.Set("NetStack"); err != nil || k != KindNetstack {
		t.Fatalf("%v %v", k, err)
	}
	if err := k.UnmarshalText([]byte("bogus")); err == nil {
		t.Fatal("bogus backend accepted")
	}
	noESP := func() error { return errors.New("no esp4") }
	if got, why, _ := choose(KindAuto, noESP); got != KindTUN || !strings.Contains(why, "no esp4") {
		t.Fatalf("auto without ESP: %v %q", got, why)
	}
	if got, _, _ := choose(KindAuto, func() error { return nil }); got != KindXFRM {
		t.Fatalf("auto with ESP: %v", got)
	}
	if got, _, _ := choose(KindNetstack, noESP); got != KindNetstack {
		t.Fatalf("override: %v", got)
	}
}

// TestXFRMPoliciesInKernel installs a Child's policies in a scratch
// network namespace's kernel SPD and reads them back (policies need no
// in-kernel ESP, so this runs here even though states cannot).
func TestXFRMPoliciesInKernel(t *testing.T) {
	needRoot(t, "ip")
	name := fmt.Sprintf("pxfrm-dp-%d", os.Getpid())
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
	defer x.Close()
	// What AddSA(Out) records; the state itself needs ESP in the kernel.
	x.outer[4] = [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	p := Policy{Local: MustSelector("10.1.0.0/24"), Remote: MustSelector("10.2.0.0/24"), ReqID: 4}
	must(t, x.AddPolicy(p))
	pols, err := h.XfrmPolicyList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 3 {
		t.Fatalf("kernel has %d policies, want out/in/fwd: %v", len(pols), pols)
	}
	dirs := map[netlink.Dir]bool{}
	for _, k := range pols {
		dirs[k.Dir] = true
		if len(k.Tmpls) != 1 || k.Tmpls[0].Reqid != 4 || k.Tmpls[0].Mode != netlink.XFRM_MODE_TUNNEL {
			t.Fatalf("policy %v", k)
		}
	}
	if !dirs[netlink.XFRM_DIR_OUT] || !dirs[netlink.XFRM_DIR_IN] || !dirs[netlink.XFRM_DIR_FWD] {
		t.Fatalf("directions %v", dirs)
	}
	must(t, x.DeletePolicy(p))
	if pols, _ := h.XfrmPolicyList(netlink.FAMILY_V4); len(pols) != 0 {
		t.Fatalf("%d policies left", len(pols))
	}
	// AddSA on this kernel fails with the reason, not silently.
	err = x.AddSA(SA{Dir: Out, SPI: 0x1234, ReqID: 4, Local: netip.MustParseAddrPort("192.0.2.1:4500"),
		Remote: netip.MustParseAddrPort("192.0.2.2:4500"), Encap: true, Encr: wire.EncrAES_CBC,
		EncrKey: make([]byte, 16), Integ: wire.IntegHMAC_SHA2_256_128, IntegKey: make([]byte, 32)})
	t.Logf("AddSA: %v", err)
	if ProbeXFRM() != nil && err == nil {
		t.Fatal("state added on a kernel the probe says lacks ESP")
	}
}
