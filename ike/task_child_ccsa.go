package ike

import (
	"encoding/binary"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// The CREATE_CHILD_SA half of childCreate (RFC 7296 §1.3.1): an additional
// Child SA on an established IKE SA, keyed from fresh nonces and, when the
// proposals carry a KE transform, a fresh key exchange (PFS). The child
// rekey task wraps this one and adds N(REKEY_SA) (§1.3.3).
//
//	Initiator: HDR, SK {SA, Ni, [KEi], TSi, TSr}  -->
//	Responder:                                    <--  HDR, SK {SA, Nr, [KEr], TSi, TSr}
//
// A Child SA failure (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE, ...) leaves the
// IKE SA up; INVALID_KE_PAYLOAD makes the initiator send the exchange again
// (with a new message ID) using the group the responder asked for.

// maxChildRetries bounds INVALID_KE_PAYLOAD round trips.
const maxChildRetries = 3

// newChildCreate is an initiator task for an additional Child SA.
func newChildCreate(cfg *ChildConfig) *childCreate { return &childCreate{cfg: cfg} }

func (c *childCreate) buildCCSA(sa *SA, m *msgOut) (status, error) {
	if m.response {
		c.buildCCSAResponse(sa, m)
		return done, nil
	}
	if c.cfg == nil {
		return done, nil
	}
	if c.inSPI == 0 {
		spi, err := sa.ep.allocSPI()
		if err != nil {
			return done, err
		}
		c.inSPI = spi
		c.localTS = defaultTS(c.cfg.LocalTS, TSHost(sa.local.Addr()))
		c.remoteTS = defaultTS(c.cfg.RemoteTS, TSHost(sa.remote.Addr()))
	}
	var err error
	clear(c.nonce)
	if c.nonce, err = readNonce(sa.ep.rand); err != nil {
		return done, err
	}
	props := c.cfg.espProposals()
	if c.group == 0 {
		if t := firstOfType(props[0], wire.TransformKE); t != nil {
			c.group = wire.KEID(t.ID)
		}
	}
	if c.cfg.Mode == ModeTransport {
		m.notify(wire.USE_TRANSPORT_MODE, nil)
	}
	m.add(toWireSA(props, wire.ProtoESP, spiBytes(c.inSPI)), &wire.Nonce{Data: c.nonce})
	if c.group != 0 {
		if c.ke == nil || c.ke.Method().ID != c.group {
			c.zeroKE()
			method, err := suite.LookupKE(c.group)
			if err != nil {
				return done, err
			}
			if c.ke, err = method.Initiate(); err != nil {
				return done, err
			}
		}
		m.add(&wire.KE{Group: c.group, Data: c.ke.Public()})
	}
	m.add(toWireTS(c.localTS, false), toWireTS(c.remoteTS, true))
	return needMore, nil
}

func (c *childCreate) zeroKE() {
	if c.ke != nil {
		c.ke.Zero()
		c.ke = nil
	}
}

// processCCSA: the responder selects a child and prepares its keys; the
// initiator installs the pair the responder chose.
func (c *childCreate) processCCSA(sa *SA, m *msgIn) (status, error) {
	if !m.hdr.IsResponse() {
		c.processCCSARequest(sa, m)
		return needMore, nil
	}
	defer c.zeroKE()
	if n := m.notify(wire.INVALID_KE_PAYLOAD); n != nil {
		g, ok := n.InvalidKEGroup()
		if ok && g != c.group && c.retries < maxChildRetries && proposesKE(c.cfg.espProposals(), g) {
			// RFC 7296 §1.3: retry with the group the responder wants.
			c.retries++
			c.group = g
			sa.ep.stats.KERetries++
			c.ke.Zero()
			c.ke = nil
			return retry, nil
		}
		c.failed(sa, "INVALID_KE_PAYLOAD")
		return done, nil
	}
	for _, n := range childNotifyErrors {
		if m.notify(n) != nil {
			c.failed(sa, n.String())
			return done, nil
		}
	}
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	nr, _ := m.find(wire.PayloadNonce).(*wire.Nonce)
	ke, _ := m.find(wire.PayloadKE).(*wire.KE)
	tsi, _ := m.find(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.find(wire.PayloadTSr).(*wire.TS)
	if sap == nil || nr == nil || tsi == nil || tsr == nil || len(nr.Data) < wire.MinNonceLen || len(nr.Data) > wire.MaxNonceLen {
		c.failed(sa, "CREATE_CHILD_SA response lacks SA, Nonce or TS")
		return done, nil
	}
	chosen, ok := checkChosen(c.cfg.espProposals(), sap, wire.ProtoESP)
	if !ok || len(sap.Proposals[0].SPI) != 4 {
		c.failed(sa, "responder chose an ESP proposal we did not offer")
		return done, nil
	}
	var gir []byte
	if t := firstOfType(chosen, wire.TransformKE); t != nil {
		if ke == nil || c.ke == nil || ke.Group != wire.KEID(t.ID) || c.group != ke.Group {
			c.failed(sa, "responder's KE does not match the chosen proposal")
			return done, nil
		}
		var err error
		if gir, err = c.ke.Shared(ke.Data); err != nil {
			c.failed(sa, "responder's KE: "+err.Error())
			return done, nil
		}
		defer clear(gir)
	}
	local, remote := fromWireTS(tsi), fromWireTS(tsr)
	if !subsetOf(local, c.localTS) || !subsetOf(remote, c.remoteTS) {
		c.failed(sa, "responder widened the traffic selectors") // RFC 7296 §2.9
		return done, nil
	}
	mode := ModeTunnel
	if c.cfg.Mode == ModeTransport && m.notify(wire.USE_TRANSPORT_MODE) != nil {
		mode = ModeTransport
	}
	outSPI := binary.BigEndian.Uint32(sap.Proposals[0].SPI)
	c.peerNonce = clone(nr.Data)
	child, err := sa.installChildKeyed(c.cfg, chosen, c.inSPI, outSPI, local, remote, mode,
		childKeyInput{gir: gir, ni: c.nonce, nr: nr.Data, initiator: true})
	if err != nil {
		c.failed(sa, err.Error())
		return done, nil
	}
	c.installed = child
	return done, nil
}

func (c *childCreate) failed(sa *SA, reason string) {
	clear(c.nonce)
	c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, reason
	sa.childFailed(c.cfg.Name, reason)
}

func (c *childCreate) processCCSARequest(sa *SA, m *msgIn) {
	c.requested = true
	if sa.replaced != nil || sa.rekeyingIKE || sa.state != stateEstablished {
		// RFC 7296 §2.25: the IKE SA is being rekeyed or deleted.
		c.failure, c.reason = wire.TEMPORARY_FAILURE, "IKE SA being rekeyed or deleted"
		return
	}
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	ni, _ := m.find(wire.PayloadNonce).(*wire.Nonce)
	ke, _ := m.find(wire.PayloadKE).(*wire.KE)
	tsi, _ := m.find(wire.PayloadTSi).(*wire.TS)
	tsr, _ := m.find(wire.PayloadTSr).(*wire.TS)
	if sap == nil || ni == nil || tsi == nil || tsr == nil {
		c.failure, c.reason = wire.INVALID_SYNTAX, "CREATE_CHILD_SA lacks SA, Nonce or TS"
		return
	}
	if len(ni.Data) < wire.MinNonceLen || len(ni.Data) > wire.MaxNonceLen {
		c.failure, c.reason = wire.INVALID_SYNTAX, "bad nonce length"
		return
	}
	c.peerNonce = clone(ni.Data)
	wantTransport := m.notify(wire.USE_TRANSPORT_MODE) != nil
	c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, "no child configured"
	for i := range sa.conn.Children {
		cfg := &sa.conn.Children[i]
		if c.only != nil && cfg != c.only {
			continue
		}
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
		props := cfg.espProposals()
		sel, ok := selectProposal(props, sap.Proposals, wire.ProtoESP, sa.conn.Policy, espAcceptable)
		if !ok || len(sel.spi) != 4 {
			c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, "no acceptable ESP proposal for child "+cfg.Name
			continue
		}
		if t := firstOfType(sel.transforms, wire.TransformKE); t != nil && (ke == nil || ke.Group != wire.KEID(t.ID)) {
			// RFC 7296 §1.3: take the initiator's group if acceptable,
			// else ask for ours with INVALID_KE_PAYLOAD.
			alt, ok := selectProposal(restrictKE(props, groupOf(ke)), sap.Proposals, wire.ProtoESP, sa.conn.Policy, espAcceptable)
			if !ok || ke == nil || len(alt.spi) != 4 {
				c.failure, c.reason = wire.INVALID_KE_PAYLOAD, "initiator's KE is not "+wire.KEID(t.ID).String()
				c.failData = wire.NewInvalidKE(wire.KEID(t.ID)).Data
				return
			}
			sel = alt
		}
		if t := firstOfType(sel.transforms, wire.TransformKE); t != nil {
			method, err := suite.LookupKE(wire.KEID(t.ID))
			if err != nil {
				c.failure, c.reason = wire.NO_PROPOSAL_CHOSEN, err.Error()
				return
			}
			if c.keData, c.gir, err = method.Respond(ke.Data); err != nil {
				c.failure, c.reason = wire.INVALID_SYNTAX, "initiator's KE: "+err.Error()
				return
			}
			c.group = wire.KEID(t.ID)
		}
		c.cfg, c.sel, c.localTS, c.remoteTS = cfg, sel, local, remote
		c.transport = wantTransport && cfg.Mode == ModeTransport
		c.failure, c.reason = 0, ""
		return
	}
}

func groupOf(ke *wire.KE) wire.KEID {
	if ke == nil {
		return 0
	}
	return ke.Group
}

func (c *childCreate) buildCCSAResponse(sa *SA, m *msgOut) {
	defer func() {
		clear(c.gir)
		c.gir, c.keData = nil, nil
	}()
	name := ""
	if c.cfg != nil {
		name = c.cfg.Name
	}
	if c.failure != 0 {
		m.notify(c.failure, c.failData)
		if c.failure != wire.INVALID_KE_PAYLOAD {
			sa.childFailed(name, c.failure.String()+": "+c.reason)
		}
		return
	}
	spi, err := sa.ep.allocSPI()
	if err != nil {
		m.notify(wire.NO_ADDITIONAL_SAS, nil)
		sa.childFailed(name, err.Error())
		return
	}
	nonce, err := readNonce(sa.ep.rand)
	if err != nil {
		m.notify(wire.NO_ADDITIONAL_SAS, nil)
		sa.childFailed(name, err.Error())
		return
	}
	mode := ModeTunnel
	if c.transport {
		mode = ModeTransport
		m.notify(wire.USE_TRANSPORT_MODE, nil)
	}
	outSPI := binary.BigEndian.Uint32(c.sel.spi)
	child, err := sa.installChildKeyed(c.cfg, c.sel.transforms, spi, outSPI, c.localTS, c.remoteTS, mode,
		childKeyInput{gir: c.gir, ni: c.peerNonce, nr: nonce, initiator: false})
	if err != nil {
		m.notify(wire.NO_PROPOSAL_CHOSEN, nil)
		sa.childFailed(name, err.Error())
		return
	}
	c.installed, c.nonce = child, nonce
	m.add(chosenSA(c.sel, wire.ProtoESP, spiBytes(spi)), &wire.Nonce{Data: nonce})
	if c.keData != nil {
		m.add(&wire.KE{Group: c.group, Data: c.keData})
	}
	m.add(toWireTS(c.remoteTS, false), toWireTS(c.localTS, true))
}
