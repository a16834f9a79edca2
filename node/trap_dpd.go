package node

import (
	"time"

	"github.com/petrel-vpn/petrel/ike"
)

// DPD action trap (RFC 7296 §2.4 liveness; strongSwan's dpd_action=trap).
//
// When liveness checks declare a peer dead, the core destroys the IKE SA
// and reports EventPeerDead with the strongest action of its connection's
// children (restart over trap over clear). Restart the core does itself;
// for "trap" it leaves the rest to the node: the children whose
// dpd_action is trap get trap policies, the same ones start_action: trap
// installs (policy.go), so the next outbound packet matching one raises an
// Acquire and onAcquire initiates the connection again.
//
// The trap taken for DPD is released when the child is up again (child-up,
// whichever side set it up), when the connection is taken down (Down) and
// when a reload changes or removes the connection. A child that is trapped
// by start_action too keeps that trap, which is held apart (n.traps), and
// is never trapped twice. A re-initiation that fails (the peer is still
// away) leaves the trap in place: the next packet tries again, at most
// once a second (the data plane's Acquire rate).
//
// Route-based children (interface: NAME, with their device up: without
// one, as under the netstack backend, their SAs get policies and so does
// their trap) have no policies, and their
// devices raise nothing like an Acquire (a packet routed into the device
// with no SA is just dropped), so a trap child of theirs gets the restart
// behaviour instead: the connection is initiated again at once, logged.
// The selectors trapped are the configured ones (as for start_action),
// not the narrower ones a responder may have negotiated.

// connChild names a configured child.
type connChild struct{ conn, child string }

// dpdTrap applies dpd_action trap after the peer-dead event ev (on the
// loop, from flush before the dead SA's pairs are deleted, so policies the
// trap shares with them never go away in between; it must not flush, so a
// restart is queued).
func (n *Node) dpdTrap(ev ike.Event) {
	if ev.Reason != ike.DPDTrap.String() || n.closing {
		return
	}
	g := n.current()
	c, cc := g.conns[ev.Conn], g.cfg[ev.Conn]
	if c == nil || cc == nil {
		return // removed by a reload since
	}
	if n.dpdTraps == nil {
		n.dpdTraps = map[connChild][]polKey{}
	}
	restart := false
	for i, ch := range c.Children {
		if ch.DPDAction != ike.DPDTrap || i >= len(cc.Children) {
			continue
		}
		if rd := n.routeChild(ev.Conn, ch.Name); rd != nil {
			restart = true
			n.ikeLog.Warn("node: dpd_action trap on a route-based child: its device raises no acquire, restarting instead",
				"conn", ev.Conn, "child", ch.Name, "dev", rd.name)
			continue
		}
		if _, held := n.traps[ev.Conn+"/"+ch.Name]; held {
			n.dpLog.Info("node: peer dead: child stays trapped by its start_action", "conn", ev.Conn, "child", ch.Name)
			continue
		}
		k := connChild{ev.Conn, ch.Name}
		if _, held := n.dpdTraps[k]; held {
			continue
		}
		lts, rts := toSelectors(ch.LocalTS), toSelectors(ch.RemoteTS)
		reqID := n.reqIDFor(ev.Conn, ch.Name, lts, rts)
		n.trapEndpoints(reqID, c, &c.Children[i])
		n.dpdTraps[k] = n.holdPolicies(reqID, lts, rts)
		n.dpLog.Info("node: peer dead: trap installed", "conn", ev.Conn, "child", ch.Name)
	}
	if restart {
		name := ev.Conn
		// Not from here: onEvent runs inside flush.
		go func() {
			select {
			case n.in <- input{call: func(now time.Time) { _, _ = n.initiateLocked(now, name) }}:
			case <-n.quit:
			}
		}()
	}
}

// releaseDPDTrap drops the trap DPD took for a connection's child, if any,
// and says whether there was one.
func (n *Node) releaseDPDTrap(conn, child, why string) bool {
	k := connChild{conn, child}
	keys, ok := n.dpdTraps[k]
	if !ok {
		return false
	}
	delete(n.dpdTraps, k)
	n.releasePolicies(keys)
	n.dpLog.Info("node: dpd trap released", "conn", conn, "child", child, "why", why)
	return true
}

// releaseDPDTraps drops every DPD trap of a connection and returns how
// many there were.
func (n *Node) releaseDPDTraps(conn, why string) int {
	var children []string
	for k := range n.dpdTraps {
		if k.conn == conn {
			children = append(children, k.child)
		}
	}
	for _, ch := range children {
		n.releaseDPDTrap(conn, ch, why)
	}
	return len(children)
}
