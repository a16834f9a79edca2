//go:build linux

package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Acquire under XFRM.
//
// When an outbound packet matches an XFRM policy whose template has no
// state, the kernel makes a larval ("acquire") state for the template and
// multicasts XFRM_MSG_ACQUIRE to the XFRMNLGRP_ACQUIRE group of its netns
// (xfrm_state_find -> km_query -> xfrm_send_acquire); it is what `ip xfrm
// monitor acquire` prints. A backend created with an OnEvent callback
// (NewXFRMWith) listens on a netlink socket of its own, opened in the
// namespace of its netlink handle, and turns each ACQUIRE into
// Event{Kind: Acquire, Dir: Out, ReqID, Packet} with the userspace
// backend's rate limit: at most once a second per ReqID, reset when an
// outbound SA of that ReqID is installed.
//
// The ReqID is the reqid of the policy template that triggered (the
// message carries all of the policy's templates in XFRMA_TMPL; the one
// whose destination and protocol are the acquire's xfrm_id is taken).
// The backend writes Policy.ReqID into its templates as is
// (xfrmPolicies, xfrmIfPolicies), so the reqid read back is the ReqID.
// Acquires for a reqid none of this backend's policies carry (another IKE
// daemon's policies in the same namespace) are not reported. Packet is the
// acquire's selector, which the kernel fills from the packet's flow (a
// /32 or /128 per side, its protocol and ports).
//
// The kernel limits acquires itself: while the larval state lives
// (net.core.xfrm_acq_expires, 30 s by default) further packets for the
// same template raise none, so an initiation that fails is retried by
// the next packet only after that, not after a second as under userspace
// ESP. Measured on this machine (6.18, XFRM without esp4): three UDP
// packets through an ESP tunnel policy with no state gave one ACQUIRE
// (reqid, selector src 10.1.0.1/32 dst 10.2.0.1/32 proto udp and ports)
// and a larval state spi 0 with a hard add expiry of 30 s. No in-kernel
// ESP is needed for any of this. A route through lo raises none: lo has
// disable_xfrm set.
//
// There is no XFRM counterpart of the userspace backend's UnknownSPI
// event: the kernel drops inbound ESP for an SPI it has no state for and
// counts it (XfrmInNoStates in /proc/net/xfrm_stat, per namespace), with
// no per-packet netlink notification that would name the SPI or the peer.

// From linux/xfrm.h.
const (
	xfrmMsgAcquire    = 0x17   // XFRM_MSG_ACQUIRE
	xfrmnlgrpAcquire  = 1      // XFRMNLGRP_ACQUIRE
	xfrmaTmpl         = 5      // XFRMA_TMPL: struct xfrm_user_tmpl[]
	xfrmaIfID         = 31     // XFRMA_IF_ID: __u32
	xfrmPolicyOut     = 1      // XFRM_POLICY_OUT
	nlaTypeMask       = 0x3fff // ^(NLA_F_NESTED | NLA_F_NET_BYTEORDER), linux/netlink.h
	sizeofXfrmID      = 24     // struct xfrm_id: daddr[16], spi, proto, pad
	sizeofXfrmSel     = 56     // struct xfrm_selector
	sizeofXfrmAcquire = 280    // struct xfrm_user_acquire
	sizeofXfrmTmpl    = 64     // struct xfrm_user_tmpl
	// offsets in struct xfrm_user_acquire: id, saddr, sel, policy
	// (struct xfrm_userpolicy_info, 8-aligned, 168 octets), aalgos,
	// ealgos, calgos, seq.
	acqSel       = sizeofXfrmID + 16
	acqPolicy    = acqSel + sizeofXfrmSel
	acqPolicyDir = acqPolicy + sizeofXfrmSel + 64 + 32 + 8 // after sel, lft, curlft, priority, index
)

// xfrmAcquire is what the backend reads from one XFRM_MSG_ACQUIRE.
type xfrmAcquire struct {
	reqID uint32
	flow  Flow   // the packet's flow, from the acquire's selector
	dir   uint8  // the policy's direction (XFRM_POLICY_OUT)
	ifID  uint32 // XFRMA_IF_ID, 0 if none
	dst   netip.Addr
}

var errShortAcquire = errors.New("dataplane: short XFRM_MSG_ACQUIRE")

// xfrmAddr reads an xfrm_address_t of the given address family.
func xfrmAddr(b []byte, family uint16) netip.Addr {
	switch family {
	case unix.AF_INET:
		return netip.AddrFrom4([4]byte(b[:4]))
	case unix.AF_INET6:
		return netip.AddrFrom16([16]byte(b[:16]))
	}
	return netip.Addr{}
}

