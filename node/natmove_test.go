package node

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// dpRecorder wraps a node's data plane and records where its SAs point:
// the outer remote address of every SA added or updated, and the updates.
type dpRecorder struct {
	dataplane.DataPlane
	mu      sync.Mutex
	remote  map[dpKey]netip.AddrPort
	updates map[dpKey]int
}

type dpKey struct {
	dir dataplane.Direction
	spi uint32
}

func recordDataPlane(t *testing.T, n *Node) *dpRecorder {
	t.Helper()
	r := &dpRecorder{remote: map[dpKey]netip.AddrPort{}, updates: map[dpKey]int{}}
	if err := n.do(func(time.Time) { r.DataPlane, n.dp = n.dp, r }); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *dpRecorder) AddSA(sa dataplane.SA) error {
	err := r.DataPlane.AddSA(sa)
	if err == nil {
		r.mu.Lock()
		r.remote[dpKey{sa.Dir, sa.SPI}] = sa.Remote
		r.mu.Unlock()
	}
	return err
}

func (r *dpRecorder) UpdateSA(dir dataplane.Direction, spi uint32, local, remote netip.AddrPort, encap bool) error {
	err := r.DataPlane.UpdateSA(dir, spi, local, remote, encap)
	if err == nil {
		r.mu.Lock()
		r.remote[dpKey{dir, spi}] = remote
		r.updates[dpKey{dir, spi}]++
		r.mu.Unlock()
	}
	return err
}

func (r *dpRecorder) at(dir dataplane.Direction, spi uint32) (netip.AddrPort, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remote[dpKey{dir, spi}], r.updates[dpKey{dir, spi}]
}

// udpNAT is a NAT box in front of a's NAT-T socket, in user space on
// 127.0.0.1: a sends IKE and ESP in UDP to its front socket; it passes them
// on to b from its mapping socket, and what b sends to the mapping back to
// a from the front socket. remap replaces the mapping with one on a new
// port and closes the old one, as a NAT box that rebooted does: what b
// still sends to the old port is lost.
type udpNAT struct {
	t     *testing.T
	front *net.UDPConn
	to    netip.AddrPort // b's NAT-T socket

	mu      sync.Mutex
	mapping *net.UDPConn
	inside  netip.AddrPort // a's NAT-T socket, learned from its datagrams
	wg      sync.WaitGroup
}

func newUDPNAT(t *testing.T, to netip.AddrPort) *udpNAT {
	t.Helper()
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	n := &udpNAT{t: t, front: front, to: to}
	n.remap()
	n.wg.Add(1)
	go n.outbound()
	t.Cleanup(func() {
		n.front.Close()
		n.mu.Lock()
		n.mapping.Close()
		n.mu.Unlock()
		n.wg.Wait()
	})
	return n
}

func (n *udpNAT) frontPort() uint16 { return uint16(n.front.LocalAddr().(*net.UDPAddr).Port) }

// mapped is the address b sees a at.
func (n *udpNAT) mapped() netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mapping.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (n *udpNAT) remap() {
	n.t.Helper()
	m, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		n.t.Fatal(err)
	}
	n.mu.Lock()
	old := n.mapping
	n.mapping = m
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
	n.wg.Add(1)
	go n.inbound(m)
}

// outbound passes a's datagrams to b through the current mapping.
func (n *udpNAT) outbound() {
	defer n.wg.Done()
	buf := make([]byte, 65535)
	for {
		k, from, err := n.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		n.mu.Lock()
		n.inside = from
		m := n.mapping
		n.mu.Unlock()
		_, _ = m.WriteToUDPAddrPort(buf[:k], n.to)
	}
}

// inbound passes b's datagrams to one mapping back to a, until it closes.
func (n *udpNAT) inbound(m *net.UDPConn) {
	defer n.wg.Done()
	buf := make([]byte, 65535)
	for {
		k, from, err := m.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		n.mu.Lock()
		inside := n.inside
		n.mu.Unlock()
		if from != n.to || !inside.IsValid() {
			continue
		}
		_, _ = n.front.WriteToUDPAddrPort(buf[:k], inside)
	}
}

