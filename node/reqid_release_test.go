package node

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/dataplane"
)

// reqIDPlane is a data plane that only keeps which outbound SAs and
// policies use each ReqID and which ReqIDs were released, and fails the
// test if one is released while something of it is installed.
type reqIDPlane struct {
	dataplane.DataPlane // nil: only the methods below are called
	t                   *testing.T
	out                 map[uint32]uint32 // SPI -> ReqID
	pols                map[[2]dataplane.Selector]uint32
	endpoints           map[uint32][2]netip.Addr
	released            map[uint32]int
}

func newReqIDPlane(t *testing.T) *reqIDPlane {
	return &reqIDPlane{t: t, out: map[uint32]uint32{}, pols: map[[2]dataplane.Selector]uint32{},
		endpoints: map[uint32][2]netip.Addr{}, released: map[uint32]int{}}
}

func (d *reqIDPlane) AddSA(sa dataplane.SA) error {
	d.out[sa.SPI] = sa.ReqID
	return nil
}

func (d *reqIDPlane) DeleteSA(_ dataplane.Direction, spi uint32) error {
	delete(d.out, spi)
	return nil
}

func (d *reqIDPlane) AddPolicy(p dataplane.Policy) error {
	d.pols[[2]dataplane.Selector{p.Local, p.Remote}] = p.ReqID
	return nil
}

func (d *reqIDPlane) DeletePolicy(p dataplane.Policy) error {
	delete(d.pols, [2]dataplane.Selector{p.Local, p.Remote})
	return nil
}

func (d *reqIDPlane) ReleaseReqID(id uint32) {
	for spi, r := range d.out {
		if r == id {
			d.t.Errorf("ReqID %d released while outbound SA %#x has it", id, spi)
		}
	}
	for sel, r := range d.pols {
		if r == id {
			d.t.Errorf("ReqID %d released while policy %v has it", id, sel)
		}
	}
	d.released[id]++
	delete(d.endpoints, id)
}

func reqIDNode(dp dataplane.DataPlane) *Node {
	return &Node{dp: dp, dpLog: slog.New(slog.DiscardHandler),
		reqIDs: map[string]uint32{}, reqConn: map[uint32]string{}, reqKey: map[uint32]string{}, reqUse: map[uint32]int{},
		policies: map[polKey]*policyRef{}, traps: map[string][]polKey{}}
}

// pairUp and pairDown do for the ReqIDs and policies what install and
// remove (ops.go) do.
func pairUp(n *Node, spi uint32, lts, rts []dataplane.Selector) (uint32, []polKey) {
	id := n.reqIDFor("rw", "net", lts, rts)
	n.useReqID(id)
	_ = n.dp.AddSA(dataplane.SA{Dir: dataplane.Out, SPI: spi, ReqID: id})
	return id, n.holdPolicies(id, lts, rts)
}

func pairDown(n *Node, spi, id uint32, keys []polKey) {
	n.releasePolicies(keys)
	_ = n.dp.DeleteSA(dataplane.Out, spi)
	n.unuseReqID(id)
}

// TestReqIDReleasedToDataPlane: a road-warrior gateway gives each client
// address a ReqID of its own; when the client goes the node forgets the
// ReqID and tells the data plane, once, after its SA and policies went.
// Nothing is kept per ReqID afterwards, here or there.
func TestReqIDReleasedToDataPlane(t *testing.T) {
	dp := newReqIDPlane(t)
	n := reqIDNode(dp)
	lts := []dataplane.Selector{dataplane.MustSelector("10.0.0.0/16")}
	const clients = 500
	for i := range clients {
		rts := []dataplane.Selector{dataplane.PrefixSelector(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}), 32))}
		id, keys := pairUp(n, uint32(0x1000+i), lts, rts)
		// A rekey: a second pair of the same selectors shares the ReqID.
		if id2, keys2 := pairUp(n, uint32(0x100000+i), lts, rts); id2 != id {
			t.Fatalf("rekeyed pair got ReqID %d, want %d", id2, id)
		} else {
			pairDown(n, uint32(0x1000+i), id, keys)
			if dp.released[id] != 0 {
				t.Fatalf("ReqID %d released while its rekeyed pair is up", id)
			}
			pairDown(n, uint32(0x100000+i), id, keys2)
		}
		if dp.released[id] != 1 {
			t.Fatalf("ReqID %d released %d times, want 1", id, dp.released[id])
		}
	}
	if len(dp.released) != clients {
		t.Fatalf("%d ReqIDs released, want %d", len(dp.released), clients)
	}
	if k := len(n.reqIDs) + len(n.reqConn) + len(n.reqKey) + len(n.reqUse) + len(n.policies); k != 0 {
		t.Fatalf("node keeps %d entries after all clients went", k)
	}
}

// TestReqIDTrapKeepsEndpoints: a trap's ReqID is not released while the
// trap holds its policies, though a pair with the same selectors comes and
// goes; it is released with the trap.
func TestReqIDTrapKeepsEndpoints(t *testing.T) {
	dp := newReqIDPlane(t)
	n := reqIDNode(dp)
	lts, rts := []dataplane.Selector{dataplane.MustSelector("10.1.0.0/24")}, []dataplane.Selector{dataplane.MustSelector("10.2.0.0/24")}
	trap := n.reqIDFor("rw", "net", lts, rts)
	ends := [2]netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")}
	dp.endpoints[trap] = ends // trapEndpoints (XFRM's SetTunnelEndpoints)
	n.traps["rw/net"] = n.holdPolicies(trap, lts, rts)
	for i := range 3 {
		id, keys := pairUp(n, uint32(0x2000+i), lts, rts)
		if id != trap {
			t.Fatalf("pair of the trap's selectors got ReqID %d, want %d", id, trap)
		}
		pairDown(n, uint32(0x2000+i), id, keys)
	}
	if dp.released[trap] != 0 || dp.endpoints[trap] != ends {
		t.Fatalf("trap's ReqID released %d times, endpoints %v", dp.released[trap], dp.endpoints[trap])
	}
	if len(dp.pols) != 1 {
		t.Fatalf("trap policies %v", dp.pols)
	}
	n.releasePolicies(n.traps["rw/net"])
	delete(n.traps, "rw/net")
	if dp.released[trap] != 1 || len(n.reqUse) != 0 {
		t.Fatalf("after the trap went: released %d, node uses %v", dp.released[trap], n.reqUse)
	}
}
