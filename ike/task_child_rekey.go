package ike

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// childRekey rekeys a Child SA (RFC 7296 §1.3.3, §2.8): a CREATE_CHILD_SA
// that wraps childCreate and adds N(REKEY_SA) naming the old pair. The new
// pair is installed first; the initiator of the rekey then deletes the old
// one (make-before-break, no traffic gap).
//
//	Initiator: HDR, SK {N(REKEY_SA, old in SPI), SA, Ni, [KEi], TSi, TSr}  -->
//	Responder:                                    <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
//	Initiator: HDR, SK {D(ESP, old in SPI)}  -->  <--  HDR, SK {D(ESP, ...)}
//
// Collisions (§2.8.1, §2.25):
//   - both ends rekey the same pair: each answers the other's request and
//     installs that pair too; when its own response arrives, the exchange
//     holding the lowest of the four nonces made the redundant pair, which
//     its initiator deletes; the other initiator deletes the old pair.
//   - the peer rekeys a pair we have already replaced or are deleting:
//     TEMPORARY_FAILURE; a pair we do not know: CHILD_SA_NOT_FOUND.
//   - our rekey gets TEMPORARY_FAILURE: retried after a random delay,
//     unless the pair is gone or replaced by then.
type childRekey struct {
	inSPI  uint32 // our inbound SPI of the old pair
	create *childCreate
	// responder
	old     *ChildSA
	refusal wire.NotifyType
	spi     []byte   // the REKEY_SA's SPI, echoed in CHILD_SA_NOT_FOUND
	oldRef  *ChildSA // initiator: the old pair, even once removed
}

func newChildRekey(inSPI uint32) *childRekey { return &childRekey{inSPI: inSPI} }

func (*childRekey) kind() taskKind { return kindChildCreate }

// obsolete: the pair went away or was replaced while the task waited.
func (t *childRekey) obsolete(sa *SA) bool {
	c := sa.childByInSPI(t.inSPI)
	return c == nil || c.deleting || c.rekeyed || (c.rekeying && t.create == nil)
}

func (t *childRekey) build(sa *SA, m *msgOut) (status, error) {
	if m.response {
		return t.buildResponse(sa, m)
	}
	old := sa.childByInSPI(t.inSPI)
	if old == nil {
		return done, nil
	}
	if t.create == nil {
		t.create = newChildCreate(old.cfg)
		// The rekeyed pair keeps the negotiated selectors and mode.
		t.create.localTS, t.create.remoteTS = old.LocalTS, old.RemoteTS
		spi, err := sa.ep.allocSPI()
		if err != nil {
			return done, err
		}
		t.create.inSPI = spi
	}
	old.rekeying = true
	t.oldRef = old
	m.add(wire.NewRekeySA(wire.ProtoESP, t.inSPI))
	return t.create.buildCCSA(sa, m)
}

