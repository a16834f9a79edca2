package node

import (
	"fmt"
	"slices"
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
	case ike.OpActivate:
		err = n.activate(op.InSPI, "old pair deleted")
	case ike.OpDeactivate:
		err = n.deactivate(op.InSPI)
	case ike.OpUpdate:
		err = n.update(op)
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
	mode := esp.Tunnel
	if op.Mode == ike.ModeTransport {
		mode = esp.Transport
	}
	lts, rts := toSelectors(op.LocalTS), toSelectors(op.RemoteTS)
	// The pair holds its ReqID from here; a failed install lets it go, so
	// that the ReqID reqIDFor made is not kept for nothing.
	reqID := n.reqIDFor(conn, op.Name, lts, rts)
	n.useReqID(reqID)
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
		n.unuseReqID(reqID)
		return fmt.Errorf("node: inbound SA %s: %w%s", hex32(op.InSPI), err, n.kernelHint())
	}
	c := &installed{pair: spiPair{op.SPIi, op.SPIr}, name: op.Name, reqID: reqID, ifID: ifID, inSPI: op.InSPI, outSPI: op.OutSPI, at: now}
	if op.DeferOut && n.hasActive(reqID) {
		// The caller zeroes op's keys: keep a copy until activation.
		out.EncrKey, out.IntegKey = clone(op.EncrOut), clone(op.IntegOut)
		c.pendingOut = &out
		n.parked[op.InSPI] = c
	} else if err := n.dp.AddSA(out); err != nil {
		_ = n.dp.DeleteSA(dataplane.In, op.InSPI)
		n.unuseReqID(reqID)
		return fmt.Errorf("node: outbound SA %s: %w%s", hex32(op.OutSPI), err, n.kernelHint())
	}
	n.children[op.InSPI] = c
	n.pairsOf[reqID] = append(n.pairsOf[reqID], c)
	if rd == nil { // route-based: the device's if_id replaces policies
		c.policies = n.holdPolicies(reqID, lts, rts)
	}
	return nil
}

// update moves a pair to the outer addresses of its IKE SA, which followed
// its peer behind a NAT to a new address or port (RFC 7296 §2.23). A
// parked outbound SA is not in the data plane yet: its copy moves, so it
// is activated at the new addresses; one already removed for our Delete
// stays gone. The inbound SA moves too: the ports of ESP in UDP it
// expects are the peer's new ones (RFC 3948 §2.1; the kernel reports a
// packet from other ports as a NAT mapping change).
func (n *Node) update(op *ike.ChildOp) error {
	c := n.children[op.InSPI]
	if c == nil {
		return fmt.Errorf("node: no Child SA with inbound SPI %s", hex32(op.InSPI))
	}
	var first error
	switch {
	case c.pendingOut != nil:
		c.pendingOut.Local, c.pendingOut.Remote, c.pendingOut.Encap = op.Local, op.Remote, op.UDPEncap
	case c.outGone:
	default:
		if err := n.dp.UpdateSA(dataplane.Out, c.outSPI, op.Local, op.Remote, op.UDPEncap); err != nil {
			first = fmt.Errorf("node: outbound SA %s: %w", hex32(c.outSPI), err)
		}
	}
	if err := n.dp.UpdateSA(dataplane.In, c.inSPI, op.Local, op.Remote, op.UDPEncap); err != nil && first == nil {
		first = fmt.Errorf("node: inbound SA %s: %w", hex32(c.inSPI), err)
	}
	if first == nil {
		n.dpLog.Debug("node: Child SA moved", "child", c.name, "in_spi", hex32(c.inSPI), "out_spi", hex32(c.outSPI), "remote", op.Remote)
	}
	return first
}

// remove deletes a Child SA pair and its policies, keeping its counters in
// the node's totals.
func (n *Node) remove(inSPI uint32) error {
	c := n.children[inSPI]
	if c == nil {
		return fmt.Errorf("node: no Child SA with inbound SPI %s", hex32(inSPI))
	}
	delete(n.children, inSPI)
	n.pairsOf[c.reqID] = slices.DeleteFunc(n.pairsOf[c.reqID], func(o *installed) bool { return o == c })
	if len(n.pairsOf[c.reqID]) == 0 {
		delete(n.pairsOf, c.reqID)
	}
	wasParked := c.pendingOut != nil
	if co, err := n.dp.Counters(dataplane.Out, c.outSPI); err == nil && !c.outGone {
		n.stats.retire(co, false)
	}
	n.releasePolicies(c.policies)
	if !wasParked {
		// Before the delete, as in deactivate: the data plane picks a
		// packet's outbound SA by ReqID, and a packet classified between
		// the delete and the heir's activation would find none.
		n.activateHeir(c.reqID)
	}
	var first error
	switch {
	case c.pendingOut != nil:
		n.dropPending(c, true)
	case c.outGone:
	default:
		if err := n.dp.DeleteSA(dataplane.Out, c.outSPI); err != nil {
			first = err
		}
	}
	n.lingerInbound(c.inSPI)
	n.unuseReqID(c.reqID)
	return first
}

