package ike

import (
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// TestCookie: with the threshold at 0 the responder always wants a cookie
// (RFC 7296 §2.6).
//
//	A: HDR(SPIi, 0), SA, KEi, Ni             -->
//	B (no state, no KE):                     <--  HDR(SPIi, 0), N(COOKIE)
//	A: HDR(SPIi, 0), N(COOKIE), SA, KEi, Ni  -->
//	B:                                       <--  HDR(SPIi, SPIr), SA, KEr, Nr
func TestCookie(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	p.b.ep.cfg.CookieThreshold = 0
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	m, ps := outerPayloads(t, resp)
	if len(ps) != 1 || !hasNotify(ps, wire.COOKIE) || m.Header.SPIr != 0 {
		t.Fatalf("want lone N(COOKIE), got %v", ps)
	}
	if p.b.ep.Len() != 0 || p.b.ep.HalfOpen() != 0 {
		t.Fatal("responder kept state before the cookie came back")
	}
	retry := p.exchange(p.a, resp)
	m, ps = outerPayloads(t, retry)
	if n, ok := ps[0].(*wire.Notify); !ok || n.NotifyType != wire.COOKIE || m.Header.SPIi != spi || m.Header.MessageID != 0 {
		t.Fatalf("retry must start with N(COOKIE): %v", ps)
	}
	resp = p.exchange(p.b, retry)
	if chosen := chosenIKE(t, resp); len(chosen) == 0 || p.b.ep.HalfOpen() != 1 {
		t.Fatal("cookie not accepted")
	}
	authResp := p.exchange(p.b, p.exchange(p.a, resp))
	if out := p.deliver(p.a, authResp); len(events(out, EventIKEUp)) != 1 {
		t.Fatalf("not established: %+v", out.Events)
	}
	if st := p.b.ep.Stats(); st.CookiesSent != 1 {
		t.Errorf("cookies sent %d", st.CookiesSent)
	}
}

// TestCookieRotation: a cookie made with the previous secret is accepted
// for one rotation, not two.
//
//	A: IKE_SA_INIT             -->
//	                           <--  N(COOKIE) made with secret v0
//	(rotation: v0 → v1)
//	A: N(COOKIE v0), ...       -->  accepted
//	(rotations: v1 → v2 → v3)
//	A': N(COOKIE v1), ...      -->  refused: a fresh N(COOKIE v3) comes back
func TestCookieRotation(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	p.b.ep.cfg.CookieThreshold = 0
	rot := p.b.ep.cfg.CookieRotation

	_, req := p.initiate("gw")
	cookieResp := p.exchange(p.b, req)
	p.now = p.now.Add(rot) // one rotation
	retry := p.exchange(p.a, cookieResp)
	resp := p.exchange(p.b, retry)
	if _, ps := outerPayloads(t, resp); wire.Find(ps, wire.PayloadKE) == nil {
		t.Fatalf("cookie of the previous secret refused: %v", ps)
	}

	// A second initiation gets a cookie of the current secret, then waits
	// two rotations: the cookie is stale.
	_, req2 := p.initiate("gw")
	cookie2 := p.exchange(p.b, req2)
	p.now = p.now.Add(2 * rot)
	p.a.out.Reset()
	retry2 := p.exchange(p.a, cookie2)
	resp2 := p.exchange(p.b, retry2)
	_, ps := outerPayloads(t, resp2)
	n := wire.FindNotify(ps, wire.COOKIE)
	if n == nil || wire.Find(ps, wire.PayloadKE) != nil {
		t.Fatalf("stale cookie accepted: %v", ps)
	}
	old := wire.FindNotify(outerPayloadsOf(t, cookie2), wire.COOKIE)
	if old.Data[0] == n.Data[0] {
		t.Error("fresh cookie has the stale secret's version")
	}
}

func outerPayloadsOf(t *testing.T, d Datagram) []wire.Payload {
	_, ps := outerPayloads(t, d)
	return ps
}

// TestCookieThresholdAndPerIP: cookies start when half-open SAs reach the
// threshold, and per source address at HalfOpenPerIP; MaxHalfOpen drops.
func TestCookieThresholdAndPerIP(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	cb := mirror(ca)
	cb.Remote = netip.AddrPort{} // any peer
	cfg := DefaultEndpointConfig()
	cfg.Connections = []*Connection{cb}
	cfg.CookieThreshold = 3
	cfg.HalfOpenPerIP = 2
	cfg.MaxHalfOpen = 4
	b := newEndpoint(t, 9, cfg)
	a := newEndpoint(t, 8, EndpointConfig{Connections: []*Connection{ca}, CookieThreshold: -1})

	// initFrom sends a fresh IKE_SA_INIT from src and reports whether B
	// answered with a cookie.
	initFrom := func(src netip.AddrPort) (cookie, answered bool) {
		var out Output
		if _, err := a.Initiate(t0, "gw", &out); err != nil {
			t.Fatal(err)
		}
		d := out.Datagrams[0]
		var bo Output
		b.HandleDatagram(t0, src, addrB, d.Data, &bo)
		if len(bo.Datagrams) == 0 {
			return false, false
		}
		return hasNotify(outerPayloadsOf(t, bo.Datagrams[0]), wire.COOKIE), true
	}
	ip1 := netip.MustParseAddrPort("203.0.113.1:500")
	ip2 := netip.MustParseAddrPort("203.0.113.2:500")
	ip3 := netip.MustParseAddrPort("203.0.113.3:500")
	for i, want := range []bool{false, false, true} { // per-IP limit 2
		if c, _ := initFrom(ip1); c != want {
			t.Fatalf("ip1 #%d: cookie %v, want %v", i, c, want)
		}
	}
	if c, _ := initFrom(ip2); c { // 3rd half-open overall: still below threshold 3
		t.Fatal("ip2 got a cookie below the threshold")
	}
	if c, _ := initFrom(ip3); !c { // 3 half-open: threshold reached
		t.Fatal("ip3 got no cookie at the threshold")
	}
	if b.HalfOpen() != 3 {
		t.Fatalf("half-open %d, want 3", b.HalfOpen())
	}
	// Half-open SAs expire; the counts go back to zero.
	var out Output
	b.Tick(t0.Add(cfg.HalfOpenTimeout), &out)
	if b.HalfOpen() != 0 || b.Len() != 0 {
		t.Fatalf("after timeout: half-open %d, SAs %d", b.HalfOpen(), b.Len())
	}
	// MaxHalfOpen: with cookies off, the 5th is dropped.
	b.cfg.CookieThreshold, b.cfg.HalfOpenPerIP = -1, 0
	for i := 0; i < 5; i++ {
		_, answered := initFrom(ip1)
		if answered != (i < 4) {
			t.Fatalf("#%d answered=%v", i, answered)
		}
	}
	if st := b.Stats(); st.DroppedHalfOpen != 1 {
		t.Errorf("DroppedHalfOpen = %d", st.DroppedHalfOpen)
	}
}

// TestCookieThenInvalidKE: both defences in a row (RFC 7296 §2.6). The
// cookie stays valid for the KE retry since Ni, IPi and SPIi do not change.
//
//	A: SA, KEi(ecp256), Ni                 -->
//	                                       <--  N(COOKIE)
//	A: N(COOKIE), SA, KEi(ecp256), Ni      -->
//	                                       <--  N(INVALID_KE_PAYLOAD, x25519)
//	A: N(COOKIE), SA, KEi(x25519), Ni      -->
//	                                       <--  SA, KEr, Nr
func TestCookieThenInvalidKE(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Proposals = [][]wire.Transform{{gcm256, prf256, ecp256, x25519}}
	cb := mirror(ca)
	cb.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	p.b.ep.cfg.CookieThreshold = 0
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	if !hasNotify(outerPayloadsOf(t, resp), wire.COOKIE) {
		t.Fatal("no cookie")
	}
	req = p.exchange(p.a, resp)
	resp = p.exchange(p.b, req)
	if !hasNotify(outerPayloadsOf(t, resp), wire.INVALID_KE_PAYLOAD) || p.b.ep.Len() != 0 {
		t.Fatal("no INVALID_KE_PAYLOAD, or state kept")
	}
	req = p.exchange(p.a, resp)
	ps := outerPayloadsOf(t, req)
	if n, ok := ps[0].(*wire.Notify); !ok || n.NotifyType != wire.COOKIE {
		t.Fatal("KE retry dropped the cookie")
	}
	resp = p.exchange(p.b, req)
	authResp := p.exchange(p.b, p.exchange(p.a, resp))
	if out := p.deliver(p.a, authResp); len(events(out, EventIKEUp)) != 1 {
		t.Fatal("not established")
	}
	if st := p.a.ep.Stats(); st.CookieRetries != 1 || st.KERetries != 1 {
		t.Fatalf("retries %+v", st)
	}
}
