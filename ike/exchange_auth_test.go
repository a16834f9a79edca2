package ike

import (
	"bytes"
	"crypto/x509/pkix"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// establish runs the four messages and returns A's and B's final outputs.
func (p *pair) establish(conn string) (uint64, *Output, *Output) {
	p.t.Helper()
	spi, req := p.initiate(conn)
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	bout := p.deliver(p.b, auth)
	bcopy := *bout
	bcopy.Events = append([]Event(nil), bout.Events...)
	bcopy.Ops = append([]ChildOp(nil), bout.Ops...)
	if len(bout.Datagrams) != 1 {
		p.t.Fatalf("responder sent %d datagrams to IKE_AUTH", len(bout.Datagrams))
	}
	aout := p.deliver(p.a, bout.Datagrams[0])
	return spi, aout, &bcopy
}

// TestAuthFailedPSK: the PSKs differ.
//
//	A: HDR, SK{IDi, AUTH(psk "one"), SA, TSi, TSr}  -->
//	B (psk "two"):                                 <--  HDR, SK{N(AUTHENTICATION_FAILED)}
//
// The notification says nothing about which part failed; B's log has the
// reason. Both sides drop the SA.
func TestAuthFailedPSK(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "one")
	cb := mirror(ca)
	cb.LocalAuth, cb.RemoteAuth = &PSK{Secret: []byte("two")}, &PSK{Secret: []byte("two")}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	var logbuf bytes.Buffer
	p.b.ep.log = slog.New(slog.NewTextHandler(&logbuf, nil))
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	bout := p.deliver(p.b, auth)
	if !strings.Contains(logbuf.String(), "PSK AUTH value does not verify") {
		t.Errorf("responder log lacks the precise reason:\n%s", logbuf.String())
	}
	if len(bout.Datagrams) != 1 || len(bout.Events) != 0 || len(bout.Ops) != 0 {
		t.Fatalf("responder: %d datagrams, events %+v", len(bout.Datagrams), bout.Events)
	}
	asa := p.a.ep.SA(spi)
	inner := innerOf(t, asa, bout.Datagrams[0])
	if len(inner) != 1 || !hasNotify(inner, wire.AUTHENTICATION_FAILED) || len(wire.FindNotify(inner, wire.AUTHENTICATION_FAILED).Data) != 0 {
		t.Fatalf("want lone N(AUTHENTICATION_FAILED), got %v", inner)
	}
	if p.b.ep.Len() != 0 || p.b.ep.HalfOpen() != 0 {
		t.Fatal("responder kept the SA")
	}
	aout := p.deliver(p.a, bout.Datagrams[0])
	ev := events(aout, EventIKEDown)
	if len(ev) != 1 || ev[0].Reason != "AUTHENTICATION_FAILED" || p.a.ep.Len() != 0 {
		t.Fatalf("initiator: %+v", aout.Events)
	}
}

// TestAuthFailedResponderIdentity: B authenticates with the right PSK but
// as an identity A does not expect; A refuses (its own check, no message).
func TestAuthFailedResponderIdentity(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.RemoteID = IDFQDN("gw.example.net")
	cb := mirror(ca)
	cb.LocalID = IDFQDN("evil.example.net")
	cb.RemoteID = Identity{}
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, bout := p.establish("gw")
	if len(events(bout, EventIKEUp)) != 1 {
		t.Fatal("responder should be up (it cannot know)")
	}
	if ev := events(aout, EventIKEDown); len(ev) != 1 || ev[0].Reason != "AUTHENTICATION_FAILED" {
		t.Fatalf("initiator accepted the wrong identity: %+v", aout.Events)
	}
	// A tells B in a separate INFORMATIONAL (RFC 7296 §2.21.2), and B
	// drops the SA it had accepted.
	//
	//	A: HDR(INFORMATIONAL, MID 2), SK{N(AUTHENTICATION_FAILED)}  -->
	//	B:                                                         <--  HDR, SK{}   (B removes the SA)
	if len(aout.Datagrams) != 1 || p.a.ep.Len() != 0 {
		t.Fatalf("initiator sent %d datagrams", len(aout.Datagrams))
	}
	bout = p.deliver(p.b, aout.Datagrams[0])
	if ev := events(bout, EventIKEDown); len(ev) != 1 || ev[0].Reason != "AUTHENTICATION_FAILED" || p.b.ep.Len() != 0 {
		t.Fatalf("responder kept the refused SA: %+v", bout.Events)
	}
	if len(ops(bout, OpDelete)) != 1 {
		t.Fatal("responder's Child SA not removed")
	}
}

