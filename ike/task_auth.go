package ike

import (
	"net/netip"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// auth authenticates both sides in IKE_AUTH (RFC 7296 §1.2, §2.15): IDi/IDr
// and AUTH over the signed octets. How a side proves or checks identity is
// the connection's Authenticator and Verifier; this task only lays out the
// exchange. As responder it picks the connection from the peer's identity
// (and IDr if sent) and the addresses. Failures go back as
// AUTHENTICATION_FAILED without detail; the reason goes to the local log.
//
// For certificates (RFC 7296 §3.6, §3.7) it also carries CERTREQ and
// HTTP_CERT_LOOKUP_SUPPORTED: the responder sends them in IKE_SA_INIT, the
// initiator in IKE_AUTH, and each side remembers what the peer sent for
// choosing its credential (auth_cert.go).
type auth struct {
	idr      *Identity // responder: IDr the initiator asked for
	peerCAs  [][]byte  // CA hashes of the peer's CERTREQs
	peerHTTP bool      // the peer sent HTTP_CERT_LOOKUP_SUPPORTED
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

func (sa *SA) localID() Identity { return localIDOf(sa.conn, sa.local) }

// localIDOf is the identity conn claims from the address local when it
// configures none.
func localIDOf(conn *Connection, local netip.AddrPort) Identity {
	if conn != nil && !conn.LocalID.IsAny() {
		return conn.LocalID
	}
	return IDAddr(local.Addr())
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
		if m.response {
			// The connection is not known yet: name the CAs of every
			// connection this peer might be for (RFC 7296 §1.2:
			// HDR, SAr1, KEr, Nr, [CERTREQ]).
			addCertReqs(m, sa.ep.certRequesters(sa))
		}
		return needMore, nil
	}
	if m.exch != wire.IKE_AUTH {
		return done, nil
	}
	ctx := a.context(sa)
	me := sa.localID()
	if ch, ok := sa.conn.LocalAuth.(IdentityChooser); ok {
		ctx.ID = sa.conn.LocalID
		var err error
		if me, err = ch.ChooseID(ctx); err != nil {
			return done, a.localFailed(sa, err)
		}
	}
	ctx.ID, ctx.SignedOctets = me, sa.signedOctets(sa.initiator, me)
	ps, err := sa.conn.LocalAuth.Prove(ctx)
	if err != nil {
		return done, a.localFailed(sa, err)
	}
	sa.auth.Local = describeLocal(ps)
	// RFC 7296 §1.2: IDi, [CERT+], [CERTREQ+], [IDr], AUTH.
	m.add(idPayload(me, m.response))
	var authP wire.Payload
	for _, p := range ps {
		if p.Type() == wire.PayloadAUTH {
			authP = p
			continue
		}
		m.add(p)
	}
	if !m.response {
		if r, ok := sa.conn.RemoteAuth.(CertRequester); ok {
			addCertReqs(m, []CertRequester{r})
		}
		if sa.conn.SendIDr && !sa.conn.RemoteID.IsAny() {
			m.add(idPayload(sa.conn.RemoteID, true))
		}
	}
	if authP != nil {
		m.add(authP)
	}
	if !m.response {
		return needMore, nil
	}
	sa.established()
	return done, nil
}

// context is what the Authenticator and Verifier learn of the peer.
func (a *auth) context(sa *SA) *AuthContext {
	hashes, sent := peerHashList(sa.peerSigHashes)
	return &AuthContext{PRF: sa.suite.PRF, Peer: sa.peerID,
		PeerHashes: hashes, PeerSentHashes: sent, PeerCAs: a.peerCAs, PeerHTTPLookup: a.peerHTTP}
}

// localFailed: we cannot prove our identity (no credential for it, a key
// that cannot sign for this peer). A responder answers
// AUTHENTICATION_FAILED; an initiator gives up.
func (a *auth) localFailed(sa *SA, err error) error {
	if sa.initiator {
		return err
	}
	me := "our identity"
	if !sa.conn.LocalID.IsAny() {
		me = sa.conn.LocalID.String()
	}
	return notifyErr(wire.AUTHENTICATION_FAILED, "cannot authenticate as "+me+": "+err.Error())
}

// recordCertReqs keeps what the peer said about certificates.
func (a *auth) recordCertReqs(m *msgIn) { a.peerCAs, a.peerHTTP = a.certReqsWith(m) }

// certReqsWith is what recordCertReqs would keep after m.
func (a *auth) certReqsWith(m *msgIn) ([][]byte, bool) {
	cas := a.peerCAs
	if c := cert.CertReqAuthorities(m.payloads); len(c) > 0 {
		cas = c
	}
	return cas, a.peerHTTP || cert.PeerHTTPLookup(m.payloads)
}

func (a *auth) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange == wire.IKE_SA_INIT {
		if sa.initiator {
			a.recordCertReqs(m)
		}
		return needMore, nil
	}
	if m.hdr.Exchange != wire.IKE_AUTH {
		return done, nil
	}
	peer, conn, err := a.peerOf(sa, m)
	if err != nil {
		return done, err
	}
	if !sa.initiator {
		sa.conn = conn
		sa.tm.schedule = conn.Retransmit.withDefaults()
		a.recordCertReqs(m)
	}
	// The task manager may have verified this very message already, before
	// any task ran, to find out whether it waits on a certificate fetch
	// (certwait.go); that verdict is the one to use.
	var side AuthSide
	if v := sa.tm.takeVerified(m, conn); v != nil {
		side, err = v.side, v.err
	} else {
		side, err = verifyPeer(conn.RemoteAuth, a.verifyContext(sa, m, conn, peer), m.payloads, false)
	}
	if err != nil {
		return done, authFailed(sa, "peer "+peer.String()+": "+err.Error())
	}
	sa.auth.Remote = side
	sa.peerID = peer
	if !sa.initiator {
		return needMore, nil // IDr and AUTH follow in our response
	}
	sa.established()
	return done, nil
}

