package ike

import (
	"bytes"
	"encoding/binary"

	"github.com/petrel-vpn/petrel/wire"
)

// ikeRekey rekeys the IKE SA (RFC 7296 §1.3.2, §2.18) with a
// CREATE_CHILD_SA on the old SA that wraps ikeInit: ikeInit negotiates
// proposal, KE and nonces for the new SA exactly as in IKE_SA_INIT, and this
// task carries its payloads, puts the new SPIs in the SA payload, keys the
// new SA from the old SK_d (the hook in deriveIKEKeys), moves the Child SAs
// and the queued work over, and has the initiator delete the old SA. The new
// SA's message IDs start at 0; whoever initiated the rekey is its initiator.
//
//	Initiator: HDR, SK {SA(SPIi'), Ni, KEi}  -->
//	Responder:                               <--  HDR, SK {SA(SPIr'), Nr, KEr}
//	Initiator, on the old SA: HDR, SK {D(IKE)}  -->  <--  HDR, SK {}
//
// Collisions (§2.8.1, §2.25): when both ends rekey at once each answers the
// other and keeps that new SA without children; when its own response
// arrives, the exchange holding the lowest of the four nonces made the
// redundant SA, which its initiator deletes, and the other initiator deletes
// the old SA. A rekey request while a Child SA exchange of ours is in flight,
// or on an SA already replaced, gets TEMPORARY_FAILURE.
type ikeRekey struct {
	init   *ikeInit
	nsa    *SA
	failed wire.NotifyType // responder: refusal
	data   []byte
}

func newIKERekey() *ikeRekey { return &ikeRekey{} }

func (*ikeRekey) kind() taskKind { return kindIKERekey }

func (t *ikeRekey) obsolete(sa *SA) bool {
	return sa.state != stateEstablished || sa.replaced != nil || (sa.rekeyingIKE && t.nsa == nil)
}

// spawn makes the new SA, keyed from sa's SK_d once ikeInit derives keys.
func (sa *SA) spawn(initiator bool) (*SA, error) {
	spi, err := sa.ep.newSPI()
	if err != nil {
		return nil, err
	}
	n := sa.ep.newSA(sa.conn, initiator, sa.local, sa.remote, sa.now)
	if initiator {
		n.spiI = spi
	} else {
		n.spiR = spi
	}
	n.rekeyFrom = sa
	n.natLocal, n.natRemote, n.forcedEncap = sa.natLocal, sa.natRemote, sa.forcedEncap
	n.peerFrag, n.peerSigHashes, n.peerID, n.auth = sa.peerFrag, sa.peerSigHashes, sa.peerID, sa.auth
	return n, nil
}

// withSPI sets the SPI of every IKE proposal (RFC 7296 §3.3.1: 8 octets in
// a rekey).
func withSPI(ps []wire.Payload, spi uint64) {
	for _, p := range ps {
		if s, ok := p.(*wire.SA); ok {
			for i := range s.Proposals {
				s.Proposals[i].SPI = binary.BigEndian.AppendUint64(nil, spi)
			}
		}
	}
}

func (t *ikeRekey) build(sa *SA, m *msgOut) (status, error) {
	if m.response {
		return t.buildResponse(sa, m)
	}
	if t.nsa == nil {
		n, err := sa.spawn(true)
		if err != nil {
			return done, err
		}
		t.nsa, t.init = n, &ikeInit{}
	}
	sub := msgOut{exch: wire.IKE_SA_INIT}
	if _, err := t.init.build(t.nsa, &sub); err != nil {
		return done, err
	}
	withSPI(sub.payloads, t.nsa.spiI)
	m.add(sub.payloads...)
	sa.rekeyingIKE = true
	return needMore, nil
}

func (t *ikeRekey) process(sa *SA, m *msgIn) (status, error) {
	if !m.hdr.IsResponse() {
		t.processRequest(sa, m)
		return needMore, nil
	}
	sa.rekeyingIKE = false
	if m.notify(wire.INVALID_KE_PAYLOAD) == nil {
		if n := m.errorNotify(); n != nil {
			t.nsa.zero()
			if n.NotifyType == wire.TEMPORARY_FAILURE && sa.peerIKE == nil {
				sa.retryLater(newIKERekey())
			}
			sa.info("ike: IKE SA rekey refused", "notify", n.NotifyType)
			sa.settlePeerRekey()
			return done, nil
		}
	}
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	if sap == nil || len(sap.Proposals) != 1 || len(sap.Proposals[0].SPI) != 8 {
		t.nsa.zero()
		sa.info("ike: IKE SA rekey response without a responder SPI")
		sa.settlePeerRekey()
		return done, nil
	}
	fake := &msgIn{hdr: wire.Header{Exchange: wire.IKE_SA_INIT, Flags: wire.FlagResponse,
		SPIr: binary.BigEndian.Uint64(sap.Proposals[0].SPI)}, payloads: m.payloads, src: m.src, dst: m.dst}
	st, err := t.init.process(t.nsa, fake)
	if st == retry {
		return retry, nil // INVALID_KE_PAYLOAD: next message ID, other group
	}
	if err != nil || t.nsa.spiR == 0 {
		t.nsa.zero()
		sa.info("ike: IKE SA rekey failed", "err", err)
		sa.settlePeerRekey()
		return done, nil
	}
	nsa := t.nsa
	ours := minNonce(nsa.ni, nsa.nr)
	sa.adopt(nsa)
	if sa.replaced != nil {
		// The peer already used its new SA, so it won the collision
		// (peerUsed); ours is redundant.
		nsa.queue(ikeDelete{})
		nsa.collisionLoser = true
		return done, nil
	}
	if p := sa.peerIKE; p != nil && p.nsa.state == stateEstablished && bytes.Compare(ours, minNonce(p.ni, p.nr)) < 0 {
		// Our exchange holds the lowest nonce: our new SA is redundant
		// (§2.8.1); the peer deletes the old one.
		nsa.queue(ikeDelete{})
		nsa.collisionLoser = true
		sa.settlePeerRekey()
		return done, nil
	}
	// We won, or there was no collision: the peer deletes its redundant
	// SA, if any (and if it never learns it lost, that SA expires here
	// without being rekeyed); we move everything over and delete the old.
	if p := sa.peerIKE; p != nil {
		p.nsa.doom(nsa)
	}
	sa.peerIKE = nil
	sa.moveTo(nsa)
	sa.queueFront(ikeDelete{})
	return done, nil
}

