//go:build linux

package dataplane

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Moving an installed XFRM state (NAT mapping changed, MOBIKE: RFC 7296
// §2.23, RFC 4555).
//
// The backend keeps no keys: AddSA's caller zeroes its buffers once the SA
// is in, so the states in x.states hold algorithm names only, and the
// kernel has the one live copy. A move that has to send a whole state
// again reads it back (XFRM_MSG_GETSA answers with the keys), sends it and
// zeroes that copy at once. XFRM_MSG_MIGRATE would move a state without
// its keys crossing netlink, but it works on policy-and-template pairs
// (CONFIG_XFRM_MIGRATE), and vishvananda/netlink has no call for it; a
// short-lived copy of keys the daemon derived itself is the smaller risk.
//
// The kernel's XFRM_MSG_UPDSA (XfrmStateUpdate) changes only the
// lifetimes, the selector and the ports of an existing UDP encapsulation:
// it finds the state by (destination, SPI, protocol), ignores a new source
// address and refuses to add or remove an encapsulation (EINVAL). So:
//
//   - same addresses, encapsulated before and after: UPDSA (new ports);
//   - same destination, new source or encapsulation switched on or off:
//     the state's ID is unchanged, so it is deleted and added again (put
//     back as it was if the add fails);
//   - new destination: the state is added at the new addresses, then the
//     old one is deleted.
//
// A state added again carries its replay state (XFRMA_REPLAY_VAL: the
// outbound sequence number, the inbound window), so the peer's replay
// window does not drop what it sends next; kernel counters restart. ESN
// states are the exception: the kernel reports their replay state as
// XFRMA_REPLAY_ESN_VAL, which vishvananda/netlink neither reads nor
// writes, so an ESN state added again starts at sequence number 1.

// UpdateSA implements DataPlane: see above. The outer addresses of the
// state's ReqID and the templates of its policies follow (the kernel
// matches tunnel-mode templates against the states' addresses, RFC 4301
// §4.4.1.2); a route-based outbound state's if_id policies too.
func (x *XFRM) UpdateSA(dir Direction, spi uint32, local, remote netip.AddrPort, encap bool) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := xfrmKey{dir, spi}
	old := x.states[k]
	if old == nil {
		return ErrNoSA
	}
	src, dst := local, remote
	if dir == In {
		src, dst = remote, local
	}
	st := *old
	st.Src, st.Dst = net.IP(src.Addr().AsSlice()), net.IP(dst.Addr().AsSlice())
	st.Encap = nil
	if encap { // RFC 3948
		st.Encap = &netlink.XfrmStateEncap{Type: netlink.XFRM_ENCAP_ESPINUDP,
			SrcPort: int(src.Port()), DstPort: int(dst.Port()), OriginalAddress: net.IPv4zero}
	}
	sameSrc, sameDst := st.Src.Equal(old.Src), st.Dst.Equal(old.Dst)
	switch {
	case sameSrc && sameDst && old.Encap == nil && st.Encap == nil:
		// Nothing the kernel has changes.
	default:
		cur, err := x.h.XfrmStateGet(old)
		if err != nil {
			return xfrmError("get state", err)
		}
		defer zeroKeys(cur)
		// Algorithms as installed, keys as the kernel has them.
		withKeys := func(s netlink.XfrmState) *netlink.XfrmState {
			s.Aead, s.Crypt, s.Auth = keyFrom(s.Aead, cur.Aead), keyFrom(s.Crypt, cur.Crypt), keyFrom(s.Auth, cur.Auth)
			return &s
		}
		next := withKeys(st)
		switch {
		case sameSrc && sameDst && old.Encap != nil && st.Encap != nil:
			if err := x.h.XfrmStateUpdate(next); err != nil {
				return xfrmError("update state", err)
			}
		case sameDst:
			next.Replay = cur.Replay
			if err := x.h.XfrmStateDel(old); err != nil {
				return xfrmError("move state: delete", err)
			}
			if err := x.h.XfrmStateAdd(next); err != nil {
				back := withKeys(*old)
				back.Replay = cur.Replay
				if berr := x.h.XfrmStateAdd(back); berr != nil {
					// Gone from the kernel: forget it, as DeleteSA would.
					delete(x.states, k)
					if dir == Out {
						x.dropIfPolicies(uint32(old.Ifid))
						x.unuseReqIDLocked(uint32(old.Reqid))
					}
					return xfrmError("move state", errors.Join(err, berr))
				}
				return xfrmError("move state: add", err)
			}
		default:
			next.Replay = cur.Replay
			if err := x.h.XfrmStateAdd(next); err != nil {
				return xfrmError("move state: add", err)
			}
			x.h.XfrmStateDel(old)
		}
	}
	x.states[k] = keyless(&st)
	reqID := uint32(st.Reqid)
	var first error
	// Not created for an inbound state: a ReqID with no outbound state
	// or policy needs no outer addresses, and ReleaseReqID could not tell.
	if o, ok := x.outer[reqID]; ok && o != [2]netip.Addr{local.Addr(), remote.Addr()} {
		x.outer[reqID] = [2]netip.Addr{local.Addr(), remote.Addr()}
		first = x.movePoliciesLocked(reqID, local.Addr(), remote.Addr())
	}
	if dir == Out && st.Ifid != 0 {
		if err := x.movedIfPolicies(uint32(st.Ifid), local, remote, encap); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// movePoliciesLocked points the templates of reqID's policies at new outer
// addresses (UPDPOLICY replaces a policy in place, without a gap). x.mu
// held.
func (x *XFRM) movePoliciesLocked(reqID uint32, local, remote netip.Addr) error {
	var first error
	for sel, pols := range x.pols {
		if id, ok := polsReqID(pols); !ok || id != reqID {
			continue
		}
		moved := make([]*netlink.XfrmPolicy, len(pols))
		for i, p := range pols {
			moved[i] = p
			np := *p
			np.Tmpls = append([]netlink.XfrmPolicyTmpl(nil), p.Tmpls...)
			for j := range np.Tmpls {
				if np.Dir == netlink.XFRM_DIR_OUT {
					np.Tmpls[j].Src, np.Tmpls[j].Dst = local.AsSlice(), remote.AsSlice()
				} else {
					np.Tmpls[j].Src, np.Tmpls[j].Dst = remote.AsSlice(), local.AsSlice()
				}
			}
			if err := x.h.XfrmPolicyUpdate(&np); err != nil {
				if first == nil {
					first = xfrmError("move policy", err)
				}
				continue
			}
			moved[i] = &np
		}
		x.pols[sel] = moved
	}
	return first
}

// keyless is a copy of st whose algorithms have no keys.
func keyless(st *netlink.XfrmState) *netlink.XfrmState {
	c := *st
	c.Aead, c.Crypt, c.Auth = keyFrom(st.Aead, nil), keyFrom(st.Crypt, nil), keyFrom(st.Auth, nil)
	c.Replay = nil
	return &c
}

// keyFrom is a copy of a with the key of from (none when from is nil),
// which the caller zeroes; a key the kernel did not report stays nil, and
// the kernel refuses it.
func keyFrom(a, from *netlink.XfrmStateAlgo) *netlink.XfrmStateAlgo {
	if a == nil {
		return nil
	}
	c := *a
	c.Key = nil
	if from != nil {
		c.Key = from.Key
	}
	return &c
}

// zeroKeys clears the keys of a state read back from the kernel.
func zeroKeys(st *netlink.XfrmState) {
	if st == nil {
		return
	}
	for _, a := range []*netlink.XfrmStateAlgo{st.Aead, st.Crypt, st.Auth} {
		if a != nil {
			clear(a.Key)
		}
	}
}