// parseXFRMAcquire decodes the payload of an XFRM_MSG_ACQUIRE (after the
// nlmsghdr): struct xfrm_user_acquire, then attributes.
func parseXFRMAcquire(b []byte) (xfrmAcquire, error) {
	var a xfrmAcquire
	if len(b) < sizeofXfrmAcquire {
		return a, errShortAcquire
	}
	ne := binary.NativeEndian
	sel := b[acqSel : acqSel+sizeofXfrmSel]
	fam := ne.Uint16(sel[40:])
	a.flow = Flow{Dst: xfrmAddr(sel[0:], fam), Src: xfrmAddr(sel[16:], fam), Proto: sel[44],
		DstPort: binary.BigEndian.Uint16(sel[32:]), SrcPort: binary.BigEndian.Uint16(sel[36:])}
	a.dir = b[acqPolicyDir]
	idProto := b[20]
	idDst := b[0:16]

	var tmpls [][]byte
	for at := b[sizeofXfrmAcquire:]; len(at) >= unix.SizeofRtAttr; {
		l := int(ne.Uint16(at))
		typ := ne.Uint16(at[2:]) & nlaTypeMask
		if l < unix.SizeofRtAttr || l > len(at) {
			return a, fmt.Errorf("dataplane: XFRM_MSG_ACQUIRE: bad attribute length %d", l)
		}
		v := at[unix.SizeofRtAttr:l]
		switch typ {
		case xfrmaTmpl:
			for ; len(v) >= sizeofXfrmTmpl; v = v[sizeofXfrmTmpl:] {
				tmpls = append(tmpls, v[:sizeofXfrmTmpl])
			}
		case xfrmaIfID:
			if len(v) >= 4 {
				a.ifID = ne.Uint32(v)
			}
		}
		al := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if al >= len(at) {
			break
		}
		at = at[al:]
	}
	if len(tmpls) == 0 {
		return a, errors.New("dataplane: XFRM_MSG_ACQUIRE without XFRMA_TMPL: no reqid")
	}
	// The template the larval state was made from: its xfrm_id
	// (destination, protocol) is the acquire's.
	t := tmpls[0]
	for _, c := range tmpls {
		if c[20] == idProto && string(c[0:16]) == string(idDst) {
			t = c
			break
		}
	}
	a.reqID = ne.Uint32(t[44:])
	a.dst = xfrmAddr(t[0:16], ne.Uint16(t[24:]))
	return a, nil
}

// parseXFRMNotifications splits what one read from the acquire socket
// returned into netlink messages and decodes the ACQUIREs among them.
func parseXFRMNotifications(b []byte) ([]xfrmAcquire, error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, fmt.Errorf("dataplane: xfrm notification: %w", err)
	}
	var out []xfrmAcquire
	var first error
	for _, m := range msgs {
		if m.Header.Type != xfrmMsgAcquire {
			continue
		}
		a, err := parseXFRMAcquire(m.Data)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, a)
	}
	return out, first
}

// acquireWatch is the backend's XFRMNLGRP_ACQUIRE socket and its reader.
type acquireWatch struct {
	f    *os.File
	rc   syscall.RawConn
	done chan struct{}
}

// watchAcquires opens the acquire socket in the calling thread's network
// namespace and starts its reader. The socket is non-blocking and in Go's
// poller, so closing the file ends the reader.
func (x *XFRM) watchAcquires() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_XFRM)
	if err != nil {
		return fmt.Errorf("dataplane: xfrm acquire socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (xfrmnlgrpAcquire - 1)}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("dataplane: xfrm acquire socket: subscribe XFRMNLGRP_ACQUIRE: %w", err)
	}
	f := os.NewFile(uintptr(fd), "xfrm-acquire")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("dataplane: xfrm acquire socket: %w", err)
	}
	w := &acquireWatch{f: f, rc: rc, done: make(chan struct{})}
	x.watch = w
	go x.readAcquires(w)
	return nil
}

// stopAcquires closes the acquire socket and waits for its reader, so no
// Event is raised after it returns. It must not run with x.mu held.
func (x *XFRM) stopAcquires() {
	x.mu.Lock()
	w := x.watch
	x.watch = nil
	x.mu.Unlock()
	if w == nil {
		return
	}
	w.f.Close()
	<-w.done
}

func (x *XFRM) readAcquires(w *acquireWatch) {
	defer close(w.done)
	buf := make([]byte, 16<<10)
	for {
		var (
			n    int
			from unix.Sockaddr
			rerr error
		)
		err := w.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil { // closed by stopAcquires
			return
		}
		switch {
		case rerr == unix.ENOBUFS || rerr == unix.EINTR:
			// The socket's buffer overflowed and acquires were lost;
			// the kernel raises them again after xfrm_acq_expires.
			x.log.Debug("dataplane: xfrm acquire socket", "err", rerr)
			continue
		case rerr != nil:
			x.log.Warn("dataplane: xfrm acquire socket failed; no more acquires", "err", rerr)
			return
		}
		// Only the kernel's messages (port id 0) are acquires.
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		acqs, perr := parseXFRMNotifications(buf[:n])
		if perr != nil {
			x.log.Debug("dataplane: xfrm acquire", "err", perr)
		}
		for _, a := range acqs {
			if x.admitAcquire(a, time.Now()) {
				x.onEvent(Event{Kind: Acquire, Dir: Out, ReqID: a.reqID, Packet: a.flow})
			}
		}
	}
}

// admitAcquire says whether an acquire is reported: its reqid is one of
// this backend's policies' and none was reported for it in the last
// second.
func (x *XFRM) admitAcquire(a xfrmAcquire, now time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.ownsReqIDLocked(a.reqID) {
		x.log.Debug("dataplane: xfrm acquire for a reqid of no policy of ours", "reqid", a.reqID, "dst", a.dst)
		return false
	}
	if last, ok := x.acquired[a.reqID]; ok && now.Sub(last) < time.Second {
		return false
	}
	if len(x.acquired) >= maxAcquired {
		for id, t := range x.acquired {
			if now.Sub(t) >= time.Second {
				delete(x.acquired, id)
			}
		}
	}
	x.acquired[a.reqID] = now
	return true
}

// ownsReqIDLocked says whether a policy this backend installed has a
// template with reqID.
func (x *XFRM) ownsReqIDLocked(reqID uint32) bool {
	for _, pols := range x.pols {
		for _, p := range pols {
			for _, t := range p.Tmpls {
				if uint32(t.Reqid) == reqID {
					return true
				}
			}
		}
	}
	for _, xi := range x.ifs {
		for _, p := range xi.pols {
			for _, t := range p.Tmpls {
				if uint32(t.Reqid) == reqID {
					return true
				}
			}
		}
	}
	return false
}
