package config

import (
	"net/netip"
	"testing"
)

func TestParseTS(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		in   string
		want TrafficSelector
	}{
		{"10.1.0.0/24", TrafficSelector{Start: a("10.1.0.0"), End: a("10.1.0.255"), EndPort: 0xffff}},
		{"10.1.0.0/23", TrafficSelector{Start: a("10.1.0.0"), End: a("10.1.1.255"), EndPort: 0xffff}},
		{"0.0.0.0/0", TrafficSelector{Start: a("0.0.0.0"), End: a("255.255.255.255"), EndPort: 0xffff}},
		{"2001:db8::/127", TrafficSelector{Start: a("2001:db8::"), End: a("2001:db8::1"), EndPort: 0xffff}},
		{"192.0.2.7", TrafficSelector{Start: a("192.0.2.7"), End: a("192.0.2.7"), EndPort: 0xffff}},
		{"10.0.0.1-10.0.0.9", TrafficSelector{Start: a("10.0.0.1"), End: a("10.0.0.9"), EndPort: 0xffff}},
		{"10.0.0.0/8[tcp/443]", TrafficSelector{Start: a("10.0.0.0"), End: a("10.255.255.255"), Proto: 6, StartPort: 443, EndPort: 443}},
		{"10.0.0.0/8[udp/500-4500]", TrafficSelector{Start: a("10.0.0.0"), End: a("10.255.255.255"), Proto: 17, StartPort: 500, EndPort: 4500}},
		{"10.0.0.0/8[47]", TrafficSelector{Start: a("10.0.0.0"), End: a("10.255.255.255"), Proto: 47, EndPort: 0xffff}},
		{"dynamic[icmp]", TrafficSelector{Dynamic: true, Proto: 1, EndPort: 0xffff}},
		{"dynamic", TrafficSelector{Dynamic: true, EndPort: 0xffff}},
	} {
		got, err := ParseTS(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"10.1.0.1/24", "10.0.0.0/33", "10.0.0.9-10.0.0.1", "10.0.0.1-2001:db8::1", "fe80::1%eth0",
		"10.0.0.0/8[tcp/70000]", "10.0.0.0/8[tcp/9-1]", "10.0.0.0/8[/80]", "10.0.0.0/8[tcp", "host.example.com", "10.0.0.0/8[bogus]"} {
		if ts, err := ParseTS(bad); err == nil {
			t.Errorf("%q accepted as %+v", bad, ts)
		}
	}
}

func TestTSResolve(t *testing.T) {
	dyn, _ := ParseTS("dynamic[tcp/22]")
	got, ok := dyn.Resolve(netip.MustParseAddr("::ffff:192.0.2.1"))
	if !ok || got.Dynamic || got.Start != netip.MustParseAddr("192.0.2.1") || got.End != got.Start || got.Proto != 6 || got.StartPort != 22 {
		t.Errorf("resolved %+v", got)
	}
	if _, ok := dyn.Resolve(netip.Addr{}); ok {
		t.Error("dynamic resolved against %any")
	}
}

func TestTSString(t *testing.T) {
	for _, in := range []string{"10.1.0.0/24", "0.0.0.0/0", "2001:db8::/32", "192.0.2.7", "10.0.0.1-10.0.0.9",
		"10.0.0.0/8[6/443-443]", "dynamic[17]", "10.0.0.1-10.0.0.2"} {
		ts, err := ParseTS(in)
		if err != nil {
			t.Fatal(err)
		}
		if ts.String() != in {
			t.Errorf("%s prints as %s", in, ts.String())
		}
	}
}
