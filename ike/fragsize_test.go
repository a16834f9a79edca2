package ike

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// The fragment size bounds the UDP payload of every datagram carrying a
// protected message to a peer that supports fragmentation: the IKE message
// plus the non-ESP marker on the NAT-T port (RFC 7383 §2.5.1, RFC 3948
// §2.2). These tests look at what crosses the wire in IKE_AUTH.

var (
	addrA6 = netip.MustParseAddrPort("[2001:db8::1]:500")
	addrB6 = netip.MustParseAddrPort("[2001:db8:1::2]:500")

	hmac512 = tr(wire.TransformINTEG, uint16(wire.IntegHMAC_SHA2_512_256), 0)
	prf512  = tr(wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_512), 0)
)

// udpPayload is the UDP payload d occupies on the wire: the transport adds
// the non-ESP marker on the NAT-T port (4500 in these tests).
func udpPayload(d Datagram) int {
	if d.Src.Port() == 4500 {
		return len(d.Data) + nonESPMarkerLen
	}
	return len(d.Data)
}

// authRun runs IKE_SA_INIT and IKE_AUTH of ca (initiator A) against cb
// (responder B), requires both IKE SAs up, and returns A's IKE_AUTH
// request datagrams and B's response datagrams.
func authRun(t *testing.T, ca, cb *Connection) (req, resp []Datagram) {
	t.Helper()
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, init := p.initiate(ca.Name)
	initResp := p.exchange(p.b, init)
	req = append(req, p.deliver(p.a, initResp).Datagrams...)
	if len(req) == 0 {
		t.Fatal("A sent no IKE_AUTH")
	}
	var bout *Output
	for _, d := range req {
		bout = p.deliver(p.b, d)
	}
	if len(events(bout, EventIKEUp)) != 1 {
		t.Fatalf("B did not come up: %+v", bout.Events)
	}
	resp = append(resp, bout.Datagrams...)
	var aout *Output
	for _, d := range resp {
		aout = p.deliver(p.a, d)
	}
	if aout == nil || len(events(aout, EventIKEUp)) != 1 {
		t.Fatal("A did not come up")
	}
	return req, resp
}

// wholeLens are the UDP payloads of A's IKE_AUTH request and B's response
// when the other side does not support fragmentation, so each goes whole.
func wholeLens(t *testing.T, ca, cb *Connection) (reqLen, respLen int) {
	t.Helper()
	noFrag := func(c *Connection) *Connection {
		n := *c
		n.NoFragmentation = true
		return &n
	}
	req, _ := authRun(t, ca, noFrag(cb))
	_, resp := authRun(t, noFrag(ca), cb)
	if len(req) != 1 || len(resp) != 1 {
		t.Fatalf("without fragmentation: %d request and %d response datagrams", len(req), len(resp))
	}
	return udpPayload(req[0]), udpPayload(resp[0])
}

// checkFragmented checks one direction of an exchange: ds went whole
// (one SK datagram) if the whole message (UDP payload whole) fits in size,
// else as SKF fragments each within size.
func checkFragmented(t *testing.T, what string, ds []Datagram, whole, size int) (fragmented bool) {
	t.Helper()
	if whole <= size {
		if len(ds) != 1 {
			t.Fatalf("%s: %d octets fit in %d but went in %d datagrams", what, whole, size, len(ds))
		}
		if m, _ := outerPayloads(t, ds[0]); m.Encrypted() == nil || udpPayload(ds[0]) != whole {
			t.Fatalf("%s: not the whole SK message", what)
		}
		return false
	}
	if len(ds) < 2 {
		t.Fatalf("%s: %d octets exceed %d but went in %d datagram(s)", what, whole, size, len(ds))
	}
	for i, d := range ds {
		m, _ := outerPayloads(t, d)
		f := m.Fragment()
		if f == nil || int(f.Number) != i+1 || int(f.Total) != len(ds) {
			t.Fatalf("%s: datagram %d is not SKF fragment %d/%d", what, i+1, i+1, len(ds))
		}
		if n := udpPayload(d); n > size {
			t.Fatalf("%s: fragment %d/%d has a %d-octet UDP payload, over %d", what, i+1, len(ds), n, size)
		}
	}
	return true
}

