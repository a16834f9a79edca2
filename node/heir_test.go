package node

import (
	"net/netip"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// Parked outbound SAs (ChildOp.DeferOut) never leave a child without one:
// a parked pair whose ReqID has no active pair is installed at once, and
// deactivating (our Delete) or removing the last active pair activates the
// parked heir first.
func TestParkedPairNeverStranded(t *testing.T) {
	a, _, _, _ := startPair(t, LoopbackOptions{})
	lo := netip.MustParseAddrPort("127.0.0.1:4500")
	ts := func(p string) []ike.TrafficSelector {
		pf := netip.MustParsePrefix(p)
		return []ike.TrafficSelector{{Start: pf.Masked().Addr(), End: lastAddr(pf), EndPort: 0xffff}}
	}
	op := func(kind ike.ChildOpKind, in, out uint32, deferOut bool, remote string) ike.ChildOp {
		key := make([]byte, 36)
		key[0] = byte(in)
		return ike.ChildOp{Kind: kind, Name: "net", InSPI: in, OutSPI: out, Mode: ike.ModeTunnel, Encr: wire.EncrAES_GCM_16,
			EncrKeyBits: 256, EncrIn: append([]byte(nil), key...), EncrOut: append([]byte(nil), key...),
			LocalTS: ts("10.1.0.0/24"), RemoteTS: ts(remote), Local: lo, Remote: lo, UDPEncap: true, DeferOut: deferOut}
	}
	active := func(out uint32) bool {
		_, err := a.dp.Counters(dataplane.Out, out)
		return err == nil
	}
	run := func(f func(now time.Time)) {
		t.Helper()
		if err := a.do(f); err != nil {
			t.Fatal(err)
		}
	}
	run(func(now time.Time) {
		// A parked pair with no active pair of its ReqID (other selectors):
		// installed at once.
		o := op(ike.OpInstall, 0x1001, 0x2001, true, "10.9.0.0/24")
		a.apply(now, &o)
		if !active(0x2001) || len(a.parked) != 0 {
			t.Fatalf("lone DeferOut pair parked: active %v, pending %d", active(0x2001), len(a.parked))
		}
		// An active pair and its parked successor; our Delete of the old
		// pair activates the successor.
		for _, o := range []ike.ChildOp{op(ike.OpInstall, 0x1002, 0x2002, false, "10.2.0.0/24"), op(ike.OpInstall, 0x1003, 0x2003, true, "10.2.0.0/24")} {
			a.apply(now, &o)
		}
		if !active(0x2002) || active(0x2003) || len(a.parked) != 1 {
			t.Fatalf("successor not parked: old %v new %v pending %d", active(0x2002), active(0x2003), len(a.parked))
		}
		d := op(ike.OpDeactivate, 0x1002, 0x2002, false, "10.2.0.0/24")
		a.apply(now, &d)
		if active(0x2002) || !active(0x2003) || len(a.parked) != 0 {
			t.Fatalf("after deactivating the old pair: old %v new %v pending %d", active(0x2002), active(0x2003), len(a.parked))
		}
		// The same with a removal while an earlier pair is already being
		// deleted (outGone): the parked heir still takes over.
		for _, o := range []ike.ChildOp{op(ike.OpInstall, 0x1004, 0x2004, true, "10.2.0.0/24"), op(ike.OpDeactivate, 0x1003, 0x2003, false, "10.2.0.0/24")} {
			a.apply(now, &o)
		}
		if !active(0x2004) || len(a.parked) != 0 {
			t.Fatalf("heir with an outgoing pair around: active %v pending %d", active(0x2004), len(a.parked))
		}
		for _, in := range []uint32{0x1001, 0x1002, 0x1003, 0x1004} {
			del := op(ike.OpDelete, in, in+0x1000, false, "10.2.0.0/24")
			a.apply(now, &del)
		}
		if len(a.children) != 0 || len(a.parked) != 0 {
			t.Fatalf("left: %d pairs, %d parked", len(a.children), len(a.parked))
		}
	})
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	return netip.AddrFrom4(b)
}

// outDeleteHook is a data plane that calls before on every outbound
// DeleteSA, ahead of the real one.
type outDeleteHook struct {
	dataplane.DataPlane
	before func(spi uint32)
}

func (h outDeleteHook) DeleteSA(dir dataplane.Direction, spi uint32) error {
	if dir == dataplane.Out {
		h.before(spi)
	}
	return h.DataPlane.DeleteSA(dir, spi)
}

// The last active pair removed without an OpActivate for its successor
// (the peer deleted the IKE SA it belonged to: a reauthentication whose new
// IKE SA holds the parked heir) hands over to the heir before its outbound
// SA goes. The data plane picks outbound SAs by ReqID: with the old one
// deleted first, a packet read in between finds no SA and is dropped (the
// echo that TestChildRekeyUnderTraffic lost about one run in ten under
// -race, reauth-by-a and reauth-by-b).
func TestHeirActivatedBeforeRemovedPairsOutboundGoes(t *testing.T) {
	a, _, _, _ := startPair(t, LoopbackOptions{})
	lo := netip.MustParseAddrPort("127.0.0.1:4500")
	pf := netip.MustParsePrefix("10.2.0.0/24")
	ts := []ike.TrafficSelector{{Start: pf.Addr(), End: lastAddr(pf), EndPort: 0xffff}}
	lts := []ike.TrafficSelector{{Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.0.255"), EndPort: 0xffff}}
	op := func(kind ike.ChildOpKind, in, out uint32, deferOut bool) ike.ChildOp {
		key := make([]byte, 36)
		key[0] = byte(in)
		return ike.ChildOp{Kind: kind, Name: "net", InSPI: in, OutSPI: out, Mode: ike.ModeTunnel, Encr: wire.EncrAES_GCM_16,
			EncrKeyBits: 256, EncrIn: append([]byte(nil), key...), EncrOut: append([]byte(nil), key...),
			LocalTS: lts, RemoteTS: ts, Local: lo, Remote: lo, UDPEncap: true, DeferOut: deferOut}
	}
	active := func(dp dataplane.DataPlane, out uint32) bool {
		_, err := dp.Counters(dataplane.Out, out)
		return err == nil
	}
	var heirAtDelete, deleted bool
	if err := a.do(func(now time.Time) {
		for _, o := range []ike.ChildOp{op(ike.OpInstall, 0x1102, 0x2102, false), op(ike.OpInstall, 0x1103, 0x2103, true)} {
			a.apply(now, &o)
		}
		if !active(a.dp, 0x2102) || active(a.dp, 0x2103) || len(a.parked) != 1 {
			t.Errorf("successor not parked: old %v new %v pending %d", active(a.dp, 0x2102), active(a.dp, 0x2103), len(a.parked))
			return
		}
		real := a.dp
		a.dp = outDeleteHook{real, func(spi uint32) {
			if spi == 0x2102 {
				deleted, heirAtDelete = true, active(real, 0x2103)
			}
		}}
		defer func() { a.dp = real }()
		del := op(ike.OpDelete, 0x1102, 0x2102, false)
		a.apply(now, &del)
		if !active(real, 0x2103) || len(a.parked) != 0 {
			t.Errorf("heir not activated: active %v pending %d", active(real, 0x2103), len(a.parked))
		}
		del = op(ike.OpDelete, 0x1103, 0x2103, false)
		a.apply(now, &del)
	}); err != nil {
		t.Fatal(err)
	}
	if !deleted {
		t.Fatal("the old pair's outbound SA was never deleted")
	}
	if !heirAtDelete {
		t.Error("the old pair's outbound SA was deleted before its parked heir was activated: packets in between find no outbound SA")
	}
}
