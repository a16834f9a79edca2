//go:build linux

package dataplane

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// XFRM is the Linux kernel backend: SAs become XFRM states and policies
// through netlink (the same messages as `ip xfrm`), and the kernel does
// ESP. It needs CAP_NET_ADMIN and a kernel with ESP (CONFIG_INET_ESP,
// CONFIG_INET6_ESP); ProbeXFRM says whether this one has it.
type XFRM struct {
	h xfrmHandle

	mu sync.Mutex
	// states holds what was installed, without keys: the kernel has the
	// only copy of those (see UpdateSA).
	states map[xfrmKey]*netlink.XfrmState
	spis   map[uint32]bool
	// outer addresses per ReqID, for policy templates (RFC 4301 §4.4.1.2).
	outer map[uint32][2]netip.Addr
	modes map[uint32]esp.Mode
	// users counts the outbound states and Protect policies of each ReqID;
	// released holds the ReqIDs given up by ReleaseReqID while some were
	// still there: their outer, modes and acquired go with the last one.
	users    map[uint32]int
	released map[uint32]bool
	pols     map[[2]Selector][]*netlink.XfrmPolicy
	// route-based: policies per if_id (xfrm_route_linux.go) and the XFRM
	// interfaces made by AddInterface (name -> if_id).
	ifs   map[uint32]*xfrmIf
	links map[string]uint32

	// Acquire events (xfrm_acquire_linux.go): the callback, the
	// XFRMNLGRP_ACQUIRE socket's reader (nil without OnEvent) and when
	// each ReqID last raised one.
	onEvent  func(Event)
	log      *slog.Logger
	watch    *acquireWatch
	acquired map[uint32]time.Time
}

// XFRMOptions configure the kernel backend.
type XFRMOptions struct {
	// Logger receives the acquire socket's errors; nil = discard.
	Logger *slog.Logger
	// OnEvent, if set, is called (never with a lock held, from the
	// backend's own goroutine) with an Acquire event when the kernel
	// reports XFRM_MSG_ACQUIRE for a ReqID of the backend's policies: a
	// packet matched a Protect policy whose ReqID has no outbound SA. At
	// most once a second per ReqID, as the userspace backend. It must not
	// block, nor call Close. The kernel has no other event the backend
	// reports.
	OnEvent func(Event)
}

// xfrmHandle is what the backend uses of *netlink.Handle; tests put an
// in-memory kernel in its place.
type xfrmHandle interface {
	XfrmStateAdd(*netlink.XfrmState) error
	XfrmStateUpdate(*netlink.XfrmState) error
	XfrmStateDel(*netlink.XfrmState) error
	XfrmStateGet(*netlink.XfrmState) (*netlink.XfrmState, error)
	XfrmPolicyAdd(*netlink.XfrmPolicy) error
	XfrmPolicyUpdate(*netlink.XfrmPolicy) error
	XfrmPolicyDel(*netlink.XfrmPolicy) error
	XfrmPolicyList(family int) ([]netlink.XfrmPolicy, error)
	LinkAdd(netlink.Link) error
	LinkSetUp(netlink.Link) error
	LinkByName(string) (netlink.Link, error)
	LinkDel(netlink.Link) error
	Close()
}

type xfrmKey struct {
	dir Direction
	spi uint32
}

// NewXFRM opens a netlink handle (XFRM for states and policies, route for
// XFRM interfaces) in the current network namespace. It raises no events;
// see NewXFRMWith.
func NewXFRM() (*XFRM, error) { return NewXFRMWith(XFRMOptions{}) }

// NewXFRMWith is NewXFRM with options. With an OnEvent callback it also
// subscribes to the kernel's acquires (XFRMNLGRP_ACQUIRE) in the same
// network namespace as the handle and reads them on a goroutine that
// Close stops.
func NewXFRMWith(opts XFRMOptions) (*XFRM, error) {
	// One thread for both sockets: they land in one namespace even if
	// the caller switched only its own thread's.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := netlink.NewHandle(unix.NETLINK_XFRM, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("dataplane: xfrm netlink: %w", err)
	}
	x := newXFRM(h)
	if opts.Logger != nil {
		x.log = opts.Logger
	}
	if opts.OnEvent != nil {
		x.onEvent = opts.OnEvent
		if err := x.watchAcquires(); err != nil {
			h.Close()
			return nil, err
		}
	}
	return x, nil
}

