package node

import (
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/ike"
)

// usageInterval is how often the data plane's per-SA counters go to the
// core, which acts on byte and packet lifetimes (ike.Endpoint.ChildUsage).
const usageInterval = 5 * time.Second

// reportUsage reads both directions' counters of every installed Child SA
// and hands them to the core.
func (n *Node) reportUsage(now time.Time) {
	dp := n.dpOrNil()
	if dp == nil || len(n.children) == 0 {
		return
	}
	usage := make([]ike.ChildUsage, 0, len(n.children))
	for _, c := range n.children {
		u := ike.ChildUsage{InSPI: c.inSPI}
		if in, err := dp.Counters(dataplane.In, c.inSPI); err == nil {
			u.Bytes, u.Packets = in.Bytes, in.Packets
		}
		if out, err := dp.Counters(dataplane.Out, c.outSPI); err == nil {
			u.Bytes, u.Packets = u.Bytes+out.Bytes, u.Packets+out.Packets
		}
		usage = append(usage, u)
	}
	for _, g := range n.gens {
		g.ep.ChildUsage(now, usage, &n.out)
		n.flush(now)
	}
}

// ikeRekeyed moves the books of an IKE SA to the one that replaced it
// (RFC 7296 §2.18): its index, start time and Child SAs.
func (n *Node) ikeRekeyed(ev ike.Event) {
	old, nw := spiPair{ev.OldSPIi, ev.OldSPIr}, spiPair{ev.SPIi, ev.SPIr}
	info := n.sas[old]
	if info == nil {
		n.nextIndex++
		info = &saInfo{index: n.nextIndex}
	}
	n.sas[nw] = info
	for _, c := range n.children {
		if c.pair == old {
			c.pair = nw
		}
	}
}