// deactivate removes the outbound SA of a pair we are deleting, keeping
// its counters in the totals; the inbound SA stays until remove.
func (n *Node) deactivate(inSPI uint32) error {
	c := n.children[inSPI]
	if c == nil || c.outGone {
		return nil
	}
	c.outGone = true
	if c.pendingOut != nil {
		n.dropPending(c, true)
		return nil
	}
	if co, err := n.dp.Counters(dataplane.Out, c.outSPI); err == nil {
		n.stats.retire(co, false)
	}
	n.activateHeir(c.reqID) // before the delete: never a moment without one
	return n.dp.DeleteSA(dataplane.Out, c.outSPI)
}

// activateHeir activates the newest parked outbound SA of reqID when the
// last active pair of that ReqID is gone, so the child never goes without
// an outbound SA while a pair waits (a reauthentication's new IKE SA whose
// old one was deleted before traffic arrived on the new pair). A
// collision's redundant pair is never the heir: the winner is active.
func (n *Node) activateHeir(reqID uint32) {
	var heir *installed
	for _, o := range n.pairsOf[reqID] {
		if o.outGone {
			continue
		}
		if o.pendingOut == nil {
			return // an active pair remains
		}
		if heir == nil || o.at.After(heir.at) {
			heir = o
		}
	}
	if heir == nil {
		return
	}
	if err := n.activate(heir.inSPI, "last active pair deleted"); err != nil {
		n.dpLog.Error("node: data plane", "op", "activate", "child", heir.name, "in_spi", hex32(heir.inSPI), "err", err)
	}
}

// hasActive reports whether an installed pair of reqID sends: a parked
// pair with no active one to stand in for it would be a black hole (a
// reauthenticating peer that changed its selectors has a new ReqID).
func (n *Node) hasActive(reqID uint32) bool {
	for _, o := range n.pairsOf[reqID] {
		if o.pendingOut == nil && !o.outGone {
			return true
		}
	}
	return false
}

// inboundLinger is how long the inbound SA of a deleted pair keeps
// accepting packets (like strongSwan's delete_rekeyed_delay): ESP the peer
// sealed on the pair before it handled the Delete may still be in its
// pipeline or on the wire when the Delete exchange completes. The pair is
// gone from the books at once; only its inbound SA waits.
const inboundLinger = 2 * time.Second

type lingering struct {
	spi   uint32
	until time.Time
}

// lingerInbound schedules the inbound SA's deletion (at once when the node
// is closing).
func (n *Node) lingerInbound(spi uint32) {
	if n.closing {
		n.deleteInbound(spi)
		return
	}
	n.lingering = append(n.lingering, lingering{spi, time.Now().Add(inboundLinger)})
}

// expireLingering deletes the inbound SAs whose time is up.
func (n *Node) expireLingering(now time.Time) {
	i := 0
	for ; i < len(n.lingering) && !now.Before(n.lingering[i].until); i++ {
		n.deleteInbound(n.lingering[i].spi)
	}
	n.lingering = n.lingering[i:]
}

func (n *Node) deleteInbound(spi uint32) {
	if ci, err := n.dp.Counters(dataplane.In, spi); err == nil {
		n.stats.retire(ci, true)
	}
	if err := n.dp.DeleteSA(dataplane.In, spi); err != nil {
		n.dpLog.Error("node: data plane", "op", "delete inbound", "in_spi", hex32(spi), "err", err)
	}
}

// activateInterval is how often pairs waiting for activation are checked
// for inbound traffic.
const activateInterval = 100 * time.Millisecond

// activate installs the deferred outbound SA of the pair with inbound SPI
// inSPI, making it the one the data plane sends with. A pair already
// active, or gone, is left alone.
func (n *Node) activate(inSPI uint32, why string) error {
	c := n.children[inSPI]
	if c == nil || c.pendingOut == nil {
		return nil
	}
	out := c.pendingOut
	n.dropPending(c, false)
	defer func() { clear(out.EncrKey); clear(out.IntegKey) }()
	if err := n.dp.AddSA(*out); err != nil {
		// Not active after all: let another parked pair take over.
		c.outGone = true
		n.activateHeir(c.reqID)
		return fmt.Errorf("node: outbound SA %s: %w%s", hex32(out.SPI), err, n.kernelHint())
	}
	n.dpLog.Debug("node: outbound SA activated", "child", c.name, "in_spi", hex32(inSPI), "out_spi", hex32(out.SPI), "why", why)
	return nil
}

// dropPending forgets a deferred outbound SA; zero says whether its keys
// go too (activate hands them to the data plane first).
func (n *Node) dropPending(c *installed, zero bool) {
	if c.pendingOut == nil {
		return
	}
	if zero {
		clear(c.pendingOut.EncrKey)
		clear(c.pendingOut.IntegKey)
	}
	c.pendingOut = nil
	delete(n.parked, c.inSPI)
}

// activateOnTraffic activates deferred pairs whose inbound SA received a
// packet: the peer, having installed the pair, sends on it, so it can
// receive on it too (RFC 7296 §2.8).
func (n *Node) activateOnTraffic() {
	for in, c := range n.parked {
		if cnt, err := n.dp.Counters(dataplane.In, in); err == nil && cnt.Packets > 0 {
			if err := n.activate(in, "inbound traffic"); err != nil {
				n.dpLog.Error("node: data plane", "op", "activate", "child", c.name, "in_spi", hex32(in), "err", err)
			}
		}
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

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