func newXFRM(h xfrmHandle) *XFRM {
	return &XFRM{h: h, states: map[xfrmKey]*netlink.XfrmState{}, spis: map[uint32]bool{},
		outer: map[uint32][2]netip.Addr{}, modes: map[uint32]esp.Mode{},
		users: map[uint32]int{}, released: map[uint32]bool{}, pols: map[[2]Selector][]*netlink.XfrmPolicy{},
		ifs: map[uint32]*xfrmIf{}, links: map[string]uint32{},
		log: slog.New(slog.DiscardHandler), acquired: map[uint32]time.Time{}}
}

// Name implements DataPlane.
func (x *XFRM) Name() string { return "xfrm" }

// xfrmAlgos maps IKE transform IDs to the kernel's crypto API names.
func xfrmAlgos(sa *SA) (aead, crypt, auth *netlink.XfrmStateAlgo, err error) {
	switch sa.Encr {
	case wire.EncrAES_GCM_16: // RFC 4106: key|salt, 128-bit ICV
		return &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: sa.EncrKey, ICVLen: 128}, nil, nil, nil
	case wire.EncrCHACHA20_POLY1305: // RFC 7634
		return &netlink.XfrmStateAlgo{Name: "rfc7539esp(chacha20,poly1305)", Key: sa.EncrKey, ICVLen: 128}, nil, nil, nil
	case wire.EncrAES_CBC:
		crypt = &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: sa.EncrKey}
	default:
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrNotSupport, sa.Encr)
	}
	names := map[wire.IntegID]struct {
		name  string
		trunc int
	}{
		wire.IntegHMAC_SHA2_256_128: {"hmac(sha256)", 128}, // RFC 4868
		wire.IntegHMAC_SHA2_384_192: {"hmac(sha384)", 192},
		wire.IntegHMAC_SHA2_512_256: {"hmac(sha512)", 256},
		wire.IntegHMAC_SHA1_96:      {"hmac(sha1)", 96}, // RFC 2404
	}
	a, ok := names[sa.Integ]
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrNotSupport, sa.Integ)
	}
	return nil, crypt, &netlink.XfrmStateAlgo{Name: a.name, Key: sa.IntegKey, TruncateLen: a.trunc}, nil
}

// xfrmState builds the XFRM state for an SA. Inbound states are keyed by
// the local (destination) address, outbound by the peer's.
func xfrmState(sa *SA) (*netlink.XfrmState, error) {
	if err := checkSA(sa); err != nil {
		return nil, err
	}
	aead, crypt, auth, err := xfrmAlgos(sa)
	if err != nil {
		return nil, err
	}
	src, dst := sa.Local, sa.Remote
	if sa.Dir == In {
		src, dst = dst, src
	}
	st := &netlink.XfrmState{
		Src: net.IP(src.Addr().AsSlice()), Dst: net.IP(dst.Addr().AsSlice()),
		Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL,
		Spi: int(sa.SPI), Reqid: int(sa.ReqID), Ifid: int(sa.IfID),
		Aead: aead, Crypt: crypt, Auth: auth, ESN: sa.ESN,
	}
	if sa.Mode == esp.Transport {
		st.Mode = netlink.XFRM_MODE_TRANSPORT
	}
	if sa.Dir == In {
		st.ReplayWindow = sa.ReplayWindow
		if st.ReplayWindow == 0 {
			st.ReplayWindow = esp.DefaultReplayWindow
		}
	} else if sa.ESN {
		st.ReplayWindow = 1 // the kernel wants a replay ESN attribute for ESN SAs
	}
	if sa.Encap { // RFC 3948
		st.Encap = &netlink.XfrmStateEncap{Type: netlink.XFRM_ENCAP_ESPINUDP,
			SrcPort: int(src.Port()), DstPort: int(dst.Port()), OriginalAddress: net.IPv4zero}
	}
	return st, nil
}

// AllocateSPI implements DataPlane (random, checked against installed SAs).
func (x *XFRM) AllocateSPI() (uint32, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	var b [4]byte
	for range 64 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi >= 256 && !x.spis[spi] && x.states[xfrmKey{In, spi}] == nil {
			x.spis[spi] = true
			return spi, nil
		}
	}
	return 0, ErrNoSPI
}

// ReleaseSPI implements DataPlane.
func (x *XFRM) ReleaseSPI(spi uint32) {
	x.mu.Lock()
	delete(x.spis, spi)
	x.mu.Unlock()
}

