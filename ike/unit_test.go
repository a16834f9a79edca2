package ike

import (
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func TestNarrow(t *testing.T) {
	tcp80 := TrafficSelector{Proto: 6, StartPort: 80, EndPort: 80, Start: netip.MustParseAddr("10.1.2.3"), End: netip.MustParseAddr("10.1.2.3")}
	for _, tc := range []struct {
		name              string
		proposed, allowed []TrafficSelector
		want              []TrafficSelector
	}{
		{"subset", []TrafficSelector{pfx("10.0.0.0/8")}, []TrafficSelector{pfx("10.1.0.0/16")}, []TrafficSelector{pfx("10.1.0.0/16")}},
		{"superset kept", []TrafficSelector{pfx("10.1.5.0/24")}, []TrafficSelector{pfx("10.1.0.0/16")}, []TrafficSelector{pfx("10.1.5.0/24")}},
		{"disjoint", []TrafficSelector{pfx("10.0.0.0/8")}, []TrafficSelector{pfx("192.168.0.0/16")}, nil},
		{"family", []TrafficSelector{pfx("10.0.0.0/8")}, []TrafficSelector{pfx("2001:db8::/32")}, nil},
		{"protocol and port", []TrafficSelector{tcp80}, []TrafficSelector{pfx("10.0.0.0/8")}, []TrafficSelector{tcp80}},
		{"protocol mismatch", []TrafficSelector{tcp80}, []TrafficSelector{{Proto: 17, EndPort: 65535, Start: tcp80.Start, End: tcp80.End}}, nil},
		{"two pieces", []TrafficSelector{pfx("10.0.0.0/8")}, []TrafficSelector{pfx("10.1.0.0/16"), pfx("10.9.0.0/16")},
			[]TrafficSelector{pfx("10.1.0.0/16"), pfx("10.9.0.0/16")}},
	} {
		got := narrow(tc.proposed, tc.allowed)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	if !subsetOf([]TrafficSelector{pfx("10.1.0.0/16")}, []TrafficSelector{pfx("10.0.0.0/8")}) ||
		subsetOf([]TrafficSelector{pfx("10.0.0.0/8")}, []TrafficSelector{pfx("10.1.0.0/16")}) || subsetOf(nil, nil) {
		t.Error("subsetOf")
	}
	if s := pfx("2001:db8::/126"); s.End != netip.MustParseAddr("2001:db8::3") {
		t.Errorf("IPv6 prefix end %v", s.End)
	}
}

func TestMatchProposal(t *testing.T) {
	integNone := tr(wire.TransformINTEG, 0, 0)
	keNone := tr(wire.TransformKE, 0, 0)
	esn := tr(wire.TransformESN, 0, 0)
	for _, tc := range []struct {
		name        string
		local, peer []wire.Transform
		ok          bool
	}{
		{"same", []wire.Transform{gcm256, prf256, x25519}, []wire.Transform{gcm256, prf256, x25519}, true},
		{"AEAD with INTEG NONE = without", []wire.Transform{gcm256, prf256, x25519}, []wire.Transform{gcm256, integNone, prf256, x25519}, true},
		{"missing type", []wire.Transform{gcm256, prf256, x25519}, []wire.Transform{gcm256, x25519}, false},
		{"extra type", []wire.Transform{gcm256, prf256, x25519}, []wire.Transform{gcm256, prf256, hmac256, x25519}, false},
		{"key length differs", []wire.Transform{gcm256, prf256, x25519}, []wire.Transform{gcm128, prf256, x25519}, false},
		{"CBC needs INTEG", []wire.Transform{cbc256, prf256, x25519}, []wire.Transform{cbc256, prf256, x25519}, false},
		{"ESP: KE NONE = no PFS", []wire.Transform{gcm256, esn}, []wire.Transform{gcm256, keNone, esn}, true},
	} {
		_, ok := matchProposal(tc.local, tc.peer, ikeAcceptable)
		if tc.name == "ESP: KE NONE = no PFS" {
			_, ok = matchProposal(tc.local, tc.peer, espAcceptable)
		}
		if ok != tc.ok {
			t.Errorf("%s: ok=%v", tc.name, ok)
		}
	}
	// A transform with an attribute we do not understand is skipped
	// (RFC 7296 §3.3.6): the proposal then lacks that type.
	peer := []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.ProposalTransform{
		{Transform: gcm256, Attrs: []wire.TransformAttr{{Type: 99, TV: true, Value: []byte{0, 1}}}},
		{Transform: prf256}, {Transform: x25519}}}}
	if _, ok := selectProposal([][]wire.Transform{{gcm256, prf256, x25519}}, peer, wire.ProtoIKE, PreferLocal, ikeAcceptable); ok {
		t.Error("transform with an unknown attribute accepted")
	}
	// Forbidden transforms are never chosen even if both offer them
	// (RFC 8247: ENCR_NULL for IKE).
	null := tr(wire.TransformENCR, uint16(wire.EncrNULL), 0)
	if _, ok := matchProposal([]wire.Transform{null, prf256, hmac256, x25519}, []wire.Transform{null, prf256, hmac256, x25519}, ikeAcceptable); ok {
		t.Error("ENCR_NULL accepted for IKE")
	}
}

func TestIdentityMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, peer Identity
		ok            bool
	}{
		{Identity{}, IDFQDN("x"), true},
		{IDFQDN("vpn.example.com"), IDFQDN("VPN.Example.COM"), true},
		{IDFQDN("*.example.com"), IDFQDN("a.b.example.com"), true},
		{IDFQDN("*.example.com"), IDFQDN("example.com"), false},
		{IDEmail("*@example.com"), IDEmail("bob@example.com"), true},
		{IDEmail("*@example.com"), IDFQDN("bob@example.com"), false},
		{IDKeyID([]byte{1}), IDKeyID([]byte{1}), true},
		{IDKeyID([]byte{1}), IDKeyID([]byte{2}), false},
		{IDAddr(netip.MustParseAddr("::ffff:192.0.2.1")), IDAddr(netip.MustParseAddr("192.0.2.1")), true},
	} {
		if got := tc.pattern.Matches(tc.peer); got != tc.ok {
			t.Errorf("%v matches %v = %v", tc.pattern, tc.peer, got)
		}
	}
}

func TestCookieJar(t *testing.T) {
	var j cookieJar
	r := seeded(5)
	if err := j.init(t0, r, 60e9); err != nil {
		t.Fatal(err)
	}
	ni := []byte("nonce-of-the-initiator")
	ip := netip.MustParseAddr("192.0.2.9")
	c := j.make(ni, ip, 42)
	if !j.check(c, ni, ip, 42) || j.check(c, ni, ip, 43) || j.check(c, ni, netip.MustParseAddr("192.0.2.8"), 42) ||
		j.check(c, []byte("other"), ip, 42) || j.check(c[:5], ni, ip, 42) {
		t.Fatal("cookie binding")
	}
	j.maybeRotate(t0.Add(60e9), r)
	if !j.check(c, ni, ip, 42) {
		t.Fatal("previous secret refused after one rotation")
	}
	j.maybeRotate(t0.Add(120e9), r)
	if j.check(c, ni, ip, 42) {
		t.Fatal("secret accepted after two rotations")
	}
	// A long idle period does not leave the previous secret valid.
	c = j.make(ni, ip, 42)
	j.maybeRotate(t0.Add(3600e9), r)
	if j.check(c, ni, ip, 42) {
		t.Fatal("cookie accepted after a long idle period")
	}
}
