package dataplane_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// Two data planes joined in memory, each with a gVisor netstack for its
// protected host, one Child SA installed on each side (static keys here;
// the IKE engine derives them), then a TCP exchange through ESP.
func Example() {
	outerA, outerB := netip.MustParseAddrPort("192.0.2.1:4500"), netip.MustParseAddrPort("192.0.2.2:4500")
	innerA, innerB := netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.2.0.1")
	bindA, bindB := dataplane.NewMemBindPair(outerA, outerB)
	a, b := dataplane.NewUserspace(bindA, dataplane.Options{}), dataplane.NewUserspace(bindB, dataplane.Options{})
	defer a.Close()
	defer b.Close()
	netA, _ := a.AttachNetstack([]netip.Addr{innerA}, 1400, 0)
	netB, _ := b.AttachNetstack([]netip.Addr{innerB}, 1400, 0)

	keyAB, keyBA := make([]byte, 36), make([]byte, 36) // AES-256 key | 4-octet salt
	keyAB[0], keyBA[0] = 1, 2
	tsA, tsB := []dataplane.Selector{dataplane.MustSelector("10.1.0.0/16")}, []dataplane.Selector{dataplane.MustSelector("10.2.0.0/16")}
	childA := &dataplane.Child{ReqID: 1, InSPI: 0xb0000001, OutSPI: 0xa0000001, Mode: esp.Tunnel,
		Encr: wire.EncrAES_GCM_16, EncrIn: keyBA, EncrOut: keyAB, LocalTS: tsA, RemoteTS: tsB,
		Local: outerA, Remote: outerB, UDPEncap: true}
	childB := &dataplane.Child{ReqID: 1, InSPI: 0xa0000001, OutSPI: 0xb0000001, Mode: esp.Tunnel,
		Encr: wire.EncrAES_GCM_16, EncrIn: keyAB, EncrOut: keyBA, LocalTS: tsB, RemoteTS: tsA,
		Local: outerB, Remote: outerA, UDPEncap: true}
	if err := dataplane.InstallChild(a, childA); err != nil {
		panic(err)
	}
	if err := dataplane.InstallChild(b, childB); err != nil {
		panic(err)
	}

	ln, _ := netB.ListenTCPAddrPort(netip.AddrPortFrom(innerB, 7))
	go func() {
		c, _ := ln.Accept()
		io.Copy(c, c)
		c.Close()
	}()
	c, err := netA.DialContextTCPAddrPort(context.Background(), netip.AddrPortFrom(innerB, 7))
	if err != nil {
		panic(err)
	}
	c.Write([]byte("hello through ESP"))
	buf := make([]byte, 17)
	io.ReadFull(c, buf)
	c.Close()
	fmt.Println(string(buf))
	in, _ := b.Counters(dataplane.In, 0xa0000001)
	fmt.Println(in.Packets > 0, in.AuthFailures)
	// Output:
	// hello through ESP
	// true 0
}
