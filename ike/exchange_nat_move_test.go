package ike

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Exchange tests for a NAT mapping that changes under an established SA
// (RFC 7296 §2.23): the side that is not behind the NAT follows the peer
// to the address and port of its latest valid message and moves its Child
// SAs with it (OpUpdate); the side behind the NAT never follows.

// natBox rewrites the source of A's datagrams (A behind it) and the
// destination of those sent to A's public mapping.
type natBox struct {
	t              *testing.T
	inside, public netip.Addr
	ports          map[uint16]uint16 // A's port inside -> port on the public side
}

func (n *natBox) out(d Datagram) Datagram {
	d.Src = netip.AddrPortFrom(n.public, n.ports[d.Src.Port()])
	return d
}

func (n *natBox) in(d Datagram) Datagram {
	n.t.Helper()
	for in, pub := range n.ports {
		if d.Dst == netip.AddrPortFrom(n.public, pub) {
			d.Dst = netip.AddrPortFrom(n.inside, in)
			return d
		}
	}
	n.t.Fatalf("no NAT mapping for %v", d.Dst)
	return d
}

// natMovePair establishes gw (two children, liveness checks every 30 s on
// A) with A at 10.0.0.1 behind a NAT that maps it to 203.0.113.9:3000
// (port 500) and :3001 (port 4500):
//
//	A 10.0.0.1:500 -NAT-> :3000   IKE_SA_INIT, N(NAT_D)x2  -->  B 198.51.100.2:500
//	                              <--  IKE_SA_INIT, N(NAT_D)x2   (B: peer behind NAT)
//	A 10.0.0.1:4500 -NAT-> :3001  IKE_AUTH (child gw-child)  -->  B:4500
//	                              <--  IKE_AUTH
//	A                             CREATE_CHILD_SA (gw-web)  -->
//	                              <--  CREATE_CHILD_SA
func natMovePair(t *testing.T) (*pair, *natBox, *SA, *SA) {
	t.Helper()
	inside := netip.MustParseAddrPort("10.0.0.1:500")
	ca := twoChildConn(nil)
	ca.Local = inside
	ca.DPDDelay = 30 * time.Second
	cb := mirror(ca)
	cb.Remote = netip.AddrPort{}
	cb.DPDDelay = 0
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	nat := &natBox{t: t, inside: inside.Addr(), public: netip.MustParseAddr("203.0.113.9"),
		ports: map[uint16]uint16{500: 3000, 4500: 3001}}
	spi, req := p.initiate("gw")
	auth := p.exchange(p.a, nat.in(p.exchange(p.b, nat.out(req))))
	ccsa := p.exchange(p.a, nat.in(p.exchange(p.b, nat.out(auth))))
	p.deliver(p.a, nat.in(p.exchange(p.b, nat.out(ccsa))))
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(asa.spiR)
	if !asa.Established() || !bsa.Established() || len(asa.children) != 2 || len(bsa.children) != 2 {
		t.Fatalf("not established with two children: A %v %d, B %v %d", asa.Established(), len(asa.children), bsa.Established(), len(bsa.children))
	}
	if !asa.natLocal || asa.natRemote || !bsa.natRemote || bsa.natLocal {
		t.Fatalf("NAT detection: A local %v remote %v, B local %v remote %v", asa.natLocal, asa.natRemote, bsa.natLocal, bsa.natRemote)
	}
	if want := netip.MustParseAddrPort("203.0.113.9:3001"); bsa.remote != want {
		t.Fatalf("B's peer %v, want %v", bsa.remote, want)
	}
	return p, nat, asa, bsa
}

// dpdNow has A send its next liveness check and returns it.
func (p *pair) dpdNow() Datagram {
	p.t.Helper()
	d, ok := p.a.ep.NextDeadline()
	if !ok {
		p.t.Fatal("A has no timer")
	}
	p.now = d
	return p.one(p.tick(p.a))
}