// TestIdentityTypes: IDi/IDr of every type cross and are matched.
func TestIdentityTypes(t *testing.T) {
	dn, err := IDDN(pkix.Name{CommonName: "alice", Organization: []string{"Petrel"}, Country: []string{"CH"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []Identity{
		IDAddr(netip.MustParseAddr("192.0.2.1")),
		IDAddr(netip.MustParseAddr("2001:db8::1")),
		IDFQDN("a.example.com"),
		IDEmail("alice@example.com"),
		dn,
		IDKeyID([]byte{0xde, 0xad, 0xbe, 0xef}),
	}
	for _, id := range ids {
		t.Run(id.Type.String(), func(t *testing.T) {
			ca := pskConn("gw", addrA, addrB, "k")
			ca.LocalID = id
			ca.RemoteID = IDFQDN("b.example.com")
			cb := mirror(ca)
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			_, aout, bout := p.establish("gw")
			up := events(bout, EventIKEUp)
			if len(up) != 1 || !up[0].PeerID.Equal(id) {
				t.Fatalf("responder saw %+v", bout.Events)
			}
			if aup := events(aout, EventIKEUp); len(aup) != 1 || aup[0].PeerID.String() != "b.example.com" {
				t.Fatalf("initiator saw %+v", aout.Events)
			}
		})
	}
	if got := dn.String(); got != "CN=alice,O=Petrel,C=CH" {
		t.Errorf("DN renders as %q", got)
	}
}

// TestConnectionSelection: one responder, several connections on the same
// address, each catches its own peers by identity (Cisco "match identity
// remote", ASA tunnel-groups) and by the IDr the initiator asks for.
//
//	alice@example.com  -->  conn "users"     (RemoteID *@example.com, psk u)
//	branch1.example.com -->  conn "branch1"  (RemoteID branch1.example.com, psk b1)
//	branch2.example.com -->  conn "branches" (RemoteID *.example.com, psk b2)
//	anyone, IDr=vpn2     -->  conn "vpn2"    (LocalID vpn2, psk v2)
func TestConnectionSelection(t *testing.T) {
	mk := func(name, psk string, remote Identity) *Connection {
		c := pskConn(name, addrB, netip.AddrPort{}, psk)
		c.LocalID, c.RemoteID = IDFQDN("vpn.example.com"), remote
		return c
	}
	vpn2 := mk("vpn2", "v2", Identity{})
	vpn2.LocalID = IDFQDN("vpn2.example.com")
	responder := []*Connection{
		mk("users", "u", IDEmail("*@example.com")),
		mk("branches", "b2", IDFQDN("*.example.com")),
		mk("branch1", "b1", IDFQDN("branch1.example.com")),
		vpn2,
	}
	for _, tc := range []struct {
		id      Identity
		psk     string
		idr     Identity
		want    string
		wantErr bool
	}{
		{IDEmail("alice@example.com"), "u", Identity{}, "users", false},
		{IDFQDN("branch1.example.com"), "b1", Identity{}, "branch1", false},
		{IDFQDN("branch2.example.com"), "b2", Identity{}, "branches", false},
		{IDFQDN("branch2.example.com"), "b1", Identity{}, "", true}, // right conn, wrong PSK
		{IDFQDN("x.other.org"), "v2", IDFQDN("vpn2.example.com"), "vpn2", false},
		{IDFQDN("x.other.org"), "v2", Identity{}, "vpn2", false},                    // only vpn2 (RemoteID any) matches
		{IDFQDN("x.other.org"), "u", Identity{}, "", true},                          // ... and its PSK is not "u"
		{IDFQDN("branch1.example.com"), "b1", IDFQDN("vpn2.example.com"), "", true}, // IDr picks vpn2: PSK differs
	} {
		t.Run(tc.id.String()+"/"+tc.want, func(t *testing.T) {
			ca := pskConn("gw", addrA, addrB, tc.psk)
			ca.LocalID = tc.id
			if !tc.idr.IsAny() {
				ca.RemoteID, ca.SendIDr = tc.idr, true
			}
			p := newPair(t, []*Connection{ca}, responder)
			_, _, bout := p.establish("gw")
			up := events(bout, EventIKEUp)
			if tc.wantErr {
				if len(up) != 0 {
					t.Fatalf("accepted as %q", up[0].Conn)
				}
				return
			}
			if len(up) != 1 || up[0].Conn != tc.want {
				t.Fatalf("got %+v, want conn %q", bout.Events, tc.want)
			}
		})
	}
}

// TestConnectionSelectionByAddress: two connections on one responder that
// differ only in the peer address (ASA tunnel-groups keyed by peer IP); each
// peer gets its own, including its own IKE proposals in IKE_SA_INIT.
func TestConnectionSelectionByAddress(t *testing.T) {
	peer1 := netip.MustParseAddrPort("203.0.113.1:500")
	peer2 := netip.MustParseAddrPort("203.0.113.2:500")
	c1 := pskConn("peer1", addrB, peer1, "one")
	c1.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
	c2 := pskConn("peer2", addrB, peer2, "two")
	c2.Proposals = [][]wire.Transform{{gcm128, prf256, x25519}}
	any := pskConn("any", addrB, netip.AddrPort{}, "three")
	for _, tc := range []struct {
		from netip.AddrPort
		psk  string
		want string
		enc  wire.Transform
	}{
		{peer1, "one", "peer1", gcm256},
		{peer2, "two", "peer2", gcm128},
		{netip.MustParseAddrPort("203.0.113.3:500"), "three", "any", gcm256},
	} {
		ca := pskConn("gw", tc.from, addrB, tc.psk)
		ca.Proposals = [][]wire.Transform{{gcm256, gcm128, prf256, x25519, ecp256}}
		p := newPair(t, []*Connection{ca}, []*Connection{any, c2, c1})
		_, req := p.initiate("gw")
		resp := p.exchange(p.b, req)
		if got := chosenIKE(t, resp)[0]; got != tc.enc {
			t.Errorf("%v: IKE_SA_INIT used %v, want %v", tc.from, got, tc.enc)
		}
		bout := p.deliver(p.b, p.exchange(p.a, resp))
		if up := events(bout, EventIKEUp); len(up) != 1 || up[0].Conn != tc.want {
			t.Errorf("%v: got %+v, want %s", tc.from, bout.Events, tc.want)
		}
	}
}