func (t *childRekey) process(sa *SA, m *msgIn) (status, error) {
	if !m.hdr.IsResponse() {
		t.processRequest(sa, m)
		return needMore, nil
	}
	h, old := sa.holder(t.inSPI)
	if old != nil {
		old.rekeying = false
	}
	if m.notify(wire.CHILD_SA_NOT_FOUND) != nil {
		// §2.25: the peer deleted the pair; so do we.
		sa.removeFrom(h, old, "not-found-by-peer")
		return done, nil
	}
	if m.notify(wire.TEMPORARY_FAILURE) != nil {
		// The pair may have moved to a new IKE SA meanwhile (§2.18);
		// the retry goes where it lives now.
		h, c := sa.holder(t.inSPI)
		if c != nil {
			c.rekeying = false
			if c.peerNew == nil && !c.rekeyed && !c.deleting {
				h.retryLater(newChildRekey(t.inSPI))
			}
		}
		return done, nil
	}
	st, err := t.create.processCCSA(sa, m)
	if st != done || err != nil {
		return st, err
	}
	nw := t.create.installed
	sa.rehome(nw)
	if h != nil && h != sa {
		// Finish on the SA that holds the pairs now, and let it start
		// the delete that follows.
		out, now := sa.out, sa.now
		h.out, h.now = out, now
		defer sa.ep.run(h, now, out, func() { h.initiate(now, out) })
		sa = h
	}
	if old == nil {
		if r := t.oldRef; nw != nil && r != nil && r.peerNew != nil {
			// Both rekeyed the pair and the peer, having won, deleted
			// it before our response came: ours is redundant (§2.8.1).
			hh, _ := sa.holder(nw.InSPI)
			if hh != nil && hh != sa {
				out, now := sa.out, sa.now
				hh.out, hh.now = out, now
				defer sa.ep.run(hh, now, out, func() { hh.initiate(now, out) })
			}
			if hh != nil {
				hh.queueFront(&childDelete{spis: []uint32{nw.InSPI}, reason: "rekey-collision"})
			}
		}
		return done, nil
	}
	if nw == nil {
		if p := old.peerNew; p != nil && sa.childByInSPI(p.child.InSPI) != nil {
			old.rekeyed = true // the peer's rekey stands alone
			sa.childRekeyed(old, p.child)
		}
		return done, nil
	}
	if p := old.peerNew; p != nil && sa.childByInSPI(p.child.InSPI) != nil {
		ours := minNonce(t.create.nonce, t.create.peerNonce)
		theirs := minNonce(p.ni, p.nr)
		if bytes.Compare(ours, theirs) < 0 {
			// Our exchange holds the lowest nonce: our new pair is
			// redundant; the peer deletes the old one (§2.8.1).
			old.rekeyed = true
			sa.childRekeyed(old, p.child)
			sa.queueFront(&childDelete{spis: []uint32{nw.InSPI}, reason: "rekey-collision"})
			return done, nil
		}
		// We won: the peer deletes its redundant pair; we delete the old.
		// Its outbound SA must not take over when the old pair goes.
		p.child.replaces = 0
	}
	old.rekeyed = true
	sa.childRekeyed(old, nw)
	sa.queueFront(&childDelete{spis: []uint32{old.InSPI}, reason: "rekeyed"})
	return done, nil
}

// holder finds the IKE SA that now holds the pair with inbound SPI spi,
// following IKE rekeys (§2.18 moves pairs while exchanges on the old SA
// may still complete).
func (sa *SA) holder(spi uint32) (*SA, *ChildSA) {
	return sa.holderBy(func(c *ChildSA) bool { return c.InSPI == spi })
}

func (sa *SA) holderBy(match func(*ChildSA) bool) (*SA, *ChildSA) {
	for h, n := sa, 0; h != nil && n < 8; h, n = h.replaced, n+1 {
		for _, c := range h.children {
			if match(c) {
				return h, c
			}
		}
	}
	return nil, nil
}

// removeFrom removes c from h, which may be an SA other than the one
// running (its output is lent for the call).
func (sa *SA) removeFrom(h *SA, c *ChildSA, reason string) {
	if h == nil || c == nil {
		return
	}
	if h != sa {
		h.out, h.now = sa.out, sa.now
		defer func() { h.out = nil }()
	}
	h.removeChild(c, reason)
}

// rehome moves a pair just installed on a replaced SA to the SA that
// replaced it.
func (sa *SA) rehome(c *ChildSA) {
	h := sa
	for n := 0; h.replaced != nil && n < 8; n++ {
		h = h.replaced
	}
	if h == sa || c == nil {
		return
	}
	if i := slices.Index(sa.children, c); i >= 0 {
		sa.children = slices.Delete(sa.children, i, i+1)
		h.children = append(h.children, c)
	}
}

func minNonce(a, b []byte) []byte {
	if bytes.Compare(a, b) < 0 {
		return a
	}
	return b
}