// TestNATMappingChangeFollowed: the NAT in front of A loses its mapping and
// makes a new one on another port. B, not behind a NAT, follows A there on
// A's next valid request, once, and moves both Child SAs; a forged message
// from yet another port and a replay from the old one move nothing; A
// ignores a B that appears elsewhere (A is behind the NAT).
//
//	(NAT reboots: 10.0.0.1:4500 now maps to :3999)
//	A -NAT-> :3999   INFORMATIONAL SK{}  (mid 2)  -->  B: moves to :3999, OpUpdate x2
//	                 <--  SK{} to :3999
//	A -NAT-> :3999   INFORMATIONAL SK{}  (mid 3)  -->  B: already there, no OpUpdate
//	                 <--  SK{}
//	?   from :4444   INFORMATIONAL SK{} bad ICV (mid 4)  -->  B drops it, stays
//	?   from :3001   A's mid-3 request again (replay)  -->  B answers from its cache, stays
//	B                INFORMATIONAL SK{D(gw-web)} to :3999  -->  A (seen from 198.51.100.99:4500)
//	                 <--  SK{D}                                 A stays with B at 198.51.100.2:4500
func TestNATMappingChangeFollowed(t *testing.T) {
	p, nat, asa, bsa := natMovePair(t)
	moved := netip.MustParseAddrPort("203.0.113.9:3999")
	nat.ports[4500] = 3999

	bout := p.deliver(p.b, nat.out(p.dpdNow()))
	if len(bout.Datagrams) != 1 || bout.Datagrams[0].Dst != moved {
		t.Fatalf("B's answer went to %+v, want %v", bout.Datagrams, moved)
	}
	up := ops(bout, OpUpdate)
	if len(up) != 2 {
		t.Fatalf("B: %d OpUpdate, want one per Child SA (2): %+v", len(up), bout.Ops)
	}
	var moves []uint32
	for _, o := range up {
		if o.Remote != moved || o.Local != netip.AddrPortFrom(addrB.Addr(), 4500) || !o.UDPEncap || o.SPIi != bsa.spiI || o.SPIr != bsa.spiR {
			t.Errorf("OpUpdate %08x: %v -> %v encap %v", o.InSPI, o.Local, o.Remote, o.UDPEncap)
		}
		moves = append(moves, o.InSPI)
		if c := bsa.childByInSPI(o.InSPI); c == nil || c.OutSPI != o.OutSPI {
			t.Errorf("OpUpdate for a pair B does not have: in %08x out %08x", o.InSPI, o.OutSPI)
		}
	}
	if slices.Sort(moves); moves[0] == moves[1] {
		t.Errorf("both updates for one pair: %08x", moves)
	}
	if l, r := bsa.Addrs(); r != moved || l.Port() != 4500 {
		t.Fatalf("B's IKE SA at %v -> %v", l, r)
	}
	if o := p.deliver(p.a, nat.in(bout.Datagrams[0])); len(o.Datagrams)+len(ops(o, OpUpdate)) != 0 {
		t.Fatalf("A: %+v", o)
	}

	// Once moved, more messages from the same place change nothing.
	p.now = p.now.Add(31 * time.Second)
	again := nat.out(p.one(p.tick(p.a)))
	bout = p.deliver(p.b, again)
	if len(ops(bout, OpUpdate)) != 0 || len(bout.Datagrams) != 1 || bout.Datagrams[0].Dst != moved {
		t.Fatalf("second message from the new port: %+v", bout)
	}
	p.deliver(p.a, nat.in(bout.Datagrams[0]))

	// A message that fails its integrity check, from another port, with
	// the next message ID: dropped, B stays.
	p.now = p.now.Add(31 * time.Second)
	forged := nat.out(p.one(p.tick(p.a)))
	forged.Data = slices.Clone(forged.Data)
	forged.Data[len(forged.Data)-1] ^= 0x80
	forged.Src = netip.MustParseAddrPort("203.0.113.9:4444")
	icv := p.b.ep.Stats().DroppedICV
	bout = p.deliver(p.b, forged)
	if len(bout.Datagrams)+len(bout.Ops) != 0 || p.b.ep.Stats().DroppedICV != icv+1 {
		t.Fatalf("B took a message with a bad ICV: %+v", bout)
	}
	if _, r := bsa.Addrs(); r != moved {
		t.Fatalf("a bad ICV moved B to %v", r)
	}
	// An old valid request replayed from the old mapping: answered from
	// the cache (RFC 7296 §2.1), not taken, so B does not go back.
	replay := again
	replay.Src = netip.MustParseAddrPort("203.0.113.9:3001")
	bout = p.deliver(p.b, replay)
	if len(bout.Datagrams) != 1 || len(bout.Ops) != 0 {
		t.Fatalf("replay: %+v", bout)
	}
	if _, r := bsa.Addrs(); r != moved {
		t.Fatalf("a replayed request moved B back to %v", r)
	}

	// B's own requests go to the new mapping. A, behind the NAT, does
	// not follow B to where B's message seems to come from.
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{bsa.children[1].InSPI}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	breq := p.one(&p.b.out)
	if breq.Dst != moved {
		t.Fatalf("B's request went to %v, want %v", breq.Dst, moved)
	}
	breq = nat.in(breq)
	breq.Src = netip.MustParseAddrPort("198.51.100.99:4500")
	aout := p.deliver(p.a, breq)
	if len(ops(aout, OpUpdate)) != 0 || len(ops(aout, OpDelete)) != 1 {
		t.Fatalf("A: %+v", aout.Ops)
	}
	if _, r := asa.Addrs(); r != netip.AddrPortFrom(addrB.Addr(), 4500) {
		t.Fatalf("A (behind the NAT) followed B to %v", r)
	}
	// The responses: A answers where the request came from; B takes it.
	ares := nat.out(p.one(aout))
	ares.Dst = netip.AddrPortFrom(addrB.Addr(), 4500)
	if bout = p.deliver(p.b, ares); len(ops(bout, OpDelete)) != 1 || len(ops(bout, OpUpdate)) != 0 {
		t.Fatalf("B: %+v", bout.Ops)
	}
	if len(asa.children) != 1 || len(bsa.children) != 1 {
		t.Fatalf("children A %d B %d", len(asa.children), len(bsa.children))
	}
}

