//go:build linux

package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/esp"
)

// Route-based tunnels under XFRM.
//
// An SA with a non-zero IfID belongs to a route-based child. Its XFRM
// states carry that if_id (XFRMA_IF_ID), the child's device is an XFRM
// interface with the same if_id (CONFIG_XFRM_INTERFACE, `ip link add NAME
// type xfrm if_id N`), and the backend itself installs the if_id's
// policies when the outbound SA arrives, as strongSwan does with
// if_id_in/if_id_out:
//
//   - out: a catch-all per inner address family (0.0.0.0/0 -> 0.0.0.0/0,
//     ::/0 -> ::/0), so that whatever is routed into the interface is
//     sealed with the if_id's state, as the userspace backend does with
//     its route-based TUN;
//   - in and fwd: one per pair of negotiated traffic selectors (peer's ->
//     ours), so that the kernel drops decapsulated packets whose inner
//     addresses are outside them (RFC 4301 §5.2), as the userspace backend
//     does; a family whose selectors are not all prefixes gets a catch-all
//     instead (XFRM selectors are prefixes), which the peer's selectors no
//     longer bound.
//
// Policies with an if_id only match packets of that XFRM interface (the
// kernel compares if_id exactly), so they never capture traffic routed
// elsewhere, nor collide with the policy-based children's policies. They
// are refreshed (XFRM_MSG_UPDPOLICY) by every new or moved outbound SA of
// the if_id (rekey, MOBIKE) and removed with its last outbound SA.
//
// What this machine's kernel (6.18, CONFIG_XFRM_USER=y, no
// CONFIG_INET_ESP/INET6_ESP, no CONFIG_XFRM_INTERFACE, no CONFIG_CRYPTO_GCM)
// answered, probed in a scratch namespace:
//
//	ip xfrm policy add ... dir out if_id 5 tmpl ... proto esp mode tunnel   ok (v4 and v6; read back with if_id 0x5)
//	ip xfrm state add ... proto esp ... enc cbc(aes) auth-trunc hmac(sha256) "Requested type not found" (no esp4)
//	ip xfrm state add ... aead rfc4106(gcm(aes)) ... encap espinudp 4500 4500 0.0.0.0  "Requested AEAD algorithm not found"
//	ip link add xfrm0 type xfrm dev lo if_id 5   "Unknown device type" (with or without dev)
//	setsockopt(IPPROTO_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)  ok on IPv4 and IPv6 sockets, getsockopt reads 2
//	ESP in UDP to such a socket: taken off it by the kernel (never reaches userspace; IKE with the
//	non-ESP marker does), answered with ICMP destination unreachable as there is no ESP handler
//
// So here the if_id policies are exercised in a kernel, but states,
// interfaces and the ESP they would carry are not: their netlink messages
// are checked as values (xfrmState, xfrmIfPolicies) only.

// xfrmIf is what the backend installed for one if_id.
type xfrmIf struct {
	pols []*netlink.XfrmPolicy
	// the outbound SA the policies were built from (no keys)
	sa SA
}

// ErrNoXFRMInterface says that the kernel cannot create XFRM interfaces.
var ErrNoXFRMInterface = errors.New("dataplane: the kernel has no XFRM interfaces (CONFIG_XFRM_INTERFACE, module xfrm_interface)")