// processRequest: the peer rekeys the pair whose outbound SPI its
// REKEY_SA names (its inbound SPI, RFC 7296 §1.3.3).
func (t *childRekey) processRequest(sa *SA, m *msgIn) {
	n := m.notify(wire.REKEY_SA)
	if n == nil || n.Protocol != wire.ProtoESP || len(n.SPI) != 4 {
		t.refusal = wire.INVALID_SYNTAX
		return
	}
	t.spi = clone(n.SPI)
	spi := binary.BigEndian.Uint32(n.SPI)
	for _, c := range sa.children {
		if c.OutSPI == spi {
			t.old = c
		}
	}
	switch {
	case t.old == nil && sa.tm.inFlight() && sa.tm.exch == wire.CREATE_CHILD_SA:
		// The pair may be the one our own pending exchange creates, its
		// response not yet in (the peer installed it as responder).
		t.refusal = wire.TEMPORARY_FAILURE
		return
	case t.old == nil:
		t.refusal = wire.CHILD_SA_NOT_FOUND
		return
	case t.old.deleting || t.old.rekeyed || sa.replaced != nil || sa.rekeyingIKE || sa.state != stateEstablished:
		t.refusal = wire.TEMPORARY_FAILURE
		return
	}
	t.create = &childCreate{only: t.old.cfg}
	t.create.processCCSARequest(sa, m)
}

func (t *childRekey) buildResponse(sa *SA, m *msgOut) (status, error) {
	if t.refusal != 0 {
		if t.refusal == wire.CHILD_SA_NOT_FOUND {
			// RFC 7296 §3.10.1: names the SPI of the unknown pair.
			m.add(&wire.Notify{NotifyType: wire.CHILD_SA_NOT_FOUND, Protocol: wire.ProtoESP, SPI: t.spi})
		} else {
			m.notify(t.refusal, nil)
		}
		return done, nil
	}
	t.create.buildCCSAResponse(sa, m)
	nw := t.create.installed
	if nw == nil {
		return done, nil
	}
	sa.deferOutbound(nw, t.old)
	if t.old.rekeying {
		// Both ends rekey this pair (§2.8.1): decide when our own
		// response arrives.
		t.old.peerNew = &peerRekey{child: nw, ni: t.create.peerNonce, nr: t.create.nonce}
		return done, nil
	}
	t.old.rekeyed = true // the peer deletes it
	sa.childRekeyed(t.old, nw)
	return done, nil
}

// deferOutbound marks the install operation of nw, a pair we made as the
// responder of old's rekey, DeferOut: the initiator installs it only when
// our response arrives (RFC 7296 §2.8 make-before-break). removeChild
// activates it when old goes; the daemon activates it earlier when the
// pair's inbound SA sees traffic.
func (sa *SA) deferOutbound(nw, old *ChildSA) {
	for i := len(sa.out.Ops) - 1; i >= 0; i-- {
		if op := &sa.out.Ops[i]; op.Kind == OpInstall && op.InSPI == nw.InSPI {
			op.DeferOut = true
			nw.outDeferred, nw.replaces = true, old.InSPI
			return
		}
	}
}

// activateSuccessor sends OpActivate for the deferred pair that replaces
// old, before old's OpDelete, so the data plane always has an outbound SA.
func (sa *SA) activateSuccessor(old *ChildSA) {
	for _, c := range sa.children {
		if c.outDeferred && c.replaces == old.InSPI && c != old && !c.deleting {
			c.outDeferred = false
			sa.out.Ops = append(sa.out.Ops, ChildOp{Kind: OpActivate, Name: c.Name, SPIi: sa.spiI, SPIr: sa.spiR,
				InSPI: c.InSPI, OutSPI: c.OutSPI, Local: sa.local, Remote: sa.remote})
		}
	}
}

// childRekeyed reports that old is replaced by nw.
func (sa *SA) childRekeyed(old, nw *ChildSA) {
	ev := Event{Kind: EventChildRekeyed, Child: nw.Name, InSPI: nw.InSPI, OutSPI: nw.OutSPI,
		OldInSPI: old.InSPI, OldOutSPI: old.OutSPI}
	sa.fillEvent(&ev)
	sa.out.Events = append(sa.out.Events, ev)
	sa.info("ike: Child SA rekeyed", "child", nw.Name, "old_in", old.InSPI, "new_in", nw.InSPI)
}
