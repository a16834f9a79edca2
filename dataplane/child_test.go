package dataplane

import (
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

var _ DataPlane = (*Userspace)(nil)

// childPair builds the Child as each side sees it: A's inbound is B's
// outbound and the other way round.
func childPair(a, b *node, inA, inB uint32) (*Child, *Child) {
	kA, kB := testKeys(inA, 36), testKeys(inB, 36)
	tsA, tsB := []Selector{MustSelector("10.1.0.0/16")}, []Selector{MustSelector("10.2.0.0/16")}
	ca := &Child{ReqID: 5, InSPI: inA, OutSPI: inB, Mode: esp.Tunnel, Encr: wire.EncrAES_GCM_16,
		EncrIn: kA, EncrOut: kB, LocalTS: tsA, RemoteTS: tsB, Local: a.outer, Remote: b.outer, UDPEncap: true}
	cb := &Child{ReqID: 5, InSPI: inB, OutSPI: inA, Mode: esp.Tunnel, Encr: wire.EncrAES_GCM_16,
		EncrIn: kB, EncrOut: kA, LocalTS: tsB, RemoteTS: tsA, Local: b.outer, Remote: a.outer, UDPEncap: true}
	return ca, cb
}

// TestInstallChildRekey installs a Child on both sides, rekeys it with new
// SPIs (make-before-break) and removes the old one while traffic flows.
func TestInstallChildRekey(t *testing.T) {
	c := defaultPair()
	a := &node{inner: netip.MustParseAddr(c.aInner), outer: netip.MustParseAddrPort(c.aOuter)}
	b := &node{inner: netip.MustParseAddr(c.bInner), outer: netip.MustParseAddrPort(c.bOuter)}
	ba, bb := NewMemBindPair(a.outer, b.outer)
	a.dp, b.dp = NewUserspace(ba, Options{}), NewUserspace(bb, Options{})
	t.Cleanup(func() { a.dp.Close(); b.dp.Close() })
	var err error
	if a.net, err = a.dp.AttachNetstack([]netip.Addr{a.inner}, 1400, 0); err != nil {
		t.Fatal(err)
	}
	if b.net, err = b.dp.AttachNetstack([]netip.Addr{b.inner}, 1400, 0); err != nil {
		t.Fatal(err)
	}
	spiA, _ := a.dp.AllocSPI()
	spiB, _ := b.dp.AllocSPI()
	oldA, oldB := childPair(a, b, spiA, spiB)
	must(t, InstallChild(a.dp, oldA))
	must(t, InstallChild(b.dp, oldB))
	if n := udpEcho(t, a, b, 3); n != 3 {
		t.Fatalf("first Child: %d/3", n)
	}
	spiA2, _ := a.dp.AllocSPI()
	spiB2, _ := b.dp.AllocSPI()
	newA, newB := childPair(a, b, spiA2, spiB2)
	must(t, InstallChild(b.dp, newB)) // responder first, as in CREATE_CHILD_SA
	must(t, InstallChild(a.dp, newA))
	must(t, RemoveChild(a.dp, oldA, true))
	must(t, RemoveChild(b.dp, oldB, true))
	if n := udpEcho(t, a, b, 3); n != 3 {
		t.Fatalf("after rekey: %d/3", n)
	}
	if cn, err := a.dp.Counters(Out, spiB2); err != nil || cn.Packets < 3 {
		t.Fatalf("new outbound SA: %+v %v", cn, err)
	}
	must(t, RemoveChild(a.dp, newA, false))
	if _, ok := a.dp.LookupPolicy(Flow{Src: a.inner, Dst: b.inner, Proto: 17}); ok {
		t.Fatal("policy left behind")
	}
	// A fresh inbound SPI but an outbound SPI already in use: the inbound
	// SA installed first must be rolled back.
	bad := *newB
	bad.InSPI = 0x777
	if err := InstallChild(b.dp, &bad); err == nil {
		t.Fatal("duplicate outbound SPI installed")
	}
	if _, err := b.dp.Counters(In, 0x777); err != ErrNoSA {
		t.Fatal("failed install left its inbound SA")
	}
}
