//go:build linux

package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/esp"
)

// acquireMsg builds an XFRM_MSG_ACQUIRE as the kernel's xfrm_send_acquire
// lays it out (struct xfrm_user_acquire, then XFRMA_TMPL with the policy's
// templates and XFRMA_IF_ID), from the netlink library's own struct
// layouts rather than this package's offsets.
func acquireMsg(t *testing.T, flowSrc, flowDst netip.Addr, proto uint8, sport, dport uint16,
	idDst netip.Addr, tmpls []nl.XfrmUserTmpl, ifID uint32) []byte {
	t.Helper()
	fam := uint16(unix.AF_INET)
	plen := uint8(32)
	if flowSrc.Is6() {
		fam, plen = unix.AF_INET6, 128
	}
	var id nl.XfrmId
	id.Daddr.FromIP(idDst.AsSlice())
	id.Proto = unix.IPPROTO_ESP
	var saddr nl.XfrmAddress
	saddr.FromIP(net.ParseIP("192.0.2.1"))
	var sel nl.XfrmSelector
	sel.Daddr.FromIP(flowDst.AsSlice())
	sel.Saddr.FromIP(flowSrc.AsSlice())
	sel.Dport, sel.DportMask = nl.Swap16(dport), 0xffff
	sel.Sport, sel.SportMask = nl.Swap16(sport), 0xffff
	sel.Family, sel.PrefixlenD, sel.PrefixlenS, sel.Proto = fam, plen, plen, proto
	var pol nl.XfrmUserpolicyInfo
	pol.Sel = sel // the kernel copies the policy's own (wider) selector; not read
	pol.Sel.PrefixlenD, pol.Sel.PrefixlenS = 24, 24
	pol.Index, pol.Dir = 0x1a9, xfrmPolicyOut
	var b []byte
	b = append(b, id.Serialize()...)
	b = append(b, saddr.Serialize()...)
	b = append(b, sel.Serialize()...)
	b = append(b, pol.Serialize()...)
	b = binary.NativeEndian.AppendUint32(b, 0xffffffff) // aalgos
	b = binary.NativeEndian.AppendUint32(b, 0xffffffff) // ealgos
	b = binary.NativeEndian.AppendUint32(b, 0xffffffff) // calgos
	b = binary.NativeEndian.AppendUint32(b, 42)         // seq
	if len(b) != sizeofXfrmAcquire {
		t.Fatalf("xfrm_user_acquire is %d octets, want %d", len(b), sizeofXfrmAcquire)
	}
	var tv []byte
	for i := range tmpls {
		tv = append(tv, tmpls[i].Serialize()...)
	}
	b = append(b, nl.NewRtAttr(xfrmaTmpl, tv).Serialize()...)
	if ifID != 0 {
		b = append(b, nl.NewRtAttr(xfrmaIfID, nl.Uint32Attr(ifID)).Serialize()...)
	}
	hdr := make([]byte, unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint32(hdr, uint32(len(hdr)+len(b)))
	binary.NativeEndian.PutUint16(hdr[4:], xfrmMsgAcquire)
	return append(hdr, b...)
}

func tmpl(dst netip.Addr, proto uint8, reqID uint32) nl.XfrmUserTmpl {
	var u nl.XfrmUserTmpl
	u.XfrmId.Daddr.FromIP(dst.AsSlice())
	u.XfrmId.Proto = proto
	u.Family = unix.AF_INET
	if dst.Is6() {
		u.Family = unix.AF_INET6
	}
	u.Reqid, u.Mode = reqID, uint8(netlink.XFRM_MODE_TUNNEL)
	return u
}

// TestParseXFRMAcquire decodes ACQUIREs built as the kernel sends them:
// the ReqID comes from the template the larval state was made from (its
// destination and protocol are the acquire's xfrm_id), the flow from the
// acquire's selector; other messages in the same read are skipped.
func TestParseXFRMAcquire(t *testing.T) {
	a4 := netip.MustParseAddr
	msg := acquireMsg(t, a4("10.1.0.1"), a4("10.2.0.1"), unix.IPPROTO_UDP, 40000, 9, a4("192.0.2.2"),
		[]nl.XfrmUserTmpl{tmpl(a4("198.51.100.9"), unix.IPPROTO_AH, 3), tmpl(a4("192.0.2.2"), unix.IPPROTO_ESP, 7)}, 0)
	// An XFRM_MSG_EXPIRE (0x18) before it, as if both came in one read.
	other := make([]byte, unix.SizeofNlMsghdr+8)
	binary.NativeEndian.PutUint32(other, uint32(len(other)))
	binary.NativeEndian.PutUint16(other[4:], 0x18)
	acqs, err := parseXFRMNotifications(append(other, msg...))
	if err != nil || len(acqs) != 1 {
		t.Fatalf("got %v, %v", acqs, err)
	}
	want := xfrmAcquire{reqID: 7, dir: xfrmPolicyOut, dst: a4("192.0.2.2"),
		flow: Flow{Src: a4("10.1.0.1"), Dst: a4("10.2.0.1"), Proto: unix.IPPROTO_UDP, SrcPort: 40000, DstPort: 9}}
	if acqs[0] != want {
		t.Fatalf("got %+v\nwant %+v", acqs[0], want)
	}

	// IPv6, one template, an if_id.
	msg = acquireMsg(t, a4("2001:db8:1::1"), a4("2001:db8:2::1"), unix.IPPROTO_TCP, 1234, 443, a4("2001:db8::2"),
		[]nl.XfrmUserTmpl{tmpl(a4("2001:db8::2"), unix.IPPROTO_ESP, 0x10002)}, 5)
	acqs, err = parseXFRMNotifications(msg)
	if err != nil || len(acqs) != 1 {
		t.Fatalf("v6: %v, %v", acqs, err)
	}
	want = xfrmAcquire{reqID: 0x10002, dir: xfrmPolicyOut, ifID: 5, dst: a4("2001:db8::2"),
		flow: Flow{Src: a4("2001:db8:1::1"), Dst: a4("2001:db8:2::1"), Proto: unix.IPPROTO_TCP, SrcPort: 1234, DstPort: 443}}
	if acqs[0] != want {
		t.Fatalf("v6: got %+v\nwant %+v", acqs[0], want)
	}

	// Truncated, or without templates: an error, no acquire.
	if _, err := parseXFRMAcquire(msg[unix.SizeofNlMsghdr : unix.SizeofNlMsghdr+sizeofXfrmAcquire-1]); err == nil {
		t.Fatal("short acquire decoded")
	}
	if _, err := parseXFRMAcquire(msg[unix.SizeofNlMsghdr : unix.SizeofNlMsghdr+sizeofXfrmAcquire]); err == nil {
		t.Fatal("acquire without XFRMA_TMPL decoded")
	}
	bad := append([]byte(nil), msg...)
	binary.NativeEndian.PutUint16(bad[unix.SizeofNlMsghdr+sizeofXfrmAcquire:], 0xfff0) // attribute length past the end
	if _, err := parseXFRMAcquire(bad[unix.SizeofNlMsghdr:]); err == nil {
		t.Fatal("bad attribute length accepted")
	}
}

// TestXFRMAcquireRateLimit: at most one Acquire a second per ReqID, again
// at once after an outbound SA of the ReqID was installed, none for a
// ReqID that no policy of the backend carries.
func TestXFRMAcquireRateLimit(t *testing.T) {
	x := newXFRM(nil)
	pols, err := xfrmPolicies(Policy{Local: MustSelector("10.1.0.0/24"), Remote: MustSelector("10.2.0.0/24"), ReqID: 7},
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), esp.Tunnel)
	must(t, err)
	x.pols[[2]Selector{MustSelector("10.1.0.0/24"), MustSelector("10.2.0.0/24")}] = pols
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		at    time.Duration
		reqID uint32
		sa    bool // an outbound SA of reqID 7 installed just before
		want  bool
	}{
		{0, 7, false, true},
		{500 * time.Millisecond, 7, false, false},
		{999 * time.Millisecond, 7, false, false},
		{time.Second, 7, false, true},
		{time.Second, 8, false, false}, // not ours
		{1100 * time.Millisecond, 7, true, true},
		{1200 * time.Millisecond, 7, false, false},
	} {
		if c.sa {
			// what AddSA(Out) does besides the kernel state
			x.mu.Lock()
			delete(x.acquired, 7)
			x.mu.Unlock()
		}
		if got := x.admitAcquire(xfrmAcquire{reqID: c.reqID}, t0.Add(c.at)); got != c.want {
			t.Fatalf("at %v reqid %d: admitted %v, want %v", c.at, c.reqID, got, c.want)
		}
	}
}