// fqdnOf is an FQDN identity of exactly n octets (n >= 12).
func fqdnOf(n int) Identity {
	return IDFQDN(strings.Repeat("a", n-len(".example.com")) + ".example.com")
}

// sweepBoundary grows IKE_AUTH one octet at a time across the fragment
// size and checks at each step that a message goes whole exactly when its
// UDP payload fits and that every fragment fits. Traffic selectors bring
// the messages near the bound, the identities then step by one octet.
func sweepBoundary(t *testing.T, ca *Connection, size int) {
	t.Helper()
	mk := func(nTS, idLen int) (*Connection, *Connection) {
		c := *ca
		c.Children = append([]ChildConfig(nil), ca.Children...)
		c.Children[0].LocalTS = append([]TrafficSelector(nil), ca.Children[0].LocalTS...)
		for i := 0; i < nTS; i++ {
			c.Children[0].LocalTS = append(c.Children[0].LocalTS, pfx("10.1."+itoa(i)+".0/24"))
		}
		c.LocalID, c.RemoteID = fqdnOf(idLen), fqdnOf(idLen+1)
		return &c, mirror(&c)
	}
	// Each IPv4 selector adds 16 octets to TSi in the request and to TSr
	// in the response.
	const idMin = 12
	c0, c1 := mk(0, idMin)
	baseReq, baseResp := wholeLens(t, c0, c1)
	nTS := (size - 24 - max(baseReq, baseResp)) / 16
	if nTS < 0 || nTS > 250 {
		t.Fatalf("cannot reach %d octets from %d/%d", size, baseReq, baseResp)
	}
	var sawWhole, sawFrag [2]bool
	for idLen := idMin; idLen < 200 && sawFrag != [2]bool{true, true}; idLen++ {
		ca, cb := mk(nTS, idLen)
		wReq, wResp := wholeLens(t, ca, cb)
		req, resp := authRun(t, ca, cb)
		for i, c := range []struct {
			what  string
			ds    []Datagram
			whole int
		}{{"request", req, wReq}, {"response", resp, wResp}} {
			if checkFragmented(t, c.what, c.ds, c.whole, size) {
				sawFrag[i] = sawFrag[i] || c.whole == size+1
			} else {
				sawWhole[i] = sawWhole[i] || c.whole == size
			}
		}
	}
	if sawWhole != [2]bool{true, true} || sawFrag != [2]bool{true, true} {
		t.Fatalf("sweep missed the boundary: whole at %d %v, fragmented at %d %v", size, sawWhole, size+1, sawFrag)
	}
}

// TestFragmentSizeDefaultIPv4: between IPv4 peers with no configured size,
// IKE_AUTH messages whose UDP payload exceeds 1280 octets go as fragments
// within 1280, those up to 1280 go whole, on port 500 and, counting the
// non-ESP marker, on 4500.
func TestFragmentSizeDefaultIPv4(t *testing.T) {
	for _, encap := range []bool{false, true} {
		ca := pskConn("gw", addrA, addrB, "k")
		ca.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
		ca.ForceEncap = encap
		name := "port500"
		if encap {
			name = "port4500"
		}
		t.Run(name, func(t *testing.T) { sweepBoundary(t, ca, 1280) })
	}
}

// TestFragmentSizeDefaultIPv6: the same between IPv6 peers, with 1232
// octets (the IPv6 minimum MTU less the IPv6 and UDP headers).
func TestFragmentSizeDefaultIPv6(t *testing.T) {
	for _, encap := range []bool{false, true} {
		ca := pskConn("gw", addrA6, addrB6, "k")
		ca.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
		ca.ForceEncap = encap
		name := "port500"
		if encap {
			name = "port4500"
		}
		t.Run(name, func(t *testing.T) { sweepBoundary(t, ca, 1232) })
	}
}

