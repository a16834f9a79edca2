package dataplane

import (
	"bytes"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// FuzzInboundInner seals fuzzer-chosen inner packets with a real SA and
// runs the data plane's inbound stage (open, rebuild the transport header,
// parse, check traffic selectors) on them. It must not panic; a packet is
// either delivered unchanged (tunnel mode) or dropped and counted.
func FuzzInboundInner(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 1, 0, 1, 10, 2, 0, 1, 0, 7, 0, 7, 0, 8, 0, 0}, false)
	f.Add(bytes.Repeat([]byte{0x60}, 48), false)
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, true)
	f.Add([]byte{0x46, 0, 0, 24, 0, 0, 0x20, 1, 64, 6}, false)
	mk := func(mode esp.Mode, encap bool) (*esp.Outbound, *inSA) {
		c := esp.Config{SPI: 0x5151, Encr: wire.EncrAES_GCM_16, EncrKey: make([]byte, 20), Mode: mode}
		out, _ := esp.NewOutbound(c)
		in, _ := esp.NewInbound(c)
		sa := SA{Mode: mode, Encap: encap, Local: netip.MustParseAddrPort("192.0.2.2:4500"), Remote: netip.MustParseAddrPort("192.0.2.1:4500"),
			LocalTS:  []Selector{MustSelector("10.2.0.0/16"), MustSelector("192.0.2.2/32"), MustSelector("fd00:2::/64")},
			RemoteTS: []Selector{MustSelector("10.1.0.0/16"), MustSelector("192.0.2.1/32"), MustSelector("fd00:1::/64")}}
		return out, &inSA{in, sa, new(atomic.Int64)}
	}
	tout, tin := mk(esp.Tunnel, true)
	rout, rin := mk(esp.Transport, true) // UDP encap: checksums are rebuilt
	b := newBatch()
	f.Fuzz(func(t *testing.T, inner []byte, transport bool) {
		if len(inner) > 1500 {
			return
		}
		out, in := tout, tin
		nh := byte(protoIPIP)
		if len(inner) > 0 && inner[0]>>4 == 6 {
			nh = protoIPv6
		}
		if transport {
			out, in, nh = rout, rin, protoUDP
		}
		buf := b.bufs[0]
		copy(buf[headroom:], inner)
		pkt, err := out.Seal(buf[headroom-out.HeaderLen():headroom+len(inner)], len(inner), nh)
		if err != nil {
			t.Fatal(err)
		}
		b.n, b.sizes[0], b.isa[0], b.dev[0] = 1, len(pkt), in, &device{}
		in.inflight.Add(1)
		copy(buf[headroom:], pkt) // the receive path reads ESP at headroom
		before := in.Counters()
		openBatch(b)
		after := in.Counters()
		res := b.res[0]
		b.reset()
		if after.Packets != before.Packets+1 {
			t.Fatalf("authentic packet not counted: %+v", after)
		}
		if res == nil {
			if after.PolicyDrops != before.PolicyDrops+1 {
				t.Fatalf("dropped without counting")
			}
			return
		}
		got := res[writeOffset:]
		if !transport && !bytes.Equal(got, inner) {
			t.Fatalf("tunnel mode changed the packet")
		}
		if transport {
			l4 := got[20:]
			if len(l4) != len(inner) {
				t.Fatalf("transport payload %d octets, want %d", len(l4), len(inner))
			}
			if len(inner) >= 8 && !l4Valid(got, 20, false) {
				t.Fatalf("UDP checksum not rebuilt")
			}
			if len(inner) >= 8 && (!bytes.Equal(l4[:6], inner[:6]) || !bytes.Equal(l4[8:], inner[8:])) {
				t.Fatalf("transport mode changed more than the checksum")
			}
		}
	})
}