// AddSA implements DataPlane. A route-based SA (IfID set) gets the if_id
// on its state; its outbound SA also installs or refreshes the if_id's
// policies (xfrm_route_linux.go), and the state is removed again if they
// cannot be.
func (x *XFRM) AddSA(sa SA) error {
	st, err := xfrmState(&sa)
	if err != nil {
		return err
	}
	if sa.IfID != 0 && sa.Dir == Out {
		if _, err := xfrmIfPolicies(&sa); err != nil {
			return err
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.h.XfrmStateAdd(st); err != nil {
		return xfrmError("add state", err)
	}
	if sa.IfID != 0 && sa.Dir == Out {
		if err := x.setIfPolicies(&sa); err != nil {
			x.h.XfrmStateDel(st)
			return err
		}
	}
	delete(x.spis, sa.SPI)
	// Not st itself: its keys are the caller's buffers, which it zeroes.
	x.states[xfrmKey{sa.Dir, sa.SPI}] = keyless(st)
	if sa.Dir == Out {
		x.outer[sa.ReqID] = [2]netip.Addr{sa.Local.Addr(), sa.Remote.Addr()}
		x.modes[sa.ReqID] = sa.Mode
		x.users[sa.ReqID]++
		delete(x.released, sa.ReqID)
		delete(x.acquired, sa.ReqID)
	}
	return nil
}

// SetTunnelEndpoints gives the outer addresses and mode of a ReqID that
// has no outbound SA yet, so that AddPolicy can install its Protect
// policies before the SA (a trap: the kernel raises an acquire for the
// first packet that matches them, see NewXFRMWith). The policy templates
// need them (RFC 4301 §4.4.1.2); an outbound SA of the ReqID installed
// later replaces them for policies added after it.
func (x *XFRM) SetTunnelEndpoints(reqID uint32, local, remote netip.Addr, mode esp.Mode) error {
	if !local.IsValid() || !remote.IsValid() || local.Is4() != remote.Is4() {
		return fmt.Errorf("%w: tunnel endpoints %v, %v", ErrBadSA, local, remote)
	}
	x.mu.Lock()
	x.outer[reqID] = [2]netip.Addr{local, remote}
	x.modes[reqID] = mode
	delete(x.released, reqID)
	x.mu.Unlock()
	return nil
}

// ReleaseReqID implements DataPlane: the endpoints, mode and acquire time
// of reqID go now, or with the last outbound state or Protect policy of
// reqID if some are still installed (a trap's policies keep the endpoints
// SetTunnelEndpoints gave them for as long as they are there).
func (x *XFRM) ReleaseReqID(reqID uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.users[reqID] > 0 {
		x.released[reqID] = true
		return
	}
	x.forgetReqIDLocked(reqID)
}

// unuseReqIDLocked drops a user of reqID (an outbound state or a Protect
// policy), forgetting the ReqID with its last user if it was released.
func (x *XFRM) unuseReqIDLocked(reqID uint32) {
	if x.users[reqID]--; x.users[reqID] > 0 {
		return
	}
	delete(x.users, reqID)
	if x.released[reqID] {
		x.forgetReqIDLocked(reqID)
	}
}

func (x *XFRM) forgetReqIDLocked(reqID uint32) {
	delete(x.outer, reqID)
	delete(x.modes, reqID)
	delete(x.acquired, reqID)
	delete(x.released, reqID)
}

// DeleteSA implements DataPlane.
func (x *XFRM) DeleteSA(dir Direction, spi uint32) error {
	x.mu.Lock()
	st := x.states[xfrmKey{dir, spi}]
	delete(x.states, xfrmKey{dir, spi})
	if st != nil && dir == Out {
		x.dropIfPolicies(uint32(st.Ifid))
		x.unuseReqIDLocked(uint32(st.Reqid))
	}
	x.mu.Unlock()
	if st == nil {
		return ErrNoSA
	}
	// The kernel frees its copy of the keys; x.states held none.
	return xfrmError("delete state", x.h.XfrmStateDel(st))
}

func selectorNet(s Selector) (*net.IPNet, error) {
	for bits := 0; bits <= s.Start.BitLen(); bits++ {
		p, err := s.Start.Prefix(bits)
		if err != nil {
			return nil, err
		}
		if p.Addr() == s.Start && PrefixSelector(p).End == s.End {
			return &net.IPNet{IP: s.Start.AsSlice(), Mask: net.CIDRMask(bits, s.Start.BitLen())}, nil
		}
	}
	return nil, fmt.Errorf("%w: selector range %v-%v is not a prefix (XFRM selectors are prefixes)", ErrNotSupport, s.Start, s.End)
}

// xfrmPolicies builds the out, in and fwd policies of a Protect policy
// (RFC 4301 §4.4.1: the SPD entries for both directions).
func xfrmPolicies(p Policy, local, remote netip.Addr, mode esp.Mode) ([]*netlink.XfrmPolicy, error) {
	ln, err := selectorNet(p.Local)
	if err != nil {
		return nil, err
	}
	rn, err := selectorNet(p.Remote)
	if err != nil {
		return nil, err
	}
	m := netlink.XFRM_MODE_TUNNEL
	if mode == esp.Transport {
		m = netlink.XFRM_MODE_TRANSPORT
	}
	proto := netlink.Proto(p.Local.Proto | p.Remote.Proto)
	port := func(s Selector) int {
		if s.StartPort == s.EndPort {
			return int(s.StartPort)
		}
		return 0
	}
	mk := func(dir netlink.Dir, src, dst *net.IPNet, tsrc, tdst netip.Addr, sp, dp int) *netlink.XfrmPolicy {
		pol := &netlink.XfrmPolicy{Src: src, Dst: dst, Proto: proto, SrcPort: sp, DstPort: dp, Dir: dir}
		if p.Action == Discard {
			pol.Action = netlink.XFRM_POLICY_BLOCK
			return pol
		}
		pol.Tmpls = []netlink.XfrmPolicyTmpl{{Src: tsrc.AsSlice(), Dst: tdst.AsSlice(),
			Proto: netlink.XFRM_PROTO_ESP, Mode: m, Reqid: int(p.ReqID)}}
		return pol
	}
	return []*netlink.XfrmPolicy{
		mk(netlink.XFRM_DIR_OUT, ln, rn, local, remote, port(p.Local), port(p.Remote)),
		mk(netlink.XFRM_DIR_IN, rn, ln, remote, local, port(p.Remote), port(p.Local)),
		mk(netlink.XFRM_DIR_FWD, rn, ln, remote, local, port(p.Remote), port(p.Local)),
	}, nil
}

// AddPolicy implements DataPlane. The ReqID's outbound SA must be installed
// first, or its endpoints given with SetTunnelEndpoints: the outer
// addresses go into the policy templates.
func (x *XFRM) AddPolicy(p Policy) error {
	x.mu.Lock()
	outer, ok := x.outer[p.ReqID]
	mode := x.modes[p.ReqID]
	x.mu.Unlock()
	if !ok && p.Action == Protect {
		return fmt.Errorf("%w: no outbound SA for reqid %d yet", ErrNoSA, p.ReqID)
	}
	pols, err := xfrmPolicies(p, outer[0], outer[1], mode)
	if err != nil {
		return err
	}
	for i, pol := range pols {
		if err := x.h.XfrmPolicyAdd(pol); err != nil {
			for _, done := range pols[:i] {
				x.h.XfrmPolicyDel(done)
			}
			return xfrmError("add policy", err)
		}
	}
	x.mu.Lock()
	x.pols[[2]Selector{p.Local, p.Remote}] = pols
	if id, ok := polsReqID(pols); ok {
		x.users[id]++
		delete(x.released, id)
	}
	x.mu.Unlock()
	return nil
}

// polsReqID is the ReqID in the templates of a Protect policy's out, in
// and fwd policies; false for a Discard policy, which has none.
func polsReqID(pols []*netlink.XfrmPolicy) (uint32, bool) {
	for _, p := range pols {
		for _, t := range p.Tmpls {
			return uint32(t.Reqid), true
		}
	}
	return 0, false
}

// DeletePolicy implements DataPlane.
func (x *XFRM) DeletePolicy(p Policy) error {
	x.mu.Lock()
	pols := x.pols[[2]Selector{p.Local, p.Remote}]
	delete(x.pols, [2]Selector{p.Local, p.Remote})
	if id, ok := polsReqID(pols); ok {
		x.unuseReqIDLocked(id)
	}
	x.mu.Unlock()
	if pols == nil {
		return ErrNoPolicy
	}
	var first error
	for _, pol := range pols {
		if err := x.h.XfrmPolicyDel(pol); err != nil && first == nil {
			first = xfrmError("delete policy", err)
		}
	}
	return first
}

// Counters implements DataPlane from the state's lifetime and statistics.
func (x *XFRM) Counters(dir Direction, spi uint32) (esp.Counters, error) {
	x.mu.Lock()
	st := x.states[xfrmKey{dir, spi}]
	x.mu.Unlock()
	if st == nil {
		return esp.Counters{}, ErrNoSA
	}
	got, err := x.h.XfrmStateGet(st)
	if err != nil {
		return esp.Counters{}, xfrmError("get state", err)
	}
	zeroKeys(got) // the kernel's answer carries the keys
	s := got.Statistics
	c := esp.Counters{Packets: s.Packets, Bytes: s.Bytes, ReplayDrops: uint64(s.Replay), AuthFailures: uint64(s.Failed)}
	if s.UseTime != 0 {
		c.LastUsed = time.Unix(int64(s.UseTime), 0)
	}
	return c, nil
}

// EnableUDPDecap makes the kernel take ESP-in-UDP off the daemon's NAT-T
// socket (UDP_ENCAP_ESPINUDP, RFC 3948); IKE with the non-ESP marker still
// reaches the socket.
func EnableUDPDecap(rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP)
	}); err != nil {
		return fmt.Errorf("dataplane: UDP_ENCAP: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("dataplane: UDP_ENCAP: %w", serr)
	}
	return nil
}