// peerOf finds, in the peer's IKE_AUTH message m, the identity it claims
// and the connection whose Verifier checks it: the configured one for an
// initiator, for a responder the one selectConnection picks from the
// identity, the IDr asked for and the addresses m came on (those the SA
// follows once m is accepted, RFC 7296 §2.23). It changes nothing, so that
// the task manager can call it before deciding whether to keep m at all
// (certwait.go). Its errors are the refusals of the exchange.
func (a *auth) peerOf(sa *SA, m *msgIn) (Identity, *Connection, error) {
	if sa.initiator {
		if n := m.notify(wire.AUTHENTICATION_FAILED); n != nil {
			return Identity{}, nil, notifyErr(wire.AUTHENTICATION_FAILED, "responder refused our authentication")
		}
	}
	idp, _ := m.find(map[bool]wire.PayloadType{true: wire.PayloadIDr, false: wire.PayloadIDi}[sa.initiator]).(*wire.ID)
	if idp == nil || m.find(wire.PayloadAUTH) == nil {
		if n := m.errorNotify(); n != nil && sa.initiator {
			return Identity{}, nil, notifyErr(n.NotifyType, "responder refused IKE_AUTH")
		}
		return Identity{}, nil, notifyErr(wire.AUTHENTICATION_FAILED, "IKE_AUTH without ID or AUTH payload")
	}
	peer := Identity{Type: idp.IDType, Data: clone(idp.Data)}
	if sa.initiator {
		if !sa.conn.RemoteID.Matches(peer) {
			return Identity{}, nil, authFailed(sa, "responder identity "+peer.String()+" does not match "+sa.conn.RemoteID.String())
		}
		return peer, sa.conn, nil
	}
	var want *Identity
	if p, ok := m.find(wire.PayloadIDr).(*wire.ID); ok {
		want = &Identity{Type: p.IDType, Data: clone(p.Data)}
	}
	conn := sa.ep.selectConnection(sa, m.dst, m.src, peer, want)
	if conn == nil {
		return Identity{}, nil, notifyErr(wire.AUTHENTICATION_FAILED, "no connection for peer "+peer.String()+" from "+m.src.String())
	}
	return peer, conn, nil
}

// verifyContext is what conn's Verifier gets for the peer's message m: the
// AuthContext as it stands once m is taken (the peer's CERTREQs of m
// included), built without changing the SA.
func (a *auth) verifyContext(sa *SA, m *msgIn, conn *Connection, peer Identity) *AuthContext {
	ctx := a.context(sa)
	local := sa.local
	if !sa.initiator {
		ctx.PeerCAs, ctx.PeerHTTPLookup = a.certReqsWith(m)
		local, _ = sa.addrsAfter(m) // where sa.local goes once m is accepted
	}
	ctx.SignedOctets, ctx.ID, ctx.Peer = sa.signedOctets(!sa.initiator, peer), peer, localIDOf(conn, local)
	return ctx
}

// verifyPeer runs v over the peer's IKE_AUTH payloads. mayDefer lets a
// deferringVerifier answer cert.ErrFetchPending instead of waiting on a
// fetch (certwait.go).
func verifyPeer(v Verifier, ctx *AuthContext, payloads []wire.Payload, mayDefer bool) (AuthSide, error) {
	if dv, ok := v.(deferringVerifier); ok {
		return dv.verify(ctx, payloads, mayDefer)
	}
	if iv, ok := v.(InfoVerifier); ok {
		return iv.VerifyInfo(ctx, payloads)
	}
	if err := v.Verify(ctx, payloads); err != nil {
		return AuthSide{}, err
	}
	return describeLocal(payloads), nil
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
