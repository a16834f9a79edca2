package ike

import (
	"slices"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// ikeInit negotiates the IKE SA's proposal, key exchange and nonces in
// IKE_SA_INIT (RFC 7296 §1.2), and as initiator handles the two ways a
// responder asks for the same exchange again: COOKIE (§2.6) and
// INVALID_KE_PAYLOAD (§1.2).
type ikeInit struct {
	ke      suite.KEState // initiator: our ephemeral secret
	group   wire.KEID     // initiator: the group of our KE payload
	cookie  []byte
	retries int
	// responder
	chosen []wire.Transform
	num    uint8
	keData []byte
}

// maxInitRetries bounds COOKIE and INVALID_KE round trips so a hostile
// responder cannot loop us.
const maxInitRetries = 4

func (t *ikeInit) kind() taskKind { return kindIKEInit }

func (t *ikeInit) build(sa *SA, m *msgOut) (status, error) {
	if m.exch != wire.IKE_SA_INIT {
		return done, nil
	}
	if m.response {
		m.add(chosenSA(selected{num: t.num, transforms: t.chosen}, wire.ProtoIKE, nil),
			&wire.KE{Group: sa.keID, Data: t.keData}, &wire.Nonce{Data: sa.nr})
		t.keData = nil
		sa.state = stateInitDone
		return done, nil
	}
	if t.cookie != nil {
		// RFC 7296 §2.6: the COOKIE notification comes first.
		m.notify(wire.COOKIE, t.cookie)
	}
	props := sa.conn.ikeProposals()
	if t.group == 0 {
		t.group = wire.KEID(firstOfType(props[0], wire.TransformKE).ID)
	}
	if t.ke == nil || t.ke.Method().ID != t.group {
		if t.ke != nil {
			t.ke.Zero()
		}
		m, err := suite.LookupKE(t.group)
		if err != nil {
			return done, err
		}
		if t.ke, err = m.Initiate(); err != nil {
			return done, err
		}
	}
	if sa.ni == nil {
		var err error
		if sa.ni, err = readNonce(sa.ep.rand); err != nil {
			return done, err
		}
	}
	m.add(toWireSA(props, wire.ProtoIKE, nil), &wire.KE{Group: t.group, Data: t.ke.Public()}, &wire.Nonce{Data: sa.ni})
	return needMore, nil
}

func (t *ikeInit) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange != wire.IKE_SA_INIT {
		return done, nil
	}
	if sa.initiator {
		return t.processResponse(sa, m)
	}
	return t.processRequest(sa, m)
}

func (t *ikeInit) processResponse(sa *SA, m *msgIn) (status, error) {
	if n := m.notify(wire.COOKIE); n != nil {
		if len(n.Data) < 1 || len(n.Data) > 64 || t.retries >= maxInitRetries {
			return done, notifyErr(wire.COOKIE, "unusable or repeated COOKIE from responder")
		}
		t.retries++
		t.cookie = clone(n.Data)
		sa.spiR = 0
		sa.ep.stats.CookieRetries++
		return retry, nil
	}
	if n := m.notify(wire.INVALID_KE_PAYLOAD); n != nil {
		g, ok := n.InvalidKEGroup()
		if !ok || t.retries >= maxInitRetries {
			return done, notifyErr(wire.INVALID_KE_PAYLOAD, "malformed or repeated INVALID_KE_PAYLOAD")
		}
		if g == t.group || !proposesKE(sa.conn.ikeProposals(), g) {
			// RFC 7296 §1.2: the group must be one we proposed.
			return done, notifyErr(wire.INVALID_KE_PAYLOAD, "responder asked for "+g.String()+", which we did not propose")
		}
		t.retries++
		t.group = g
		sa.spiR = 0
		sa.ep.stats.KERetries++
		return retry, nil
	}
	if n := m.errorNotify(); n != nil {
		return done, notifyErr(n.NotifyType, "responder refused IKE_SA_INIT")
	}
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	ke, _ := m.find(wire.PayloadKE).(*wire.KE)
	nr, _ := m.find(wire.PayloadNonce).(*wire.Nonce)
	if sap == nil || ke == nil || nr == nil || m.hdr.SPIr == 0 {
		return done, notifyErr(wire.INVALID_SYNTAX, "IKE_SA_INIT response lacks SA, KE, Nonce or SPIr")
	}
	chosen, ok := checkChosen(sa.conn.ikeProposals(), sap, wire.ProtoIKE)
	if !ok {
		return done, notifyErr(wire.NO_PROPOSAL_CHOSEN, "responder chose a proposal we did not offer")
	}
	s, keID, err := suiteOf(chosen)
	if err != nil || keID != t.group || ke.Group != t.group {
		return done, notifyErr(wire.INVALID_SYNTAX, "responder's KE does not match the chosen proposal")
	}
	if len(nr.Data) < wire.MinNonceLen || len(nr.Data) > wire.MaxNonceLen {
		return done, notifyErr(wire.INVALID_SYNTAX, "bad nonce length")
	}
	shared, err := t.ke.Shared(ke.Data)
	t.ke.Zero()
	t.ke = nil
	if err != nil {
		return done, err
	}
	sa.spiR = m.hdr.SPIr
	sa.nr = clone(nr.Data)
	sa.keID = keID
	if err := sa.deriveIKEKeys(s, shared); err != nil {
		return done, err
	}
	sa.state = stateInitDone
	return done, nil
}

