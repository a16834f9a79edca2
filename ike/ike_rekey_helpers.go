package ike

import "errors"

// Helpers of the IKE SA rekey (task_ike_rekey.go).

func asNotify(err error, ne **notifyError) bool { return errors.As(err, ne) }

// adopt completes a new SA from a rekey: it is authenticated by the
// old one (RFC 7296 §2.18), frees what only the exchange needed, arms its
// lifetimes and is handed to the endpoint when the current input is done.
func (sa *SA) adopt(n *SA) {
	n.state = stateEstablished
	n.now = sa.now
	// Nonces are public and may still sit in the response being built:
	// dropped, not zeroed. No AUTH follows, so SK_p goes.
	n.ni, n.nr, n.proposal = nil, nil, nil
	clear(n.skpi)
	clear(n.skpr)
	n.skpi, n.skpr = nil, nil
	n.ikeTimers = newIKETimers(n)
	sa.spawned = append(sa.spawned, n)
}

// moveTo hands the Child SAs, the queued and delayed work to n, which
// replaces sa (RFC 7296 §2.18), and reports it.
func (sa *SA) moveTo(n *SA) {
	// The pairs are where sa is: sa may have followed its peer
	// (natfollow.go) since n was spawned with its addresses.
	n.local, n.remote = sa.local, sa.remote
	n.children = append(n.children, sa.children...)
	sa.children = nil
	for _, t := range sa.tm.queued {
		if t.kind() != kindIKEDelete && t.kind() != kindIKERekey {
			n.queue(t)
		}
	}
	sa.tm.queued = nil
	n.tm.delayed = append(n.tm.delayed, sa.tm.delayed...)
	sa.tm.delayed = nil
	sa.replaced = n
	sa.ikeTimers = ikeTimers{expireAt: sa.now.Add(sa.replacedGrace())}
	ev := Event{Kind: EventIKERekeyed, OldSPIi: sa.spiI, OldSPIr: sa.spiR}
	n.fillEvent(&ev)
	sa.out.Events = append(sa.out.Events, ev)
	sa.info("ike: IKE SA rekeyed", "new_spi_i", hex64(n.spiI), "new_spi_r", hex64(n.spiR))
}

// doom marks the redundant SA of a rekey collision that the peer is to
// delete: it is never rekeyed or checked for liveness, and goes on its own
// after a grace period if the peer's delete never comes.
func (sa *SA) doom(winner *SA) {
	sa.pendingOld = nil
	sa.replaced = winner
	sa.collisionLoser = true
	sa.ikeTimers = ikeTimers{expireAt: sa.now.Add(sa.replacedGrace())}
}

// handOver gives the child work of a replaced SA that dies (its peer
// deleted it first) to the SA that replaced it, where the pairs live now.
func (sa *SA) handOver() {
	n := sa.replaced
	if n == nil || n.state != stateEstablished {
		return
	}
	for _, t := range append(sa.tm.active, sa.tm.queued...) {
		switch t.(type) {
		case *childDelete, *childRekey:
			n.queue(t)
		}
	}
	if len(n.tm.queued) > 0 {
		n.kick = true
		sa.handedTo = n
	}
}

// abandon zeroes the secrets of unfinished rekey and child tasks when their
// IKE SA dies (tasks implement abandon()).
func (sa *SA) abandonTasks() {
	for _, list := range [][]task{sa.tm.active, sa.tm.queued, sa.tm.passive} {
		for _, t := range list {
			if a, ok := t.(interface{ abandon() }); ok {
				a.abandon()
			}
		}
	}
}

func (t *ikeRekey) abandon() {
	if t.init != nil && t.init.ke != nil {
		t.init.ke.Zero()
		t.init.ke = nil
	}
	if t.nsa != nil && t.nsa.state != stateEstablished {
		t.nsa.zero()
	}
}

func (c *childCreate) abandon() {
	c.zeroKE()
	clear(c.gir)
	c.gir = nil
}

func (t *childRekey) abandon() {
	if t.create != nil {
		t.create.abandon()
	}
}
