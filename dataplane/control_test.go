package dataplane

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

func TestPolicyMostSpecificFirst(t *testing.T) {
	a, _ := NewMemBindPair(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	u := NewUserspace(a, Options{Workers: 1})
	defer u.Close()
	any4 := MustSelector("0.0.0.0/0")
	web := MustSelector("10.2.3.4/32")
	web.Proto, web.StartPort, web.EndPort = 6, 80, 80
	// Inserted least specific first, on purpose.
	for _, p := range []Policy{
		{Local: any4, Remote: MustSelector("10.0.0.0/8"), ReqID: 1},
		{Local: any4, Remote: MustSelector("10.2.0.0/16"), ReqID: 2},
		{Local: any4, Remote: web, ReqID: 3},
		{Local: any4, Remote: MustSelector("10.2.3.4/32"), ReqID: 4},
		{Local: MustSelector("10.9.0.0/16"), Remote: MustSelector("10.2.0.0/16"), ReqID: 5},
		{Local: any4, Remote: MustSelector("10.3.0.0/16"), ReqID: 6, Action: Discard},
	} {
		must(t, u.AddPolicy(p))
	}
	if err := u.AddPolicy(Policy{Local: any4, Remote: MustSelector("10.0.0.0/8"), ReqID: 9}); err == nil {
		t.Fatal("duplicate policy accepted")
	}
	ip := netip.MustParseAddr
	cases := []struct {
		f    Flow
		want uint32
	}{
		{Flow{Src: ip("10.1.0.1"), Dst: ip("10.2.3.4"), Proto: 6, DstPort: 80}, 3},
		{Flow{Src: ip("10.1.0.1"), Dst: ip("10.2.3.4"), Proto: 6, DstPort: 443}, 4},
		{Flow{Src: ip("10.1.0.1"), Dst: ip("10.2.3.4"), Proto: 17, DstPort: 80}, 4},
		{Flow{Src: ip("10.1.0.1"), Dst: ip("10.2.9.9"), Proto: 1}, 2},
		{Flow{Src: ip("10.9.0.1"), Dst: ip("10.2.9.9"), Proto: 1}, 5},
		{Flow{Src: ip("10.1.0.1"), Dst: ip("10.200.0.1"), Proto: 1}, 1},
		{Flow{Src: ip("10.1.0.1"), Dst: ip("10.3.0.1"), Proto: 1}, 6},
		{Flow{Src: ip("10.1.0.1"), Dst: ip("11.0.0.1"), Proto: 1}, 0},
		{Flow{Src: ip("fd00::1"), Dst: ip("fd00::2"), Proto: 1}, 0},
	}
	for _, c := range cases {
		p, ok := u.LookupPolicy(c.f)
		if (c.want == 0) != !ok || p.ReqID != c.want {
			t.Errorf("%v -> %v: ReqID %d ok %v, want %d", c.f.Src, c.f.Dst, p.ReqID, ok, c.want)
		}
	}
	must(t, u.DeletePolicy(Policy{Local: any4, Remote: web}))
	if p, _ := u.LookupPolicy(cases[0].f); p.ReqID != 4 {
		t.Fatalf("after delete: %d", p.ReqID)
	}
}

func TestAllocateSPI(t *testing.T) {
	a, _ := NewMemBindPair(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	u := NewUserspace(a, Options{Workers: 1})
	defer u.Close()
	seen := map[uint32]bool{}
	for range 2000 {
		spi, err := u.AllocateSPI()
		if err != nil || spi < 256 || seen[spi] {
			t.Fatalf("spi %#x err %v", spi, err)
		}
		seen[spi] = true
	}
}

// TestInboundSelectorsEnforced: B's inbound SA only admits 10.1.0.99, so
// A's packets from 10.1.0.1 authenticate but are dropped and counted.
func TestInboundSelectorsEnforced(t *testing.T) {
	c := defaultPair()
	a, b, _, _ := newPair(t, c, Options{})
	must(t, b.dp.DeleteSA(In, 0xa0000001))
	narrow := c
	narrow.aTS = "10.1.0.99/32"
	// Reinstall only B's inbound side with the narrow selectors; A keeps
	// its outbound SA (same SPI and keys).
	sa := SA{Dir: In, SPI: 0xa0000001, ReqID: 1, Mode: c.mode, Encap: true, Encr: c.encr,
		EncrKey: testKeys(0xa0000001, c.keyLen), Local: b.outer, Remote: a.outer,
		LocalTS: []Selector{MustSelector(c.bTS)}, RemoteTS: []Selector{MustSelector("10.1.0.99/32")}}
	must(t, b.dp.AddSA(sa))
	if n := udpEcho(t, a, b, 2); n != 0 {
		t.Fatalf("%d echoes crossed a selector violation", n)
	}
	in, _ := b.dp.Counters(In, 0xa0000001)
	if in.PolicyDrops < 2 || in.Packets < 2 || in.AuthFailures != 0 {
		t.Fatalf("B inbound counters %+v", in)
	}
}

// TestRekeyMakeBeforeBreak installs a second SA pair while traffic runs,
// checks the outbound switch, then deletes the old pair.
func TestRekeyMakeBeforeBreak(t *testing.T) {
	c := defaultPair()
	a, b, _, _ := newPair(t, c, Options{})
	if n := udpEcho(t, a, b, 2); n != 2 {
		t.Fatalf("before rekey: %d/2", n)
	}
	// New inbound SAs first, then outbound (RFC 7296 §2.8 ordering).
	installSA(t, c, a, b, 0xa0000002, 1, c.aTS, c.bTS)
	installSA(t, c, b, a, 0xb0000002, 1, c.bTS, c.aTS)
	if n := udpEcho(t, a, b, 3); n != 3 {
		t.Fatalf("during rekey: %d/3", n)
	}
	oldOut, _ := a.dp.Counters(Out, 0xa0000001)
	newOut, _ := a.dp.Counters(Out, 0xa0000002)
	if newOut.Packets < 3 || oldOut.Packets != 2 {
		t.Fatalf("outbound did not switch: old %d new %d", oldOut.Packets, newOut.Packets)
	}
	for _, d := range []struct {
		n   *node
		dir Direction
		spi uint32
	}{{a, Out, 0xa0000001}, {b, In, 0xa0000001}, {b, Out, 0xb0000001}, {a, In, 0xb0000001}} {
		must(t, d.n.dp.DeleteSA(d.dir, d.spi))
	}
	if _, err := a.dp.Counters(Out, 0xa0000001); err != ErrNoSA {
		t.Fatalf("deleted SA still there: %v", err)
	}
	httpGet(t, a, b, 256<<10)
}

// TestFallbackToNewest: when the current outbound SA of a ReqID is deleted
// while older ones remain (a rekey collision's redundant pair deleted
// after the winner was installed), traffic moves to the newest remaining
// one, never to an older one the peer is about to delete.
func TestFallbackToNewest(t *testing.T) {
	c := defaultPair()
	a, b, _, _ := newPair(t, c, Options{})
	installSA(t, c, a, b, 0xa0000002, 1, c.aTS, c.bTS) // the winner
	installSA(t, c, a, b, 0xa0000003, 1, c.aTS, c.bTS) // redundant, newest
	must(t, a.dp.DeleteSA(Out, 0xa0000003))
	for range 20 { // map order varies: try the fallback many times
		installSA(t, c, a, b, 0xa0000004, 1, c.aTS, c.bTS)
		must(t, a.dp.DeleteSA(Out, 0xa0000004))
		must(t, b.dp.DeleteSA(In, 0xa0000004))
	}
	before, _ := a.dp.Counters(Out, 0xa0000002)
	if n := udpEcho(t, a, b, 3); n != 3 {
		t.Fatalf("after the fallback: %d/3", n)
	}
	after, _ := a.dp.Counters(Out, 0xa0000002)
	old, _ := a.dp.Counters(Out, 0xa0000001)
	if after.Packets-before.Packets != 3 || old.Packets != 0 {
		t.Fatalf("fallback went to the wrong SA: newest remaining sent %d, oldest %d", after.Packets-before.Packets, old.Packets)
	}
}

func TestAcquireAndSeqExhausted(t *testing.T) {
	var mu sync.Mutex
	var events []Event
	opts := Options{OnEvent: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }}
	c := defaultPair()
	a, b, _, _ := newPair(t, c, opts)
	// A policy for a network with no SA yet: Acquire, once per second.
	must(t, a.dp.AddPolicy(Policy{Local: MustSelector(c.aTS), Remote: MustSelector("10.5.0.0/16"), ReqID: 42}))
	ping(t, a, netip.MustParseAddr("10.5.0.1"), 1, 200*time.Millisecond)
	// The outbound SA one packet before its soft limit: one event.
	out := a.dp.out[0xa0000001]
	out.SetLastSeq(out.SeqSoftLimit() - 1)
	if n := udpEcho(t, a, b, 2); n != 2 {
		t.Fatalf("echo at the soft limit: %d/2", n)
	}
	before, _ := a.dp.Counters(Out, 0xa0000001)
	// Two packets from its last sequence number: then it stops.
	out.SetLastSeq(1<<32 - 3)
	udpEcho(t, a, b, 4)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var acq, exh, soft int
	for _, e := range events {
		switch {
		case e.Kind == Acquire && e.ReqID == 42:
			acq++
		case e.Kind == SeqSoftLimit && e.SPI == 0xa0000001:
			soft++
		case e.Kind == SeqExhausted && e.SPI == 0xa0000001 && e.ReqID == 1:
			exh++
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	if acq != 1 || exh != 1 || soft != 1 {
		t.Fatalf("acquire %d, seq exhausted %d, soft limit %d; events %+v", acq, exh, soft, events)
	}
	if after, _ := a.dp.Counters(Out, 0xa0000001); after.Packets-before.Packets != 2 {
		t.Fatalf("packets before exhaustion: %d, want exactly the last 2", after.Packets-before.Packets)
	}
}

// TestReplayedPacketsDropped re-sends every ESP packet A emitted; B must
// drop each copy and count it, and traffic must still work.
func TestReplayedPacketsDropped(t *testing.T) {
	c := defaultPair()
	var mu sync.Mutex
	var captured [][]byte
	a, b, ba, _ := newPair(t, c, Options{})
	ba.Tap = func(p []byte, _, _ netip.AddrPort) {
		mu.Lock()
		captured = append(captured, append([]byte(nil), p...))
		mu.Unlock()
	}
	if n := udpEcho(t, a, b, 3); n != 3 {
		t.Fatalf("%d/3", n)
	}
	ba.Tap = nil
	mu.Lock()
	replay := captured
	mu.Unlock()
	must(t, ba.Send(replay, b.outer))
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if in, _ := b.dp.Counters(In, 0xa0000001); in.ReplayDrops == uint64(len(replay)) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	in, _ := b.dp.Counters(In, 0xa0000001)
	if in.ReplayDrops != uint64(len(replay)) || in.Packets != 3 {
		t.Fatalf("replayed %d packets: B inbound %+v", len(replay), in)
	}
}

func TestAddSAValidation(t *testing.T) {
	a, _ := NewMemBindPair(netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500"))
	var logged []KeyInfo
	u := NewUserspace(a, Options{Workers: 1, KeyLog: func(k KeyInfo) { logged = append(logged, k) }})
	defer u.Close()
	base := SA{Dir: Out, SPI: 0x1234, Local: netip.MustParseAddrPort("192.0.2.1:4500"),
		Remote: netip.MustParseAddrPort("192.0.2.2:4500"), Encap: true,
		Encr: wire.EncrAES_GCM_16, EncrKey: testKeys(1, 20)}
	bad := base
	bad.Encr, bad.EncrKey = wire.EncrAES_CBC, testKeys(1, 16)
	if err := u.AddSA(bad); err != ErrInsecure {
		t.Fatalf("CBC without integrity: %v", err)
	}
	bad = base
	bad.Remote = netip.AddrPort{}
	if err := u.AddSA(bad); err == nil {
		t.Fatal("SA without peer accepted")
	}
	must(t, u.AddSA(base))
	if err := u.AddSA(base); err == nil {
		t.Fatal("duplicate SPI accepted")
	}
	if len(logged) != 1 || logged[0].SPI != 0x1234 || len(logged[0].EncrKey) != 20 ||
		logged[0].Src != base.Local.Addr() || logged[0].Encr != wire.EncrAES_GCM_16 {
		t.Fatalf("key log %+v", logged)
	}
	k, err := u.SAKeys(Out, 0x1234)
	if err != nil || string(k.EncrKey) != string(testKeys(1, 20)) {
		t.Fatalf("SAKeys %v %v", k, err)
	}
	must(t, u.UpdateSA(Out, 0x1234, base.Local, netip.MustParseAddrPort("192.0.2.2:61000"), true))
	if u.out[0x1234].endpoint().Port() != 61000 {
		t.Fatal("UpdateSA did not move the endpoint")
	}
	deleted := u.out[0x1234].Outbound
	must(t, u.DeleteSA(Out, 0x1234))
	zeroed := false
	for deadline := time.Now().Add(2 * time.Second); !zeroed && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		zeroed = !bytes.ContainsFunc(deleted.Keys().EncrKey, func(r rune) bool { return r != 0 })
	}
	if !zeroed {
		t.Fatal("keys of a deleted SA were not zeroed")
	}
	if err := u.DeleteSA(Out, 0x1234); err != ErrNoSA {
		t.Fatalf("second delete: %v", err)
	}
}
