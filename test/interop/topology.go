package interop

import "net/netip"

// SiteToSite is two gateways on one link, each with a protected host
// address on lo:
//
//	10.1.0.1 [gwa] 192.0.2.1 ---- 192.0.2.2 [gwb] 10.2.0.1
type SiteToSite struct {
	A, B       *Netns
	Link       *Link
	AddrA      netip.Addr // gwa on the link
	AddrB      netip.Addr
	LanA, LanB netip.Addr // protected hosts
}

// NewSiteToSite builds the site-to-site topology.
func (s *Scenario) NewSiteToSite() *SiteToSite {
	s.t.Helper()
	t := &SiteToSite{
		AddrA: netip.MustParseAddr("192.0.2.1"), AddrB: netip.MustParseAddr("192.0.2.2"),
		LanA: netip.MustParseAddr("10.1.0.1"), LanB: netip.MustParseAddr("10.2.0.1"),
	}
	t.A = s.NewNetns("gwa")
	t.B = s.NewNetns("gwb")
	t.Link = s.Connect(t.A, "eth0", netip.PrefixFrom(t.AddrA, 24), t.B, "eth0", netip.PrefixFrom(t.AddrB, 24))
	t.A.AddLoopbackAddr(t.LanA)
	t.B.AddLoopbackAddr(t.LanB)
	return t
}

// RoadWarrior is a client behind a masquerading NAT router, and a gateway:
//
//	10.3.0.2 [rw] 198.51.100.2 -- 198.51.100.1 [nat] 203.0.113.1 -- 203.0.113.2 [gw] 10.2.0.1
//
// The gateway has no route to 198.51.100.0/24: everything it sees from the
// road warrior comes from 203.0.113.1.
type RoadWarrior struct {
	RW, NAT, GW    *Netns
	Inside         *Link // rw - nat
	Outside        *Link // nat - gw
	AddrRW         netip.Addr
	AddrNATInside  netip.Addr
	AddrNATOutside netip.Addr
	AddrGW         netip.Addr
	LanRW, LanGW   netip.Addr
}

// NewRoadWarrior builds the road-warrior topology with its NAT.
func (s *Scenario) NewRoadWarrior() *RoadWarrior {
	s.t.Helper()
	t := &RoadWarrior{
		AddrRW: netip.MustParseAddr("198.51.100.2"), AddrNATInside: netip.MustParseAddr("198.51.100.1"),
		AddrNATOutside: netip.MustParseAddr("203.0.113.1"), AddrGW: netip.MustParseAddr("203.0.113.2"),
		LanRW: netip.MustParseAddr("10.3.0.2"), LanGW: netip.MustParseAddr("10.2.0.1"),
	}
	t.RW = s.NewNetns("rw")
	t.NAT = s.NewNetns("nat")
	t.GW = s.NewNetns("gw")
	t.Inside = s.Connect(t.RW, "eth0", netip.PrefixFrom(t.AddrRW, 24), t.NAT, "in0", netip.PrefixFrom(t.AddrNATInside, 24))
	t.Outside = s.Connect(t.NAT, "out0", netip.PrefixFrom(t.AddrNATOutside, 24), t.GW, "eth0", netip.PrefixFrom(t.AddrGW, 24))
	t.RW.AddDefaultRoute(t.AddrNATInside)
	t.NAT.Masquerade("out0")
	t.RW.AddLoopbackAddr(t.LanRW)
	t.GW.AddLoopbackAddr(t.LanGW)
	return t
}