// acqInNetns runs f on a thread switched into ns; sockets f opens stay
// there.
func acqInNetns(t *testing.T, ns netns.NsHandle, f func()) {
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

// acqNamespace makes a scratch namespace pacq-<pid>-tag with 10.1.0.1 on
// lo and 10.2.0.0/24 and 10.3.0.0/24 routed to a veth pair whose two ends
// are both inside it (lo itself has disable_xfrm: no acquire for routes
// through it). Nothing leaves the namespace: the policies' packets are
// dropped at the larval state.
func acqNamespace(t *testing.T, tag string) netns.NsHandle {
	t.Helper()
	needRoot(t, "ip")
	name := fmt.Sprintf("pacq-%d-%s", os.Getpid(), tag)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "-n", name, "addr", "add", "10.1.0.1/24", "dev", "lo")
	run(t, "ip", "-n", name, "link", "add", "pacqa", "type", "veth", "peer", "name", "pacqb")
	run(t, "ip", "-n", name, "link", "set", "pacqa", "up")
	run(t, "ip", "-n", name, "link", "set", "pacqb", "up")
	run(t, "ip", "-n", name, "addr", "add", "203.0.113.1/24", "dev", "pacqa")
	run(t, "ip", "-n", name, "route", "add", "10.2.0.0/24", "via", "203.0.113.2", "dev", "pacqa", "onlink")
	run(t, "ip", "-n", name, "route", "add", "10.3.0.0/24", "via", "203.0.113.2", "dev", "pacqa", "onlink")
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// sendUDP sends n one-octet datagrams from 10.1.0.1 to dst:9 inside ns and
// returns the source port.
func sendUDP(t *testing.T, ns netns.NsHandle, dst string, n int) uint16 {
	t.Helper()
	var port uint16
	acqInNetns(t, ns, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		must(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{10, 1, 0, 1}}))
		sa, err := unix.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		port = uint16(sa.(*unix.SockaddrInet4).Port)
		to := &unix.SockaddrInet4{Port: 9, Addr: netip.MustParseAddr(dst).As4()}
		for range n {
			// The kernel drops it at the larval state and says so or
			// not (xfrm_larval_drop); either way nothing is sent.
			_ = unix.Sendto(fd, []byte{0}, 0, to)
		}
	})
	return port
}

