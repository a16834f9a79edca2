package ike_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/ike"
)

// Two endpoints in one process: datagrams are passed by hand, time is
// whatever the caller says. This is how ike/udp and the daemon drive the
// core, minus the sockets.
func Example() {
	a, b := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("192.0.2.2:500")
	psk := &ike.PSK{Secret: []byte("example only")}
	conn := func(local, remote netip.AddrPort, lid, rid string) *ike.Connection {
		return &ike.Connection{Name: "site", Local: local, Remote: remote, LocalAuth: psk, RemoteAuth: psk,
			LocalID: ike.IDFQDN(lid), RemoteID: ike.IDFQDN(rid), Children: []ike.ChildConfig{{Name: "net"}}}
	}
	now := time.Now()
	ca, cb := ike.DefaultEndpointConfig(), ike.DefaultEndpointConfig()
	ca.Connections = []*ike.Connection{conn(a, b, "a.example", "b.example")}
	cb.Connections = []*ike.Connection{conn(b, a, "b.example", "a.example")}
	epA, _ := ike.NewEndpoint(ca, now)
	epB, _ := ike.NewEndpoint(cb, now)

	var out ike.Output
	if _, err := epA.Initiate(now, "site", &out); err != nil {
		panic(err)
	}
	// Shuttle datagrams until both sides are quiet.
	for side := 0; len(out.Datagrams) > 0; side ^= 1 {
		in := out.Datagrams
		out = ike.Output{}
		ep := epB
		if side == 1 {
			ep = epA
		}
		for _, d := range in {
			ep.HandleDatagram(now, d.Src, d.Dst, d.Data, &out)
		}
		for _, e := range out.Events {
			fmt.Println(e.Kind, e.Child, e.PeerID)
		}
	}
	// Output:
	// ike-up  a.example
	// child-up net a.example
	// ike-up  b.example
	// child-up net b.example
}