// TestNATMappingChangeOnResponse: B follows A on A's responses too. B
// sends a request; the NAT changed A's mapping; A's answer comes from the
// new port and B moves there (one OpUpdate per pair), then sends its next
// request there.
//
//	B  INFORMATIONAL SK{D(gw-web)} to :3001  -->  A (the mapping still holds)
//	(the NAT loses it: 10.0.0.1:4500 now maps to :3002)
//	                             <--  SK{D} from :3002: B moves (OpUpdate x2), then OpDelete
//	B  INFORMATIONAL SK{D(gw-child)} to :3002  -->
func TestNATMappingChangeOnResponse(t *testing.T) {
	p, nat, _, bsa := natMovePair(t)
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{bsa.children[1].InSPI}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	breq := nat.in(p.one(&p.b.out))
	nat.ports[4500] = 3002
	aout := p.deliver(p.a, breq)
	bout := p.deliver(p.b, nat.out(p.one(aout)))
	moved := netip.MustParseAddrPort("203.0.113.9:3002")
	up := ops(bout, OpUpdate)
	if len(up) != 2 || up[0].Remote != moved || up[1].Remote != moved {
		t.Fatalf("B's updates on A's response: %+v", bout.Ops)
	}
	// The updates come before the delete the response completes, and
	// name the pair being deleted too (its inbound SA is still there).
	if len(bout.Ops) != 3 || bout.Ops[2].Kind != OpDelete {
		t.Fatalf("B's operations: %+v", bout.Ops)
	}
	if _, r := bsa.Addrs(); r != moved {
		t.Fatalf("B at %v, want %v", r, moved)
	}
	p.now = p.now.Add(time.Second)
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{bsa.children[0].InSPI}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	if d := p.one(&p.b.out); d.Dst != moved {
		t.Fatalf("B's next request went to %v", d.Dst)
	}
}

