package node

import (
	"fmt"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/ike"
)

// apply carries out one data-plane operation of the core and zeroes the
// keys it held (the core keeps no copy, ike.ChildOp).
func (n *Node) apply(now time.Time, op *ike.ChildOp) {
	defer func() {
		clear(op.EncrIn)
		clear(op.IntegIn)
		clear(op.EncrOut)
		clear(op.IntegOut)
	}()
	var err error
	switch op.Kind {
	case ike.OpInstall:
		err = n.install(now, op)
	case ike.OpDelete:
		err = n.remove(op.InSPI)
	}
	if err != nil {
		n.dpLog.Error("node: data plane", "op", op.Kind.String(), "child", op.Name, "in_spi", hex32(op.InSPI), "err", err)
	}
}

func toSelectors(ts []ike.TrafficSelector) []dataplane.Selector {
	out := make([]dataplane.Selector, len(ts))
	for i, t := range ts {
		out[i] = dataplane.Selector{Start: t.Start, End: t.End, Proto: t.Proto, StartPort: t.StartPort, EndPort: t.EndPort}
	}
	return out
}

// install adds the inbound SA, then the outbound one, then one Protect
// policy per pair of local and remote selectors (RFC 4301 §4.4.1); a
// route-based child's SAs get its device's if_id instead of policies.
func (n *Node) install(now time.Time, op *ike.ChildOp) error {
	conn := n.connOf(op)
	reqID := n.reqIDFor(conn, op.Name)
	mode := esp.Tunnel
	if op.Mode == ike.ModeTransport {
		mode = esp.Transport
	}
	lts, rts := toSelectors(op.LocalTS), toSelectors(op.RemoteTS)
	var ifID uint32
	rd := n.routeChild(conn, op.Name)
	if rd != nil {
		ifID = rd.ifID
	}
	in := dataplane.SA{Dir: dataplane.In, SPI: op.InSPI, ReqID: reqID, IfID: ifID, Mode: mode, Local: op.Local, Remote: op.Remote,
		Encap: op.UDPEncap, Encr: op.Encr, EncrKey: op.EncrIn, Integ: op.Integ, IntegKey: op.IntegIn, ESN: op.ESN,
		LocalTS: lts, RemoteTS: rts}
	out := in
	out.Dir, out.SPI, out.EncrKey, out.IntegKey = dataplane.Out, op.OutSPI, op.EncrOut, op.IntegOut
	if err := n.dp.AddSA(in); err != nil {
		return fmt.Errorf("node: inbound SA %s: %w%s", hex32(op.InSPI), err, n.kernelHint())
	}
	if err := n.dp.AddSA(out); err != nil {
		_ = n.dp.DeleteSA(dataplane.In, op.InSPI)
		return fmt.Errorf("node: outbound SA %s: %w%s", hex32(op.OutSPI), err, n.kernelHint())
	}
	c := &installed{pair: spiPair{op.SPIi, op.SPIr}, name: op.Name, reqID: reqID, ifID: ifID, inSPI: op.InSPI, outSPI: op.OutSPI, at: now}
	n.children[op.InSPI] = c
	if rd == nil { // route-based: the device's if_id replaces policies
		c.policies = n.holdPolicies(reqID, lts, rts)
	}
	return nil
}

// remove deletes a Child SA pair and its policies, keeping its counters in
// the node's totals.
func (n *Node) remove(inSPI uint32) error {
	c := n.children[inSPI]
	if c == nil {
		return fmt.Errorf("node: no Child SA with inbound SPI %s", hex32(inSPI))
	}
	delete(n.children, inSPI)
	if ci, err := n.dp.Counters(dataplane.In, c.inSPI); err == nil {
		n.stats.retire(ci, true)
	}
	if co, err := n.dp.Counters(dataplane.Out, c.outSPI); err == nil {
		n.stats.retire(co, false)
	}
	n.releasePolicies(c.policies)
	var first error
	if err := n.dp.DeleteSA(dataplane.Out, c.outSPI); err != nil && first == nil {
		first = err
	}
	if err := n.dp.DeleteSA(dataplane.In, c.inSPI); err != nil && first == nil {
		first = err
	}
	return first
}

func hex32(v uint32) string { return fmt.Sprintf("%08x", v) }
func hex64(v uint64) string { return fmt.Sprintf("%016x", v) }

// connOf names the connection of an operation's IKE SA.
func (n *Node) connOf(op *ike.ChildOp) string {
	for _, g := range n.gens {
		for _, spi := range []uint64{op.SPIi, op.SPIr} {
			if sa := g.ep.SA(spi); sa != nil && sa.Conn() != nil {
				return sa.Conn().Name
			}
		}
	}
	return "?"
}