func anyNet(v4 bool) *net.IPNet {
	if v4 {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
}

// xfrmIfPolicies builds the if_id policies of a route-based outbound SA
// (see above): out catch-alls, in and fwd from the traffic selectors.
func xfrmIfPolicies(sa *SA) ([]*netlink.XfrmPolicy, error) {
	if sa.IfID == 0 || sa.Dir != Out {
		return nil, fmt.Errorf("%w: if_id policies come from a route-based outbound SA", ErrBadSA)
	}
	local, remote := sa.Local.Addr(), sa.Remote.Addr()
	if !local.IsValid() || !remote.IsValid() {
		return nil, fmt.Errorf("%w: outer addresses missing", ErrBadSA)
	}
	m := netlink.XFRM_MODE_TUNNEL
	if sa.Mode == esp.Transport {
		m = netlink.XFRM_MODE_TRANSPORT
	}
	tmpl := func(src, dst netip.Addr) []netlink.XfrmPolicyTmpl {
		return []netlink.XfrmPolicyTmpl{{Src: src.AsSlice(), Dst: dst.AsSlice(),
			Proto: netlink.XFRM_PROTO_ESP, Mode: m, Reqid: int(sa.ReqID)}}
	}
	var fams []bool // true: IPv4
	has := map[bool]bool{}
	for _, s := range append(append([]Selector(nil), sa.LocalTS...), sa.RemoteTS...) {
		if s.Start.IsValid() {
			has[s.Start.Is4()] = true
		}
	}
	if len(has) == 0 {
		has[true], has[false] = true, true
	}
	for _, v4 := range []bool{true, false} {
		if has[v4] {
			fams = append(fams, v4)
		}
	}
	var pols []*netlink.XfrmPolicy
	seen := map[string]bool{}
	add := func(p *netlink.XfrmPolicy) {
		p.Ifid = int(sa.IfID)
		k := fmt.Sprint(p.Dir, p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort)
		if !seen[k] {
			seen[k] = true
			pols = append(pols, p)
		}
	}
	for _, v4 := range fams {
		add(&netlink.XfrmPolicy{Src: anyNet(v4), Dst: anyNet(v4), Dir: netlink.XFRM_DIR_OUT, Tmpls: tmpl(local, remote)})
		var inbound []*netlink.XfrmPolicy
		prefixes := true
		for _, l := range sa.LocalTS {
			for _, r := range sa.RemoteTS {
				if l.Start.Is4() != v4 || r.Start.Is4() != v4 {
					continue
				}
				ps, err := xfrmPolicies(Policy{Local: l, Remote: r, ReqID: sa.ReqID, Action: Protect}, local, remote, sa.Mode)
				if err != nil {
					prefixes = false
					continue
				}
				inbound = append(inbound, ps[1], ps[2]) // in, fwd
			}
		}
		if !prefixes || len(inbound) == 0 {
			inbound = []*netlink.XfrmPolicy{
				{Src: anyNet(v4), Dst: anyNet(v4), Dir: netlink.XFRM_DIR_IN, Tmpls: tmpl(remote, local)},
				{Src: anyNet(v4), Dst: anyNet(v4), Dir: netlink.XFRM_DIR_FWD, Tmpls: tmpl(remote, local)},
			}
		}
		for _, p := range inbound {
			add(p)
		}
	}
	return pols, nil
}

func polKey(p *netlink.XfrmPolicy) string {
	return fmt.Sprint(p.Dir, p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort, p.Ifid)
}

// setIfPolicies installs or refreshes the if_id policies of a route-based
// outbound SA and removes those of the if_id it no longer needs. x.mu held.
func (x *XFRM) setIfPolicies(sa *SA) error {
	pols, err := xfrmIfPolicies(sa)
	if err != nil {
		return err
	}
	for _, p := range pols {
		// UPDPOLICY creates or replaces (same dir, selector and if_id):
		// a rekeyed or moved SA's templates replace the old ones without a
		// gap in which traffic on the interface would find no policy.
		if err := x.h.XfrmPolicyUpdate(p); err != nil {
			return xfrmError("update if_id policy", err)
		}
	}
	keep := map[string]bool{}
	for _, p := range pols {
		keep[polKey(p)] = true
	}
	if old := x.ifs[sa.IfID]; old != nil {
		for _, p := range old.pols {
			if !keep[polKey(p)] {
				x.h.XfrmPolicyDel(p)
			}
		}
	}
	pub := *sa
	pub.EncrKey, pub.IntegKey = nil, nil
	x.ifs[sa.IfID] = &xfrmIf{pols: pols, sa: pub}
	return nil
}

// dropIfPolicies removes an if_id's policies once it has no outbound state
// left. x.mu held.
func (x *XFRM) dropIfPolicies(ifID uint32) {
	if ifID == 0 || x.ifs[ifID] == nil {
		return
	}
	for k, st := range x.states {
		if k.dir == Out && uint32(st.Ifid) == ifID {
			return
		}
	}
	for _, p := range x.ifs[ifID].pols {
		x.h.XfrmPolicyDel(p)
	}
	delete(x.ifs, ifID)
}

// movedIfPolicies follows an UpdateSA of a route-based outbound SA. x.mu held.
func (x *XFRM) movedIfPolicies(ifID uint32, local, remote netip.AddrPort, encap bool) error {
	cur := x.ifs[ifID]
	if cur == nil {
		return nil
	}
	sa := cur.sa
	sa.Local, sa.Remote, sa.Encap = local, remote, encap
	return x.setIfPolicies(&sa)
}

// ifIDPolicies lists the policies installed for an if_id (tests, debugging).
func (x *XFRM) ifIDPolicies(ifID uint32) []netlink.XfrmPolicy {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []netlink.XfrmPolicy
	if cur := x.ifs[ifID]; cur != nil {
		for _, p := range cur.pols {
			out = append(out, *p)
		}
	}
	return out
}

// AddInterface creates an XFRM interface (route-based mode, like a VTI) in
// the backend's network namespace and brings it up: traffic routed to it
// is sealed by the states with the same if_id (through the if_id policies
// AddSA installs), and what those states decapsulate comes out of it.
// ErrNoXFRMInterface where the kernel lacks CONFIG_XFRM_INTERFACE.
func (x *XFRM) AddInterface(name string, ifID uint32) error {
	if ifID == 0 {
		return fmt.Errorf("%w: an XFRM interface needs a non-zero if_id", ErrBadSA)
	}
	link := &netlink.Xfrmi{LinkAttrs: netlink.LinkAttrs{Name: name}, Ifid: ifID}
	if err := x.h.LinkAdd(link); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%w: ip link add %s type xfrm if_id %d: %v", ErrNoXFRMInterface, name, ifID, err)
		}
		return xfrmError("add xfrm interface "+name, err)
	}
	x.mu.Lock()
	x.links[name] = ifID
	x.mu.Unlock()
	if err := x.h.LinkSetUp(link); err != nil {
		x.DeleteInterface(name)
		return xfrmError("set xfrm interface up "+name, err)
	}
	return nil
}

// DeleteInterface removes an XFRM interface made by AddInterface.
func (x *XFRM) DeleteInterface(name string) error {
	x.mu.Lock()
	delete(x.links, name)
	x.mu.Unlock()
	link, err := x.h.LinkByName(name)
	if err != nil {
		return xfrmError("find xfrm interface "+name, err)
	}
	if _, ok := link.(*netlink.Xfrmi); !ok {
		return fmt.Errorf("dataplane: %s is a %s device, not an XFRM interface", name, link.Type())
	}
	return xfrmError("delete xfrm interface "+name, x.h.LinkDel(link))
}