// TestFragmentSizeConfigured: a configured size overrides the family
// default; with CBC and HMAC-SHA2-512 (the largest IV, padding and ICV)
// every fragment still fits, and each but the last comes within one cipher
// block of the size (the budget is not squandered).
func TestFragmentSizeConfigured(t *testing.T) {
	for _, tc := range []struct {
		name  string
		props [][]wire.Transform
		block int
		size  int
		encap bool
	}{
		{"gcm-300", [][]wire.Transform{{gcm256, prf256, x25519}}, 1, 300, false},
		{"gcm-300-natt", [][]wire.Transform{{gcm256, prf256, x25519}}, 1, 300, true},
		{"cbc-sha512-300-natt", [][]wire.Transform{{cbc256, hmac512, prf512, x25519}}, 16, 300, true},
		{"cbc-sha512-256-natt", [][]wire.Transform{{cbc256, hmac512, prf512, x25519}}, 16, 256, true},
		{"cbc-sha512-1000", [][]wire.Transform{{cbc256, hmac512, prf512, x25519}}, 16, 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := pskConn("gw", addrA, addrB, "k")
			ca.Proposals = tc.props
			ca.ForceEncap = tc.encap
			ca.FragmentSize = tc.size
			bigChild(ca)
			for i := 40; i < 80; i++ {
				ca.Children[0].LocalTS = append(ca.Children[0].LocalTS, pfx("10.1."+itoa(i)+".0/24"))
			}
			cb := mirror(ca)
			wReq, wResp := wholeLens(t, ca, cb)
			req, resp := authRun(t, ca, cb)
			for _, c := range []struct {
				what  string
				ds    []Datagram
				whole int
			}{{"request", req, wReq}, {"response", resp, wResp}} {
				if !checkFragmented(t, c.what, c.ds, c.whole, tc.size) {
					t.Fatalf("%s: %d octets not fragmented at %d", c.what, c.whole, tc.size)
				}
				if tc.encap && c.ds[0].Src.Port() != 4500 {
					t.Fatalf("%s: sent from %v, want the NAT-T port", c.what, c.ds[0].Src)
				}
				for i, d := range c.ds[:len(c.ds)-1] {
					if n := udpPayload(d); n <= tc.size-tc.block {
						t.Errorf("%s: fragment %d has %d octets, more than a block under %d", c.what, i+1, n, tc.size)
					}
				}
			}
		})
	}
}

// TestFragmentSizeFamily: the default follows the peer's address family;
// an IPv4-mapped IPv6 peer counts as IPv4; a configured size wins.
func TestFragmentSizeFamily(t *testing.T) {
	for _, tc := range []struct {
		remote string
		conf   int
		want   int
	}{
		{"192.0.2.2:500", 0, DefaultFragmentSizeIPv4},
		{"[::ffff:192.0.2.2]:500", 0, DefaultFragmentSizeIPv4},
		{"[2001:db8::2]:500", 0, DefaultFragmentSizeIPv6},
		{"[2001:db8::2]:4500", 0, DefaultFragmentSizeIPv6},
		{"[2001:db8::2]:500", 300, 300},
		{"192.0.2.2:500", 1400, 1400},
	} {
		sa := &SA{conn: &Connection{FragmentSize: tc.conf}, remote: netip.MustParseAddrPort(tc.remote)}
		if got := sa.fragmentSize(); got != tc.want {
			t.Errorf("%s, configured %d: %d, want %d", tc.remote, tc.conf, got, tc.want)
		}
	}
	if DefaultFragmentSizeIPv4 != 1280 || DefaultFragmentSizeIPv6 != 1232 {
		t.Errorf("defaults %d/%d, want 1280/1232", DefaultFragmentSizeIPv4, DefaultFragmentSizeIPv6)
	}
}
