package ike

import (
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// auth authenticates both sides in IKE_AUTH (RFC 7296 §1.2, §2.15): IDi/IDr
// and AUTH over the signed octets. How a side proves or checks identity is
// the connection's Authenticator and Verifier; this task only lays out the
// exchange. As responder it picks the connection from the peer's identity
// (and IDr if sent) and the addresses. Failures go back as
// AUTHENTICATION_FAILED without detail; the reason goes to the local log.
type auth struct {
	idr *Identity // responder: IDr the initiator asked for
}

func (*auth) kind() taskKind { return kindAuth }

func idPayload(id Identity, responder bool) *wire.ID {
	return &wire.ID{Responder: responder, IDType: id.Type, Data: id.Data}
}

// restOfID is the ID payload body that the signed octets MAC (RFC 7296
// §2.15: RestOfInitIDPayload / RestOfRespIDPayload).
func restOfID(id Identity) []byte {
	return append([]byte{byte(id.Type), 0, 0, 0}, id.Data...)
}

func (sa *SA) localID() Identity {
	if sa.conn != nil && !sa.conn.LocalID.IsAny() {
		return sa.conn.LocalID
	}
	return IDAddr(sa.local.Addr())
}

// signedOctets of the initiator (initiatorSide) or the responder.
func (sa *SA) signedOctets(initiatorSide bool, id Identity) []byte {
	prf := sa.suite.PRF
	if initiatorSide {
		return suite.SignedOctets(prf, sa.initReq, sa.nr, sa.skpi, restOfID(id))
	}
	return suite.SignedOctets(prf, sa.initResp, sa.ni, sa.skpr, restOfID(id))
}

func (a *auth) build(sa *SA, m *msgOut) (status, error) {
	if m.exch == wire.IKE_SA_INIT {
		return needMore, nil
	}
	if m.exch != wire.IKE_AUTH {
		return done, nil
	}
	me := sa.localID()
	m.add(idPayload(me, m.response))
	if !m.response && sa.conn.SendIDr && !sa.conn.RemoteID.IsAny() {
		m.add(idPayload(sa.conn.RemoteID, true))
	}
	ctx := &AuthContext{PRF: sa.suite.PRF, SignedOctets: sa.signedOctets(sa.initiator, me), ID: me, Peer: sa.peerID}
	ps, err := sa.conn.LocalAuth.Prove(ctx)
	if err != nil {
		return done, err
	}
	m.add(ps...)
	if !m.response {
		return needMore, nil
	}
	sa.established()
	return done, nil
}

func (a *auth) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange == wire.IKE_SA_INIT {
		return needMore, nil
	}
	if m.hdr.Exchange != wire.IKE_AUTH {
		return done, nil
	}
	if sa.initiator {
		if n := m.notify(wire.AUTHENTICATION_FAILED); n != nil {
			return done, notifyErr(wire.AUTHENTICATION_FAILED, "responder refused our authentication")
		}
	}
	idp, _ := m.find(map[bool]wire.PayloadType{true: wire.PayloadIDr, false: wire.PayloadIDi}[sa.initiator]).(*wire.ID)
	if idp == nil || m.find(wire.PayloadAUTH) == nil {
		if n := m.errorNotify(); n != nil && sa.initiator {
			return done, notifyErr(n.NotifyType, "responder refused IKE_AUTH")
		}
		return done, notifyErr(wire.AUTHENTICATION_FAILED, "IKE_AUTH without ID or AUTH payload")
	}
	peer := Identity{Type: idp.IDType, Data: clone(idp.Data)}
	if !sa.initiator {
		var want *Identity
		if p, ok := m.find(wire.PayloadIDr).(*wire.ID); ok {
			want = &Identity{Type: p.IDType, Data: clone(p.Data)}
		}
		conn := sa.ep.selectConnection(sa, peer, want)
		if conn == nil {
			return done, notifyErr(wire.AUTHENTICATION_FAILED, "no connection for peer "+peer.String()+" from "+sa.remote.String())
		}
		sa.conn = conn
		sa.tm.schedule = conn.Retransmit.withDefaults()
	} else if !sa.conn.RemoteID.Matches(peer) {
		return done, authFailed(sa, "responder identity "+peer.String()+" does not match "+sa.conn.RemoteID.String())
	}
	ctx := &AuthContext{PRF: sa.suite.PRF, SignedOctets: sa.signedOctets(!sa.initiator, peer), ID: peer, Peer: sa.localID()}
	if err := sa.conn.RemoteAuth.Verify(ctx, m.payloads); err != nil {
		return done, authFailed(sa, "peer "+peer.String()+": "+err.Error())
	}
	sa.peerID = peer
	if !sa.initiator {
		return needMore, nil // IDr and AUTH follow in our response
	}
	sa.established()
	return done, nil
}

// authFailed is AUTHENTICATION_FAILED; an initiator also tells the
// responder, which has already accepted us (RFC 7296 §2.21.2).
func authFailed(sa *SA, reason string) *notifyError {
	e := notifyErr(wire.AUTHENTICATION_FAILED, reason)
	e.tellPeer = sa.initiator
	return e
}

// established marks the IKE SA authenticated (RFC 7296 §1.2).
func (sa *SA) established() {
	sa.state = stateEstablished
	sa.ep.onEstablished(sa)
}
