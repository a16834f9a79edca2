package ike

import (
	"encoding/binary"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// childCreate negotiates the first Child SA inside IKE_AUTH (RFC 7296 §1.2):
// an ESP proposal with our SPI, TSi/TSr narrowed by the responder (§2.9),
// USE_TRANSPORT_MODE (§1.3.1), ESN as a transform. KE transforms are left
// out on both sides: this Child SA is keyed from the IKE SA's exchange. A failure here (no
// proposal, TS_UNACCEPTABLE) is answered with its notification and leaves
// the IKE SA up.
type childCreate struct {
	cfg       *ChildConfig
	inSPI     uint32
	localTS   []TrafficSelector // initiator: offered TSi; responder: narrowed TSr
	remoteTS  []TrafficSelector // initiator: offered TSr; responder: narrowed TSi
	transport bool
	// responder results
	requested bool
	sel       selected
	failure   wire.NotifyType
	failData  []byte // INVALID_KE_PAYLOAD's group
	reason    string

	// CREATE_CHILD_SA (task_child_ccsa.go): nonces, optional PFS key
	// exchange (RFC 7296 §1.3.1), INVALID_KE_PAYLOAD retries.
	nonce, peerNonce []byte
	ke               suite.KEState
	group            wire.KEID
	gir, keData      []byte
	retries          int
	installed        *ChildSA     // the new pair, for wrappers (rekey)
	only             *ChildConfig // responder: the config a rekey must keep
}

func (*childCreate) kind() taskKind { return kindChildCreate }

func (c *childCreate) build(sa *SA, m *msgOut) (status, error) {
	if m.exch == wire.IKE_SA_INIT {
		return needMore, nil
	}
	if m.exch == wire.CREATE_CHILD_SA {
		return c.buildCCSA(sa, m)
	}
	if m.exch != wire.IKE_AUTH {
		return done, nil
	}
	if m.response {
		return done, c.buildResponse(sa, m)
	}
	if len(sa.conn.Children) == 0 {
		return done, nil // childless (RFC 6023 is not negotiated; we just send none)
	}
	c.cfg = &sa.conn.Children[0]
	spi, err := sa.ep.allocSPI()
	if err != nil {
		return done, err
	}
	c.inSPI = spi
	c.localTS = defaultTS(c.cfg.LocalTS, TSHost(sa.local.Addr()))
	c.remoteTS = defaultTS(c.cfg.RemoteTS, TSHost(sa.remote.Addr()))
	if c.cfg.Mode == ModeTransport {
		m.notify(wire.USE_TRANSPORT_MODE, nil)
	}
	if c.cfg.IPComp {
		// RFC 7296 §3.10.1: CPI and IPCOMP_DEFLATE; a responder declines
		// by not answering it.
		m.notify(wire.IPCOMP_SUPPORTED, []byte{0x40, 0x00, 2})
	}
	m.add(toWireSA(withoutKE(c.cfg.espProposals()), wire.ProtoESP, spiBytes(spi)),
		toWireTS(c.localTS, false), toWireTS(c.remoteTS, true))
	return needMore, nil
}

func (c *childCreate) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange == wire.IKE_SA_INIT {
		return needMore, nil
	}
	if m.hdr.Exchange == wire.CREATE_CHILD_SA {
		return c.processCCSA(sa, m)
	}
	if m.hdr.Exchange != wire.IKE_AUTH {
		return done, nil
	}
	if !sa.initiator {
		c.processRequest(sa, m)
		return needMore, nil
	}
	if c.cfg == nil {
		return done, nil
	}
	for _, n := range childNotifyErrors {
		if m.notify(n) != nil {
			sa.childFailed(c.cfg.Name, n.String())
			return done, nil
		}
	}
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	tsi, _ := m.find(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.find(wire.PayloadTSr).(*wire.TS)
	if sap == nil || tsi == nil || tsr == nil {
		sa.childFailed(c.cfg.Name, "no Child SA in IKE_AUTH response")
		return done, nil
	}
	chosen, ok := checkChosen(withoutKE(c.cfg.espProposals()), sap, wire.ProtoESP)
	if !ok || len(sap.Proposals[0].SPI) != 4 {
		sa.childFailed(c.cfg.Name, "responder chose an ESP proposal we did not offer")
		return done, nil
	}
	local, remote := fromWireTS(tsi), fromWireTS(tsr)
	if !subsetOf(local, c.localTS) || !subsetOf(remote, c.remoteTS) {
		// RFC 7296 §2.9: the responder may only narrow.
		sa.childFailed(c.cfg.Name, "responder widened the traffic selectors")
		return done, nil
	}
	if c.cfg.IPComp && m.notify(wire.IPCOMP_SUPPORTED) != nil {
		sa.childFailed(c.cfg.Name, "responder accepted IPComp, which this data plane lacks")
		return done, nil
	}
	mode := ModeTunnel
	if c.cfg.Mode == ModeTransport && m.notify(wire.USE_TRANSPORT_MODE) != nil {
		mode = ModeTransport
	} else if c.cfg.Mode == ModeTransport {
		// RFC 7296 §1.3.1: the responder declined; tunnel mode it is.
		sa.info("ike: responder declined transport mode")
	}
	outSPI := binary.BigEndian.Uint32(sap.Proposals[0].SPI)
	if err := sa.installChild(c.cfg, chosen, c.inSPI, outSPI, local, remote, mode); err != nil {
		sa.childFailed(c.cfg.Name, err.Error())
	}
	return done, nil
}

func (c *childCreate) processRequest(sa *SA, m *msgIn) {
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	if sap == nil {
		return // no Child SA requested
	}
	c.requested = true
	tsi, _ := m.find(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.find(wire.PayloadTSr).(*wire.TS)
	if tsi == nil || tsr == nil {
		c.failure, c.reason = wire.TS_UNACCEPTABLE, "SA without TSi/TSr"
		return
	}
	wantTransport := m.notify(wire.USE_TRANSPORT_MODE) != nil
	c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, "no child configured"
	for i := range sa.conn.Children {
		cfg := &sa.conn.Children[i]
		if cfg.Mode == ModeTransport && !wantTransport {
			c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, "child "+cfg.Name+" requires transport mode"
			continue
		}
		remote := narrow(fromWireTS(tsi), defaultTS(cfg.RemoteTS, TSHost(sa.remote.Addr())))
		local := narrow(fromWireTS(tsr), defaultTS(cfg.LocalTS, TSHost(sa.local.Addr())))
		if len(remote) == 0 || len(local) == 0 {
			c.failure, c.reason = wire.TS_UNACCEPTABLE, "traffic selectors of child "+cfg.Name+" do not overlap"
			continue
		}
		sel, ok := selectProposal(withoutKE(cfg.espProposals()), peerWithoutKE(sap.Proposals), wire.ProtoESP, sa.conn.Policy, espAcceptable)
		if !ok || len(sel.spi) != 4 {
			c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, "no acceptable ESP proposal for child "+cfg.Name
			continue
		}
		c.cfg, c.sel, c.localTS, c.remoteTS = cfg, sel, local, remote
		c.transport = wantTransport && cfg.Mode == ModeTransport
		c.failure, c.reason = 0, ""
		return
	}
}

func (c *childCreate) buildResponse(sa *SA, m *msgOut) error {
	if !c.requested || sa.state != stateEstablished {
		return nil
	}
	name := ""
	if c.cfg != nil {
		name = c.cfg.Name
	}
	if c.failure != 0 {
		m.notify(c.failure, nil)
		sa.childFailed(name, c.failure.String()+": "+c.reason)
		return nil
	}
	spi, err := sa.ep.allocSPI()
	if err != nil {
		m.notify(wire.NO_ADDITIONAL_SAS, nil)
		sa.childFailed(name, err.Error())
		return nil
	}
	mode := ModeTunnel
	if c.transport {
		mode = ModeTransport
		m.notify(wire.USE_TRANSPORT_MODE, nil)
	}
	outSPI := binary.BigEndian.Uint32(c.sel.spi)
	if err := sa.installChild(c.cfg, c.sel.transforms, spi, outSPI, c.localTS, c.remoteTS, mode); err != nil {
		m.notify(wire.NO_PROPOSAL_CHOSEN, nil)
		sa.childFailed(name, err.Error())
		return nil
	}
	sa.deferIfReplacing(spi)
	m.add(chosenSA(c.sel, wire.ProtoESP, spiBytes(spi)),
		toWireTS(c.remoteTS, false), toWireTS(c.localTS, true))
	return nil
}

// deferIfReplacing makes the first Child SA we answered in IKE_AUTH wait
// for its outbound SA (ChildOp.DeferOut) when the peer already has a pair
// of the same child with us on another IKE SA: a reauthentication
// (make-before-break) or a peer re-establishing. The initiator installs
// the new pair only when our response arrives; until then, and until the
// old pair goes or traffic arrives on the new one, we keep sending on the
// old one. The daemon activates it (the core does not see the other IKE
// SA's deletes as the old pair's).
func (sa *SA) deferIfReplacing(inSPI uint32) {
	c := sa.childByInSPI(inSPI)
	if c == nil {
		return
	}
	for _, o := range sa.ep.sas {
		if o == sa || o.state != stateEstablished || o.conn == nil || sa.conn == nil || o.conn.Name != sa.conn.Name || !o.peerID.Equal(sa.peerID) {
			continue
		}
		for _, old := range o.children {
			if old.Name == c.Name {
				sa.deferOutbound(c, old)
				return
			}
		}
	}
}