// Close implements DataPlane: removes what it installed (policies, if_id
// policies, states, XFRM interfaces still there).
func (x *XFRM) Close() error {
	x.stopAcquires()
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, pols := range x.pols {
		for _, p := range pols {
			x.h.XfrmPolicyDel(p)
		}
	}
	for _, xi := range x.ifs {
		for _, p := range xi.pols {
			x.h.XfrmPolicyDel(p)
		}
	}
	for name := range x.links {
		if l, err := x.h.LinkByName(name); err == nil {
			if _, ok := l.(*netlink.Xfrmi); ok {
				x.h.LinkDel(l)
			}
		}
	}
	for _, st := range x.states {
		x.h.XfrmStateDel(st)
	}
	x.h.Close()
	return nil
}

func xfrmError(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("dataplane: xfrm %s: %w", op, err)
}

// ProbeXFRM checks that this kernel can run ESP in XFRM: netlink XFRM
// answers (CONFIG_XFRM_USER) and an ESP state can be created
// (CONFIG_INET_ESP; without it the kernel answers "xfrm type not found").
// It adds and at once deletes a transport-mode state on 127.0.0.1 with a
// random SPI. A nil error means the kernel backend can be used.
func ProbeXFRM() error {
	h, err := netlink.NewHandle(unix.NETLINK_XFRM)
	if err != nil {
		return fmt.Errorf("dataplane: kernel XFRM netlink unavailable (CONFIG_XFRM_USER): %w", err)
	}
	defer h.Close()
	if _, err := h.XfrmStateList(netlink.FAMILY_V4); err != nil {
		return fmt.Errorf("dataplane: kernel XFRM netlink unavailable (CONFIG_XFRM_USER): %w", err)
	}
	var b [4]byte
	rand.Read(b[:])
	st := &netlink.XfrmState{Src: net.IPv4(127, 0, 0, 1), Dst: net.IPv4(127, 0, 0, 1),
		Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TRANSPORT,
		Spi: int(binary.BigEndian.Uint32(b[:]) | 0x100), Reqid: 0x7e57,
		// CBC and HMAC rather than GCM: they are in almost every kernel's
		// crypto API, so a failure points at ESP itself.
		Crypt: &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: make([]byte, 16)},
		Auth:  &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: make([]byte, 32), TruncateLen: 128}}
	if err := h.XfrmStateAdd(st); err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPROTONOSUPPORT):
			return fmt.Errorf("%w: the kernel has XFRM but no in-kernel ESP (CONFIG_INET_ESP/esp4: xfrm type not found): %v", ErrNoBackend, err)
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("%w: XFRM needs CAP_NET_ADMIN: %v", ErrNoBackend, err)
		case errors.Is(err, unix.ENOSYS):
			return fmt.Errorf("%w: the kernel crypto API lacks cbc(aes) or hmac(sha256) for XFRM: %v", ErrNoBackend, err)
		}
		return fmt.Errorf("%w: probing an ESP state: %v", ErrNoBackend, err)
	}
	h.XfrmStateDel(st)
	return nil
}

// AllocSPI is AllocateSPI under the name the IKE core's SPIAllocator uses.
func (x *XFRM) AllocSPI() (uint32, error) { return x.AllocateSPI() }
