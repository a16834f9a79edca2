package esp

import (
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary octets to Open for every suite, with and without
// ESN. Open must not panic, and a packet that fails before or at the ICV
// check must change nothing but its one drop counter: not the replay
// window, not the packet and byte counts (RFC 4303 §3.4.3, §3.4.4).
func FuzzOpen(f *testing.F) {
	type sa struct {
		out *Outbound
		in  *Inbound
	}
	var sas []sa
	for i := range suites {
		for _, esn := range []bool{false, true} {
			out, in := pair(f, i, esn, Tunnel)
			sas = append(sas, sa{out, in})
		}
	}
	for k, s := range sas {
		for n := range []int{0, 1, 40, 300} {
			f.Add(uint8(k), seal(f, s.out, testKey(n, byte(k)), 4))
		}
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(3), []byte{0xc0, 0xff, 0xee, 0x01, 0, 0, 0, 9})
	f.Fuzz(func(t *testing.T, which uint8, pkt []byte) {
		s := sas[int(which)%len(sas)]
		before, top := s.in.Counters(), s.in.HighestSeq()
		payload, _, _, err := s.in.Open(pkt)
		after, newTop := s.in.Counters(), s.in.HighestSeq()
		if err == nil {
			if after.Packets != before.Packets+1 || len(payload) > len(pkt) {
				t.Fatalf("success not counted: %+v", after)
			}
			return
		}
		postAuth := errors.Is(err, ErrPadding) || errors.Is(err, ErrNextHeader) || errors.Is(err, ErrDummy)
		if !postAuth && newTop != top {
			t.Fatalf("%v moved the window %d -> %d", err, top, newTop)
		}
		if after.Packets != before.Packets || after.Bytes != before.Bytes {
			t.Fatalf("%v counted as success", err)
		}
		drops := func(c Counters) uint64 { return c.ReplayDrops + c.AuthFailures + c.InvalidDrops }
		if d := drops(after) - drops(before); d > 1 || (d == 0 && !errors.Is(err, ErrDummy)) {
			t.Fatalf("%v: %d drop counters moved", err, d)
		}
	})
}
