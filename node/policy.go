package node

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/ike"
)

// Policies and trap.
//
// Every child of a connection has a ReqID that stays the same for all its
// Child SAs (re-established, rekeyed), so its policies can outlive one SA:
// make-before-break works (the data plane sends with the newest outbound SA
// of the ReqID) and a changed connection's new SA is not left without
// policies when its predecessor's delete comes back later. A policy is
// shared by reference count between the SAs and the trap that use it.
//
// A child with start_action: trap has its policies installed from the
// start; the first packet that matches one makes the data plane raise an
// Acquire, and the node initiates the connection (RFC 4301 §4.4.1 "on
// demand"; strongSwan's trap policies). A child with dpd_action: trap
// gets the same policies when its peer is declared dead (trap_dpd.go).

// polKey identifies a policy by its selectors, as the data plane does.
type polKey struct{ local, remote dataplane.Selector }

type policyRef struct {
	p    dataplane.Policy
	refs int
}

// reqIDFor returns the ReqID of a connection's child with the given
// selectors. Like strongSwan's reqids it follows the selectors, not only
// the child: a rekeyed or reauthenticated pair (same selectors) keeps its
// ReqID, so make-before-break and shared policies work, while two peers of
// one connection (a hub, road warriors) negotiate different selectors and
// get different ReqIDs, so each peer's traffic goes to its own SA instead
// of to whichever peer connected last. A trap with the configured
// selectors shares the ReqID of the pair that negotiates the same ones.
func (n *Node) reqIDFor(conn, child string, lts, rts []dataplane.Selector) uint32 {
	k := fmt.Sprintf("%s/%s|%v|%v", conn, child, lts, rts)
	if id, ok := n.reqIDs[k]; ok {
		return id
	}
	n.nextReqID++
	n.reqIDs[k] = n.nextReqID
	n.reqConn[n.nextReqID] = conn
	n.reqKey[n.nextReqID] = k
	return n.nextReqID
}

// useReqID counts a pair or a policy that uses reqID; unuseReqID drops the
// count and forgets the ReqID when nothing uses it any more, so a gateway
// whose peers come and go with different selectors does not collect them.
// ReqIDs are never reused (nextReqID only grows).
func (n *Node) useReqID(reqID uint32) { n.reqUse[reqID]++ }

func (n *Node) unuseReqID(reqID uint32) {
	if n.reqUse[reqID]--; n.reqUse[reqID] > 0 {
		return
	}
	n.forgetReqID(reqID)
}

// forgetReqID drops a ReqID no pair and no policy uses, here and in the
// data plane (its tunnel endpoints and Acquire time there). The count
// covers every policy of the ReqID, a trap's included, so a trapped
// ReqID keeps the endpoints trapEndpoints gave it; the data plane keeps
// them anyway while an SA or policy of the ReqID is still installed
// (an inbound SA lingering after its pair is removed needs none).
func (n *Node) forgetReqID(reqID uint32) {
	delete(n.reqUse, reqID)
	delete(n.reqIDs, n.reqKey[reqID])
	delete(n.reqKey, reqID)
	delete(n.reqConn, reqID)
	if n.dp != nil {
		n.dp.ReleaseReqID(reqID)
	}
}

// holdPolicies takes a reference on a Protect policy for every pair of
// local and remote selectors, installing those not yet there. A pair
// another child already holds is skipped and logged.
func (n *Node) holdPolicies(reqID uint32, lts, rts []dataplane.Selector) []polKey {
	var keys []polKey
	for _, l := range lts {
		for _, r := range rts {
			k := polKey{l, r}
			if ref := n.policies[k]; ref != nil {
				if ref.p.ReqID != reqID {
					n.dpLog.Warn("node: policy held by another child", "local", l, "remote", r)
					continue
				}
				ref.refs++
				keys = append(keys, k)
				continue
			}
			p := dataplane.Policy{Local: l, Remote: r, ReqID: reqID, Action: dataplane.Protect}
			if err := n.dp.AddPolicy(p); err != nil {
				n.dpLog.Error("node: policy", "local", l, "remote", r, "err", err)
				continue
			}
			n.policies[k] = &policyRef{p: p, refs: 1}
			n.useReqID(reqID)
			keys = append(keys, k)
		}
	}
	return keys
}

// releasePolicies drops references, deleting policies no one holds.
func (n *Node) releasePolicies(keys []polKey) {
	for _, k := range keys {
		ref := n.policies[k]
		if ref == nil {
			continue
		}
		if ref.refs--; ref.refs > 0 {
			continue
		}
		delete(n.policies, k)
		if err := n.dp.DeletePolicy(ref.p); err != nil {
			n.dpLog.Error("node: delete policy", "err", err)
		}
		n.unuseReqID(ref.p.ReqID)
	}
}

