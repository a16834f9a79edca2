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
		if !active(0x2001) || a.pending != 0 {
			t.Fatalf("lone DeferOut pair parked: active %v, pending %d", active(0x2001), a.pending)
		}
		// An active pair and its parked successor; our Delete of the old
		// pair activates the successor.
		for _, o := range []ike.ChildOp{op(ike.OpInstall, 0x1002, 0x2002, false, "10.2.0.0/24"), op(ike.OpInstall, 0x1003, 0x2003, true, "10.2.0.0/24")} {
			a.apply(now, &o)
		}
		if !active(0x2002) || active(0x2003) || a.pending != 1 {
			t.Fatalf("successor not parked: old %v new %v pending %d", active(0x2002), active(0x2003), a.pending)
		}
		d := op(ike.OpDeactivate, 0x1002, 0x2002, false, "10.2.0.0/24")
		a.apply(now, &d)
		if active(0x2002) || !active(0x2003) || a.pending != 0 {
			t.Fatalf("after deactivating the old pair: old %v new %v pending %d", active(0x2002), active(0x2003), a.pending)
		}
		// The same with a removal while an earlier pair is already being
		// deleted (outGone): the parked heir still takes over.
		for _, o := range []ike.ChildOp{op(ike.OpInstall, 0x1004, 0x2004, true, "10.2.0.0/24"), op(ike.OpDeactivate, 0x1003, 0x2003, false, "10.2.0.0/24")} {
			a.apply(now, &o)
		}
		if !active(0x2004) || a.pending != 0 {
			t.Fatalf("heir with an outgoing pair around: active %v pending %d", active(0x2004), a.pending)
		}
		for _, in := range []uint32{0x1001, 0x1002, 0x1003, 0x1004} {
			del := op(ike.OpDelete, in, in+0x1000, false, "10.2.0.0/24")
			a.apply(now, &del)
		}
		if len(a.children) != 0 || a.pending != 0 {
			t.Fatalf("left: %d pairs, %d parked", len(a.children), a.pending)
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