// TestNATMappingChangeMovesESP: a behind a NAT (UDP encapsulation forced,
// so b sees a as behind one; IKE_SA_INIT goes straight to b's IKE port so
// that b does not think itself behind one), b not. The NAT reboots and
// maps a to a new port; a's next IKE message (a liveness check) brings b
// there, and b's ESP with it: b's echo answers reach a again, through the
// new mapping, with b's data-plane SAs moved by UpdateSA.
//
//	a IKE port ─────────── IKE_SA_INIT ──────────→ b IKE port
//	a NAT-T → NAT front ─(mapping :M1)─ IKE_AUTH → b NAT-T   b: peer at :M1
//	a ══ ESP echo ══ NAT ══ :M1 ══ b                          both ways
//	(the NAT reboots: a now maps to :M2, :M1 is gone)
//	a ══ ESP ══ NAT ══ :M2 ══→ b; b's answers to :M1 are lost
//	a ─ INFORMATIONAL {} ─ NAT ─ :M2 ─→ b: follows to :M2, OpUpdate → UpdateSA(out, in)
//	a ←══ ESP echo answers ══ :M2 ══ b
func TestNATMappingChangeMovesESP(t *testing.T) {
	pa, pb, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := pa.Config.Connections[0]
	ca.LocalPort, ca.RemotePort = pa.Config.Daemon.IKEPort, pb.Config.Daemon.IKEPort
	ca.DPDDelay = time.Second
	// Made first, so that it closes last: the nodes' Deletes go through it.
	nat := newUDPNAT(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), pb.Config.Daemon.NATTPort))
	a, b := startNodes(t, pa, pb)
	// After NAT detection a moves to the NAT-T ports: its peer's is the
	// NAT's front (the node sets the peer's NAT-T port only for
	// connections that start there).
	if err := a.do(func(time.Time) { a.current().conns["b"].RemoteNATTPort = nat.frontPort() }); err != nil {
		t.Fatal(err)
	}
	rec := recordDataPlane(t, b)

	nsA := attachEcho(t, a, b, pa.Addr, pb.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	conn, err := nsA.DialUDP(nil, &net.UDPAddr{IP: net.ParseIP(pb.Addr), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// echoed sends pings for up to d and reports whether one came back.
	echoed := func(d time.Duration) bool {
		buf := make([]byte, 64)
		for end := time.Now().Add(d); time.Now().Before(end); {
			if _, err := conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if n, err := conn.Read(buf); err == nil && string(buf[:n]) == "ping" {
				return true
			} else if err != nil && !isTimeout(err) {
				t.Fatal(err)
			}
		}
		return false
	}

	first := nat.mapped()
	sb, err := b.Sessions()
	if err != nil || len(sb) != 1 || len(sb[0].Children) != 1 {
		t.Fatalf("b sessions %+v %v", sb, err)
	}
	ch := sb[0].Children[0]
	inSPI, outSPI := parseSPI(t, ch.InSPI), parseSPI(t, ch.OutSPI)
	if sb[0].Remote != first.String() || !sb[0].NATT {
		t.Fatalf("b sees a at %s (NAT-T %v), want %v", sb[0].Remote, sb[0].NATT, first)
	}
	if r, _ := rec.at(dataplane.Out, outSPI); r != first {
		t.Fatalf("b's outbound SA goes to %v, want %v", r, first)
	}
	if !echoed(3 * time.Second) {
		t.Fatal("no echo through the first mapping")
	}

	nat.remap()
	moved := nat.mapped()
	if !echoed(8 * time.Second) {
		t.Fatalf("no echo after the NAT mapped a to %v", moved)
	}
	for _, dir := range []dataplane.Direction{dataplane.Out, dataplane.In} {
		spi := outSPI
		if dir == dataplane.In {
			spi = inSPI
		}
		if r, n := rec.at(dir, spi); r != moved || n != 1 {
			t.Errorf("b's SA dir %v %08x: remote %v after %d updates, want %v after 1", dir, spi, r, n, moved)
		}
	}
	if sb, err := b.Sessions(); err != nil || len(sb) != 1 || sb[0].Remote != moved.String() {
		t.Fatalf("b's IKE SA after the move: %+v %v", sb, err)
	}
	// a, whose peer is not behind a NAT, stayed with the NAT's front.
	if sa, err := a.Sessions(); err != nil || len(sa) != 1 || sa[0].Remote != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), nat.frontPort()).String() {
		t.Fatalf("a's IKE SA: %+v %v", sa, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func parseSPI(t *testing.T, s string) uint32 {
	t.Helper()
	var v uint32
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			t.Fatalf("SPI %q", s)
		}
	}
	return v
}

// TestUpdateParkedAndGonePairs: OpUpdate moves an active pair's two SAs; a
// parked outbound SA (DeferOut) is not in the data plane, so its copy
// moves and it is activated at the new address; an outbound SA removed for
// our Delete (outGone) stays gone, its inbound SA moves.
func TestUpdateParkedAndGonePairs(t *testing.T) {
	a, _, _, _ := startPair(t, LoopbackOptions{})
	rec := recordDataPlane(t, a)
	lo := netip.MustParseAddrPort("127.0.0.1:4500")
	moved := netip.MustParseAddrPort("127.0.0.1:40000")
	pf := netip.MustParsePrefix("10.2.0.0/24")
	op := func(kind ike.ChildOpKind, in, out uint32, deferOut bool) ike.ChildOp {
		key := make([]byte, 36)
		key[0] = byte(in)
		remote := lo
		if kind == ike.OpUpdate {
			remote = moved
		}
		return ike.ChildOp{Kind: kind, Name: "net", InSPI: in, OutSPI: out, Mode: ike.ModeTunnel, Encr: wire.EncrAES_GCM_16,
			EncrKeyBits: 256, EncrIn: append([]byte(nil), key...), EncrOut: append([]byte(nil), key...),
			LocalTS:  []ike.TrafficSelector{{Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.0.255"), EndPort: 0xffff}},
			RemoteTS: []ike.TrafficSelector{{Start: pf.Addr(), End: lastAddr(pf), EndPort: 0xffff}},
			Local:    lo, Remote: remote, UDPEncap: true, DeferOut: deferOut}
	}
	if err := a.do(func(now time.Time) {
		// 1: active, 2: parked successor, 3: being deleted (outGone).
		for _, o := range []ike.ChildOp{
			op(ike.OpInstall, 0x1003, 0x2003, false), op(ike.OpInstall, 0x1001, 0x2001, false),
			op(ike.OpInstall, 0x1002, 0x2002, true), op(ike.OpDeactivate, 0x1003, 0x2003, false),
			op(ike.OpUpdate, 0x1001, 0x2001, false), op(ike.OpUpdate, 0x1002, 0x2002, false), op(ike.OpUpdate, 0x1003, 0x2003, false),
		} {
			a.apply(now, &o)
		}
		if len(a.parked) != 1 || a.children[0x1002].pendingOut == nil || a.children[0x1002].pendingOut.Remote != moved {
			t.Errorf("parked copy not moved: pending %d", len(a.parked)) // not Fatal: this is the node's loop
		}
		// Our Delete of pair 1 activates the parked pair: at the new address.
		d := op(ike.OpDeactivate, 0x1001, 0x2001, false)
		a.apply(now, &d)
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir     dataplane.Direction
		spi     uint32
		remote  netip.AddrPort
		updates int
	}{
		{dataplane.Out, 0x2001, moved, 1}, {dataplane.In, 0x1001, moved, 1},
		{dataplane.Out, 0x2002, moved, 0}, {dataplane.In, 0x1002, moved, 1}, // added at the new address on activation
		{dataplane.Out, 0x2003, lo, 0}, {dataplane.In, 0x1003, moved, 1},
	} {
		if r, n := rec.at(c.dir, c.spi); r != c.remote || n != c.updates {
			t.Errorf("SA dir %v %08x: remote %v after %d updates, want %v after %d", c.dir, c.spi, r, n, c.remote, c.updates)
		}
	}
	if _, err := a.dp.Counters(dataplane.Out, 0x2002); err != nil {
		t.Errorf("parked pair not activated: %v", err)
	}
}

// TestInstallFailureReleasesReqID: an install that fails (inbound or
// outbound SA refused) does not keep the ReqID it was given, while the
// ReqID of a pair that did install stays.
func TestInstallFailureReleasesReqID(t *testing.T) {
	a, _, _, _ := startPair(t, LoopbackOptions{})
	lo := netip.MustParseAddrPort("127.0.0.1:4500")
	op := func(in, out uint32, remote string, peer netip.AddrPort) ike.ChildOp {
		pf := netip.MustParsePrefix(remote)
		return ike.ChildOp{Kind: ike.OpInstall, Name: "net", InSPI: in, OutSPI: out, Mode: ike.ModeTunnel, Encr: wire.EncrAES_GCM_16,
			EncrKeyBits: 256, EncrIn: make([]byte, 36), EncrOut: make([]byte, 36),
			LocalTS:  []ike.TrafficSelector{{Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.0.255"), EndPort: 0xffff}},
			RemoteTS: []ike.TrafficSelector{{Start: pf.Addr(), End: lastAddr(pf), EndPort: 0xffff}},
			Local:    lo, Remote: peer, UDPEncap: true}
	}
	ids := func() int { return len(a.reqIDs) + len(a.reqConn) + len(a.reqKey) + len(a.reqUse) }
	if err := a.do(func(now time.Time) {
		base := ids()
		ok := op(0x1001, 0x2001, "10.2.0.0/24", lo)
		a.apply(now, &ok)
		withOne := ids()
		// Errorf, not Fatalf: this runs on the node's loop.
		if withOne == base || len(a.children) != 1 {
			t.Errorf("install did not take a ReqID: %d -> %d", base, withOne)
			return
		}
		// No peer address: the inbound SA is refused.
		noPeer := op(0x1002, 0x2002, "10.9.0.0/24", netip.AddrPort{})
		a.apply(now, &noPeer)
		// The outbound SPI is taken: the outbound SA is refused.
		dupOut := op(0x1003, 0x2001, "10.8.0.0/24", lo)
		a.apply(now, &dupOut)
		if len(a.children) != 1 || ids() != withOne {
			t.Errorf("failed installs left %d pairs and ReqID entries %d, want 1 and %d", len(a.children), ids(), withOne)
		}
		if _, err := a.dp.Counters(dataplane.In, 0x1003); err == nil {
			t.Error("inbound SA of the failed install left behind")
		}
		del := op(0x1001, 0x2001, "10.2.0.0/24", lo)
		del.Kind = ike.OpDelete
		a.apply(now, &del)
		if ids() != base {
			t.Errorf("ReqID entries %d after the delete, want %d", ids(), base)
		}
	}); err != nil {
		t.Fatal(err)
	}
}