func (t *ikeInit) processRequest(sa *SA, m *msgIn) (status, error) {
	sap, _ := m.find(wire.PayloadSA).(*wire.SA)
	ke, _ := m.find(wire.PayloadKE).(*wire.KE)
	ni, _ := m.find(wire.PayloadNonce).(*wire.Nonce)
	if sap == nil || ke == nil || ni == nil {
		return done, notifyErr(wire.INVALID_SYNTAX, "IKE_SA_INIT request lacks SA, KE or Nonce")
	}
	if len(ni.Data) < wire.MinNonceLen || len(ni.Data) > wire.MaxNonceLen {
		return done, notifyErr(wire.INVALID_SYNTAX, "bad nonce length")
	}
	local := sa.conn.ikeProposals()
	sel, ok := selectProposal(local, sap.Proposals, wire.ProtoIKE, sa.conn.Policy, ikeAcceptable)
	if !ok {
		return done, notifyErr(wire.NO_PROPOSAL_CHOSEN, "no acceptable IKE proposal")
	}
	if g := wire.KEID(firstOfType(sel.transforms, wire.TransformKE).ID); g != ke.Group {
		// RFC 7296 §1.2: use the initiator's guess if we accept it,
		// otherwise ask for our choice with INVALID_KE_PAYLOAD.
		if alt, ok := selectProposal(restrictKE(local, ke.Group), sap.Proposals, wire.ProtoIKE,
			sa.conn.Policy, ikeAcceptable); ok {
			sel = alt
		} else {
			e := notifyErr(wire.INVALID_KE_PAYLOAD, "initiator sent "+ke.Group.String()+", we want "+g.String())
			e.data = wire.NewInvalidKE(g).Data
			return done, e
		}
	}
	s, keID, err := suiteOf(sel.transforms)
	if err != nil {
		return done, notifyErr(wire.NO_PROPOSAL_CHOSEN, err.Error())
	}
	method, err := suite.LookupKE(keID)
	if err != nil {
		return done, notifyErr(wire.NO_PROPOSAL_CHOSEN, err.Error())
	}
	data, shared, err := method.Respond(ke.Data)
	if err != nil {
		return done, notifyErr(wire.INVALID_SYNTAX, err.Error())
	}
	if sa.nr, err = readNonce(sa.ep.rand); err != nil {
		clear(shared)
		return done, err
	}
	sa.ni = clone(ni.Data)
	sa.keID = keID
	t.chosen, t.num, t.keData = sel.transforms, sel.num, data
	sa.proposal = sel.transforms
	if err := sa.deriveIKEKeys(s, shared); err != nil {
		return done, err
	}
	return needMore, nil
}

// restrictKE keeps, of each proposal that offers ke, only that KE method.
func restrictKE(props [][]wire.Transform, ke wire.KEID) [][]wire.Transform {
	var out [][]wire.Transform
	for _, p := range props {
		if !slices.Contains(p, wire.Transform{Type: wire.TransformKE, ID: uint16(ke)}) {
			continue
		}
		q := make([]wire.Transform, 0, len(p))
		for _, t := range p {
			if t.Type != wire.TransformKE || t.ID == uint16(ke) {
				q = append(q, t)
			}
		}
		out = append(out, q)
	}
	return out
}

func proposesKE(props [][]wire.Transform, ke wire.KEID) bool {
	for _, p := range props {
		if slices.Contains(p, wire.Transform{Type: wire.TransformKE, ID: uint16(ke)}) {
			return true
		}
	}
	return false
}

// checkChosen verifies a responder's answer (RFC 7296 §2.7): exactly one
// proposal, of our protocol, numbered as one of ours, with exactly one
// transform of each type that proposal had, each one we offered in it.
func checkChosen(ours [][]wire.Transform, sap *wire.SA, proto wire.ProtocolID) ([]wire.Transform, bool) {
	if len(sap.Proposals) != 1 {
		return nil, false
	}
	p := &sap.Proposals[0]
	if p.Protocol != proto || p.Number < 1 || int(p.Number) > len(ours) {
		return nil, false
	}
	offered := ours[p.Number-1]
	got := peerTransforms(p)
	if len(got) != len(p.Transforms) {
		return nil, false
	}
	var seen uint16
	for _, t := range got {
		if isNoneTransform(t) {
			continue
		}
		if seen&(1<<t.Type) != 0 || !slices.Contains(offered, t) {
			return nil, false
		}
		seen |= 1 << t.Type
	}
	for _, t := range offered {
		if !isNoneTransform(t) && seen&(1<<t.Type) == 0 {
			return nil, false
		}
	}
	return got, true
}