// settlePeerRekey: our own rekey is over without a new SA that stands; a
// peer's rekey we answered meanwhile, if any, is the one that survives.
func (sa *SA) settlePeerRekey() {
	if p := sa.peerIKE; p != nil {
		sa.peerIKE = nil
		p.nsa.pendingOld = nil
		if p.nsa.state == stateEstablished {
			sa.moveTo(p.nsa)
		}
	}
}

func (t *ikeRekey) processRequest(sa *SA, m *msgIn) {
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	// Any request of ours in flight (other than our own IKE rekey, a
	// collision) must finish on this SA first: refuse (§2.25).
	childBusy := sa.tm.inFlight() && !sa.rekeyingIKE
	switch {
	case sa.replaced != nil || sa.state != stateEstablished || childBusy:
		t.failed = wire.TEMPORARY_FAILURE
		return
	case sap == nil || len(sap.Proposals) == 0 || len(sap.Proposals[0].SPI) != 8:
		t.failed = wire.INVALID_SYNTAX
		return
	}
	n, err := sa.spawn(false)
	if err != nil {
		t.failed = wire.NO_ADDITIONAL_SAS
		return
	}
	n.spiI = binary.BigEndian.Uint64(sap.Proposals[0].SPI)
	t.nsa, t.init = n, &ikeInit{}
	fake := &msgIn{hdr: wire.Header{Exchange: wire.IKE_SA_INIT, SPIi: n.spiI, SPIr: n.spiR},
		payloads: m.payloads, src: m.src, dst: m.dst}
	if _, err := t.init.process(n, fake); err != nil {
		n.zero()
		t.failed = wire.NO_PROPOSAL_CHOSEN
		var ne *notifyError
		if asNotify(err, &ne) {
			t.failed, t.data = ne.notify, ne.data
		}
	}
}

func (t *ikeRekey) buildResponse(sa *SA, m *msgOut) (status, error) {
	if t.failed != 0 {
		m.notify(t.failed, t.data)
		return done, nil
	}
	sub := msgOut{exch: wire.IKE_SA_INIT, response: true}
	if _, err := t.init.build(t.nsa, &sub); err != nil {
		t.nsa.zero()
		m.notify(wire.NO_PROPOSAL_CHOSEN, nil)
		return done, nil
	}
	withSPI(sub.payloads, t.nsa.spiR)
	m.add(sub.payloads...)
	nsa := t.nsa
	ni, nr := clone(nsa.ni), clone(nsa.nr)
	sa.adopt(nsa)
	if sa.rekeyingIKE {
		// Both ends rekey (§2.8.1): decide when our own response arrives.
		sa.peerIKE = &peerIKERekey{nsa: nsa, ni: ni, nr: nr}
		nsa.pendingOld = sa
		return done, nil
	}
	sa.moveTo(nsa) // the peer deletes the old SA
	return done, nil
}

// peerIKERekey is the new SA of a peer's rekey that crossed ours.
type peerIKERekey struct {
	nsa    *SA
	ni, nr []byte
}

// peerUsed: the peer sent a request other than its delete on the SA of its
// rekey that crossed ours. Only the winner of the collision goes on using
// its new SA (§2.8.1), so the children move there now, before the request
// is processed; our own rekey's SA will be the redundant one.
func (sa *SA) peerUsed(in *msgIn) {
	old := sa.pendingOld
	if old == nil {
		return
	}
	if in.hdr.Exchange == wire.INFORMATIONAL {
		for _, p := range in.payloads {
			if d, ok := p.(*wire.Delete); ok && d.Protocol == wire.ProtoIKE {
				return
			}
		}
	}
	sa.pendingOld = nil
	if old.peerIKE == nil || old.peerIKE.nsa != sa || old.state == stateDead {
		return
	}
	old.out, old.now = sa.out, sa.now
	old.settlePeerRekey()
	old.out = nil
}