// TestNoNATNoMove: with no NAT detected nobody moves (no MOBIKE here):
// A's valid request from another port is answered there, but B's SA and
// Child SAs stay where they were; so does A when B's answer or request
// comes from elsewhere.
//
//	A 192.0.2.1:5000 (not A's address)  INFORMATIONAL SK{}  -->  B answers to :5000, stays
//	B 198.51.100.2:500  INFORMATIONAL SK{D} (seen from :600)  -->  A answers, stays
func TestNoNATNoMove(t *testing.T) {
	ca := twoChildConn(nil)
	ca.DPDDelay = 30 * time.Second
	cb := mirror(ca)
	cb.DPDDelay = 0
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, aout, _ := p.establish("gw")
	p.deliver(p.a, p.exchange(p.b, p.one(aout)))
	asa := p.a.ep.SA(spi)
	bsa := p.b.ep.SA(asa.spiR)
	if asa.NATDetected() || bsa.NATDetected() || len(bsa.children) != 2 {
		t.Fatalf("NAT detected %v/%v, %d children", asa.NATDetected(), bsa.NATDetected(), len(bsa.children))
	}
	elsewhere := netip.MustParseAddrPort("192.0.2.1:5000")
	req := p.dpdNow()
	req.Src = elsewhere
	bout := p.deliver(p.b, req)
	if len(bout.Datagrams) != 1 || bout.Datagrams[0].Dst != elsewhere || len(bout.Ops) != 0 {
		t.Fatalf("B: %+v", bout)
	}
	if l, r := bsa.Addrs(); l != addrB || r != addrA {
		t.Fatalf("B moved to %v -> %v without a NAT", l, r)
	}
	resp := bout.Datagrams[0]
	resp.Src, resp.Dst = netip.MustParseAddrPort("198.51.100.2:600"), addrA
	if o := p.deliver(p.a, resp); len(o.Ops)+len(o.Datagrams) != 0 {
		t.Fatalf("A on B's answer: %+v", o)
	}
	p.b.out.Reset()
	if err := p.b.ep.DeleteChild(p.now, bsa.ourSPI(), []uint32{bsa.children[1].InSPI}, &p.b.out); err != nil {
		t.Fatal(err)
	}
	breq := p.one(&p.b.out)
	if breq.Dst != addrA {
		t.Fatalf("B's request went to %v", breq.Dst)
	}
	breq.Src = netip.MustParseAddrPort("198.51.100.2:600")
	aout = p.deliver(p.a, breq)
	if len(ops(aout, OpUpdate)) != 0 || len(ops(aout, OpDelete)) != 1 {
		t.Fatalf("A: %+v", aout.Ops)
	}
	if l, r := asa.Addrs(); l != addrA || r != addrB {
		t.Fatalf("A moved to %v -> %v without a NAT", l, r)
	}
}

// TestWildcardResponderMovesToNATTPort: a responder whose socket is bound
// to the wildcard address learns only the destination port of what it
// receives (the address is unspecified). When A, behind a NAT, moves to
// the NAT-T port for IKE_AUTH, B must still move its own side to 4500:
// otherwise its Child SAs carry ESP in UDP from port 500 and its requests
// leave without the non-ESP marker, both dropped by A's NAT or by A.
//
//	A 10.0.0.1:500 -NAT-> :3000   IKE_SA_INIT  -->  B 0.0.0.0:500
//	                              <--  IKE_SA_INIT
//	A 10.0.0.1:4500 -NAT-> :3001  IKE_AUTH  -->  B 0.0.0.0:4500 (local port now 4500)
//	                              <--  IKE_AUTH from B's port 4500; Child SA local port 4500
func TestWildcardResponderMovesToNATTPort(t *testing.T) {
	inside := netip.MustParseAddrPort("10.0.0.1:500")
	ca := twoChildConn(nil)
	ca.Local = inside
	cb := mirror(ca)
	cb.Remote, cb.Local = netip.AddrPort{}, netip.AddrPort{}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	nat := &natBox{t: t, inside: inside.Addr(), public: netip.MustParseAddr("203.0.113.9"),
		ports: map[uint16]uint16{500: 3000, 4500: 3001}}
	wild := func(d Datagram) Datagram {
		d.Dst = netip.AddrPortFrom(netip.IPv4Unspecified(), d.Dst.Port())
		return d
	}
	_, req := p.initiate("gw")
	auth := p.exchange(p.a, nat.in(p.exchange(p.b, wild(nat.out(req)))))
	if auth.Src.Port() != 4500 {
		t.Fatalf("A sent IKE_AUTH from %v, want its NAT-T port", auth.Src)
	}
	bout := p.deliver(p.b, wild(nat.out(auth)))
	if len(bout.Datagrams) != 1 || bout.Datagrams[0].Src.Port() != 4500 || bout.Datagrams[0].Dst != netip.MustParseAddrPort("203.0.113.9:3001") {
		t.Fatalf("B's IKE_AUTH answer: %+v, want from port 4500 to 203.0.113.9:3001", bout.Datagrams)
	}
	inst := ops(bout, OpInstall)
	if len(inst) != 1 || inst[0].Local.Port() != 4500 || !inst[0].UDPEncap {
		for _, o := range inst {
			t.Logf("install %08x: %v -> %v encap %v", o.InSPI, o.Local, o.Remote, o.UDPEncap)
		}
		t.Fatalf("B's Child SA installs: %d, want one with local port 4500 and UDP encapsulation", len(inst))
	}
}