// applyTraps installs the policies of children whose start_action is trap
// in the current configuration and releases those no longer trapped; it
// first brings the route-based devices in line (route.go). Route-based
// children have no policies, so no trap either.
func (n *Node) applyTraps() {
	n.applyRoutes()
	want := map[string]bool{}
	g := n.current()
	for name, cc := range g.cfg {
		c := g.conns[name]
		for i, ch := range cc.Children {
			if ch.StartAction != "trap" || ch.Interface != "" || i >= len(c.Children) {
				continue
			}
			k := name + "/" + ch.Name
			want[k] = true
			if _, held := n.traps[k]; held {
				continue
			}
			cfg := c.Children[i]
			lts, rts := toSelectors(cfg.LocalTS), toSelectors(cfg.RemoteTS)
			reqID := n.reqIDFor(name, ch.Name, lts, rts)
			n.trapEndpoints(reqID, c, &cfg)
			n.traps[k] = n.holdPolicies(reqID, lts, rts)
			if n.reqUse[reqID] == 0 { // no policy went in: nothing holds it
				n.forgetReqID(reqID)
			}
			n.dpLog.Info("node: trap installed", "conn", name, "child", ch.Name)
		}
	}
	for k, keys := range n.traps {
		if !want[k] {
			n.releasePolicies(keys)
			delete(n.traps, k)
		}
	}
}

// trapEndpoints tells the XFRM backend the outer addresses and mode of a
// trap's ReqID, which its policy templates need before any SA exists (the
// userspace backends look the SA up when a packet comes and need nothing).
func (n *Node) trapEndpoints(reqID uint32, c *ike.Connection, ch *ike.ChildConfig) {
	if n.xfrm == nil {
		return
	}
	remote := c.Remote.Addr()
	local := c.Local.Addr()
	if !local.IsValid() || local.IsUnspecified() {
		local = n.localFor(remote)
	}
	mode := esp.Tunnel
	if ch.Mode == ike.ModeTransport {
		mode = esp.Transport
	}
	if err := n.xfrm.SetTunnelEndpoints(reqID, local, remote, mode); err != nil {
		n.dpLog.Error("node: trap: tunnel endpoints", "conn", c.Name, "child", ch.Name, "err", err)
	}
}

// onDataPlaneEvent is the data plane's OnEvent: it must not block, so it
// hands Acquires and unknown-SPI reports to the loop (dropped when the
// loop is overloaded: the data plane raises them again a second later).
func (n *Node) onDataPlaneEvent(e dataplane.Event) {
	var call func(now time.Time)
	switch e.Kind {
	case dataplane.Acquire:
		call = func(now time.Time) { n.onAcquire(now, e.ReqID) }
	case dataplane.UnknownSPI:
		call = func(now time.Time) { n.onUnknownSPI(now, e.Peer, e.SPI) }
	default:
		n.dpLog.Info("node: data plane event", "kind", e.Kind.String(), "spi", hex32(e.SPI))
		return
	}
	select {
	case n.in <- input{call: call}:
	case <-n.quit:
	default:
	}
}

// onUnknownSPI handles ESP from peer for an SPI the data plane has no SA
// for: every generation's Endpoint with an established IKE SA to peer
// tells it with N(INVALID_SPI), and the peer drops its stale pair (RFC
// 7296 §2.4, §3.10.1), as a peer that restarted would need.
func (n *Node) onUnknownSPI(now time.Time, peer netip.Addr, spi uint32) {
	n.stats.add(&n.stats.unknownSPI, 1)
	n.dpLog.Debug("node: ESP for an unknown SPI", "spi", hex32(spi), "peer", peer)
	peer = peer.Unmap()
	for _, g := range n.gens {
		g.ep.UnknownESPSPI(now, peer, spi, &n.out)
		n.flush(now)
	}
}

// onAcquire initiates a trapped connection that has no IKE SA yet.
func (n *Node) onAcquire(now time.Time, reqID uint32) {
	name, ok := n.reqConn[reqID]
	if !ok {
		return
	}
	busy := false
	for _, g := range n.gens {
		g.ep.Range(func(sa *ike.SA) bool {
			if c := sa.Conn(); c != nil && c.Name == name {
				busy = true
			}
			return !busy
		})
	}
	if busy {
		return
	}
	n.ikeLog.Info("node: acquire: initiating trapped connection", "conn", name)
	_, _ = n.initiateLocked(now, name)
}