// larvals returns the reqids of the kernel's larval (acquire) states: SPI
// 0, made when an acquire went out to a listener.
func larvals(t *testing.T, h *netlink.Handle) map[int]int {
	t.Helper()
	sts, err := h.XfrmStateList(netlink.FAMILY_V4)
	must(t, err)
	m := map[int]int{}
	for _, s := range sts {
		if s.Spi == 0 {
			m[s.Reqid]++
		}
	}
	return m
}

// TestXFRMAcquireInKernel is the live test: the backend in a scratch
// namespace with a trap for ReqID 7 (policies and endpoints, no SA), a UDP
// packet that matches it, and the kernel's XFRM_MSG_ACQUIRE becomes
// exactly one Acquire for ReqID 7 with the packet's flow. The kernel
// itself sends no second acquire while its larval state lives (30 s), so
// to check the backend's own once-a-second limit the test flushes the
// larval states: the next packets make the kernel send acquires again
// (the larval states come back, which needs a listener: the backend's
// socket is the only one), and within the second none becomes an Event;
// a packet through another daemon's policy (reqid 9, added with ip xfrm)
// never does; after the second, one more Acquire. Close stops the
// reader.
func TestXFRMAcquireInKernel(t *testing.T) {
	ns := acqNamespace(t, "live")
	name := fmt.Sprintf("pacq-%d-live", os.Getpid())
	var (
		mu     sync.Mutex
		events []Event
		got    = make(chan struct{}, 16)
	)
	onEvent := func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		got <- struct{}{}
	}
	count := func() (int, []Event) {
		mu.Lock()
		defer mu.Unlock()
		return len(events), append([]Event(nil), events...)
	}
	before := runtime.NumGoroutine()
	var x *XFRM
	acqInNetns(t, ns, func() {
		var err error
		x, err = NewXFRMWith(XFRMOptions{OnEvent: onEvent})
		must(t, err)
	})
	closed := false
	defer func() {
		if !closed {
			x.Close()
		}
	}()
	must(t, x.SetTunnelEndpoints(7, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), esp.Tunnel))
	must(t, x.AddPolicy(Policy{Local: MustSelector("10.1.0.0/24"), Remote: MustSelector("10.2.0.0/24"), ReqID: 7, Action: Protect}))
	pols, err := x.h.XfrmPolicyList(netlink.FAMILY_V4)
	must(t, err)
	if len(pols) != 3 || pols[0].Tmpls[0].Reqid != 7 {
		t.Fatalf("kernel policies %v", pols)
	}
	// Someone else's policy in the same namespace.
	run(t, "ip", "-n", name, "xfrm", "policy", "add", "src", "10.1.0.0/24", "dst", "10.3.0.0/24", "dir", "out",
		"tmpl", "src", "192.0.2.1", "dst", "192.0.2.3", "proto", "esp", "mode", "tunnel", "reqid", "9")
	wait := func(what string) {
		t.Helper()
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatalf("no Acquire within 5 s (%s)", what)
		}
	}

	sport := sendUDP(t, ns, "10.2.0.1", 1)
	wait("first packet")
	first := time.Now()
	want := Event{Kind: Acquire, Dir: Out, ReqID: 7,
		Packet: Flow{Src: netip.MustParseAddr("10.1.0.1"), Dst: netip.MustParseAddr("10.2.0.1"), Proto: unix.IPPROTO_UDP, SrcPort: sport, DstPort: 9}}
	if _, evs := count(); evs[0] != want {
		t.Errorf("event %+v\nwant  %+v", evs[0], want)
	}
	if l := larvals(t, x.h.(*netlink.Handle)); l[7] != 1 {
		t.Fatalf("larval states by reqid %v, want one for 7", l)
	}

	// Within the same second: the kernel's larval states flushed, more
	// packets on the trap (a new flow too) and through the other policy.
	run(t, "ip", "-n", name, "xfrm", "state", "flush")
	sendUDP(t, ns, "10.2.0.1", 3)
	sendUDP(t, ns, "10.2.0.2", 1)
	sendUDP(t, ns, "10.3.0.1", 2)
	l := larvals(t, x.h.(*netlink.Handle))
	if l[7] != 1 || l[9] != 1 {
		t.Fatalf("larval states by reqid %v: the kernel sent no acquire again for 7 and 9", l)
	}
	time.Sleep(200 * time.Millisecond) // the reader's turn
	if d := time.Since(first); d >= time.Second {
		t.Logf("the second round took %v, past the rate window: its check is skipped", d)
	} else if n, evs := count(); n != 1 {
		t.Fatalf("%d events within a second, want 1: %+v", n, evs)
	}

	// After the second: one more.
	time.Sleep(time.Until(first.Add(1100 * time.Millisecond)))
	run(t, "ip", "-n", name, "xfrm", "state", "flush")
	sendUDP(t, ns, "10.2.0.1", 1)
	wait("after the rate window")
	time.Sleep(200 * time.Millisecond)
	if n, evs := count(); n != 2 || evs[1].ReqID != 7 {
		t.Fatalf("events %+v, want two for reqid 7", evs)
	}

	must(t, x.Close())
	closed = true
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("goroutines: %d before, %d after Close", before, g)
	}
	// Closed: the kernel has no listener left, so a packet makes no
	// larval state (km_query fails) and no Event.
	run(t, "ip", "-n", name, "xfrm", "state", "flush")
	run(t, "ip", "-n", name, "xfrm", "policy", "add", "src", "10.1.0.0/24", "dst", "10.2.0.0/24", "dir", "out",
		"tmpl", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "mode", "tunnel", "reqid", "7")
	sendUDP(t, ns, "10.2.0.1", 1)
	time.Sleep(100 * time.Millisecond)
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_XFRM)
	must(t, err)
	defer h.Close()
	if l := larvals(t, h); len(l) != 0 {
		t.Errorf("larval states %v after Close: someone still listens", l)
	}
	if n, evs := count(); n != 2 {
		t.Fatalf("events after Close: %+v", evs)
	}
}

// TestXFRMAcquireClose: creating and closing backends with and without
// OnEvent leaves no goroutine behind, and one without OnEvent opens no
// acquire socket.
func TestXFRMAcquireClose(t *testing.T) {
	ns := acqNamespace(t, "close")
	before := runtime.NumGoroutine()
	for i := range 6 {
		var x *XFRM
		acqInNetns(t, ns, func() {
			var err error
			opts := XFRMOptions{}
			if i%2 == 0 {
				opts.OnEvent = func(Event) {}
			}
			x, err = NewXFRMWith(opts)
			must(t, err)
		})
		if (x.watch != nil) != (i%2 == 0) {
			t.Fatalf("round %d: acquire watch %v", i, x.watch)
		}
		must(t, x.Close())
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("goroutines: %d before, %d after", before, g)
	}
}
