package ike

import (
	"errors"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// HandleDatagram takes one UDP datagram (without the non-ESP marker) that
// arrived from src on dst at now, and appends what it causes to out.
// Malformed, replayed and unsolicited messages are dropped and counted in
// Stats; nothing in data can make it panic.
func (ep *Endpoint) HandleDatagram(now time.Time, src, dst netip.AddrPort, data []byte, out *Output) {
	ep.stats.Received++
	ep.cookies.maybeRotate(now, ep.rand)
	m, err := wire.Parse(data)
	if err != nil {
		ep.stats.DroppedMalformed++
		ep.parseError(now, data, err, src, dst, out)
		return
	}
	h := &m.Header
	if h.Exchange == wire.IKE_SA_INIT && !h.IsResponse() && h.SPIr == 0 {
		if !h.Flags.Initiator() {
			ep.stats.DroppedFlags++
			return
		}
		ep.handleInit(now, m, src, dst, out)
		return
	}
	spi := h.SPIi
	if h.Flags.Initiator() {
		spi = h.SPIr // the sender is the original initiator: we chose SPIr
	}
	sa := ep.sas[spi]
	if sa == nil {
		other := h.SPIr
		if h.Flags.Initiator() {
			other = h.SPIi
		}
		if o := ep.sas[other]; o != nil && o.spiI == h.SPIi && o.spiR == h.SPIr {
			ep.stats.DroppedFlags++ // our SA, but the I flag names the wrong side
			return
		}
		ep.stats.DroppedUnknownSPI++
		if !h.IsResponse() && m.Encrypted() != nil {
			ep.invalidSPI(now, m, src, dst, out)
		}
		return
	}
	ep.run(sa, now, out, func() { sa.handle(now, m, src, dst, out) })
}

// handleInit handles an IKE_SA_INIT request (RFC 7296 §1.2) with the
// denial-of-service defences of §2.6: a retransmission goes to its half-open
// SA; beyond MaxHalfOpen it is dropped; beyond the cookie thresholds it must
// carry a valid COOKIE or is answered statelessly with one.
func (ep *Endpoint) handleInit(now time.Time, m *wire.Message, src, dst netip.AddrPort, out *Output) {
	h := &m.Header
	if sa := ep.inits[initKey{src, h.SPIi}]; sa != nil {
		ep.run(sa, now, out, func() { sa.handle(now, m, src, dst, out) })
		return
	}
	if h.MessageID != 0 {
		ep.stats.DroppedWindow++
		return
	}
	if ep.cfg.MaxHalfOpen > 0 && ep.halfOpen >= ep.cfg.MaxHalfOpen {
		ep.stats.DroppedHalfOpen++
		return
	}
	ni, _ := wire.Find(m.Payloads, wire.PayloadNonce).(*wire.Nonce)
	if ni == nil {
		ep.stats.DroppedMalformed++
		return
	}
	ip := src.Addr()
	need := (ep.cfg.CookieThreshold >= 0 && ep.halfOpen >= ep.cfg.CookieThreshold) ||
		(ep.cfg.HalfOpenPerIP > 0 && ep.perIP[ip] >= ep.cfg.HalfOpenPerIP)
	if need {
		c := firstNotify(m.Payloads, wire.COOKIE)
		if c == nil || !ep.cookies.check(c.Data, ni.Data, ip, h.SPIi) {
			// RFC 7296 §2.6: no state, no key exchange; just the cookie.
			ep.stats.CookiesSent++
			ep.statelessReply(h, src, dst, out, &wire.Notify{NotifyType: wire.COOKIE, Data: ep.cookies.make(ni.Data, ip, h.SPIi)})
			return
		}
	}
	conn := ep.connForInit(dst, src)
	if conn == nil {
		ep.log.Info("ike: no connection for IKE_SA_INIT", "local", dst, "remote", src)
		ep.statelessReply(h, src, dst, out, &wire.Notify{NotifyType: wire.NO_PROPOSAL_CHOSEN})
		return
	}
	spi, err := ep.newSPI()
	if err != nil {
		return
	}
	sa := ep.newSA(conn, false, dst, src, now)
	sa.spiI, sa.spiR = h.SPIi, spi
	sa.out = out
	sa.handle(now, m, src, dst, out)
	sa.out = nil
	if sa.state == stateDead || sa.tm.peerMID == 0 {
		return // refused or dropped: nothing kept
	}
	ep.sas[spi] = sa
	ep.inits[initKey{src, h.SPIi}] = sa
	sa.halfOpen, sa.halfOpenIP = true, src
	ep.halfOpen++
	ep.perIP[ip]++
	ep.timers.set(sa, sa.nextDeadline())
}

// firstNotify: RFC 7296 §2.6 puts COOKIE first, but accepting it anywhere
// costs nothing since it is checked cryptographically.
func firstNotify(ps []wire.Payload, t wire.NotifyType) *wire.Notify { return wire.FindNotify(ps, t) }

func (ep *Endpoint) statelessReply(h *wire.Header, src, dst netip.AddrPort, out *Output, n *wire.Notify) {
	m := wire.Message{Header: wire.Header{SPIi: h.SPIi, Exchange: h.Exchange, MessageID: h.MessageID, Flags: wire.FlagResponse}}
	m.Payloads = []wire.Payload{n}
	b, err := m.Encode(nil)
	if err != nil {
		return
	}
	out.Datagrams = append(out.Datagrams, Datagram{Src: dst, Dst: src, Data: b})
}

// parseError answers an IKE_SA_INIT request that has a higher major
// version (INVALID_MAJOR_VERSION, RFC 7296 §2.5) or a critical payload we
// do not understand (UNSUPPORTED_CRITICAL_PAYLOAD, §2.5), statelessly and
// within the same rate limit as INVALID_IKE_SPI. Anything else that does
// not parse is dropped: its sender is unauthenticated.
func (ep *Endpoint) parseError(now time.Time, data []byte, err error, src, dst netip.AddrPort, out *Output) {
	var we *wire.Error
	if !errors.As(err, &we) || (we.Notify != wire.INVALID_MAJOR_VERSION && we.Notify != wire.UNSUPPORTED_CRITICAL_PAYLOAD) {
		return
	}
	h, _ := wire.ParseHeader(data)
	if len(data) < wire.HeaderLen || h.Exchange != wire.IKE_SA_INIT || h.Flags.Response() || h.SPIr != 0 || !ep.takeToken(now) {
		return
	}
	ep.statelessReply(&h, src, dst, out, &wire.Notify{NotifyType: we.Notify, Data: we.Data})
}

// takeToken takes one unauthenticated-answer token (refilled at
// InvalidSPIRate per second, burst of the same size).
func (ep *Endpoint) takeToken(now time.Time) bool {
	rate := ep.cfg.InvalidSPIRate
	if rate < 0 {
		return false
	}
	if rate == 0 {
		rate = 10
	}
	if el := now.Sub(ep.tokensTime); el > 0 {
		ep.tokens = min(float64(rate), ep.tokens+el.Seconds()*float64(rate))
		ep.tokensTime = now
	}
	if ep.tokens < 1 {
		return false
	}
	ep.tokens--
	return true
}

// invalidSPI answers a protected request for an unknown IKE SA with
// INVALID_IKE_SPI outside any SA (RFC 7296 §2.21.4), rate-limited so it
// cannot be used for reflection.
func (ep *Endpoint) invalidSPI(now time.Time, m *wire.Message, src, dst netip.AddrPort, out *Output) {
	if !ep.takeToken(now) {
		ep.stats.InvalidSPILimited++
		return
	}
	ep.stats.InvalidSPISent++
	h := m.Header
	r := wire.Message{Header: wire.Header{SPIi: h.SPIi, SPIr: h.SPIr, Exchange: wire.INFORMATIONAL,
		MessageID: h.MessageID, Flags: wire.FlagResponse}}
	if !h.Flags.Initiator() {
		r.Header.Flags |= wire.FlagInitiator
	}
	r.Payloads = []wire.Payload{&wire.Notify{NotifyType: wire.INVALID_IKE_SPI}}
	if b, err := r.Encode(nil); err == nil {
		out.Datagrams = append(out.Datagrams, Datagram{Src: dst, Dst: src, Data: b})
	}
}

// addrScore says how well a connection's addresses match an SA's: -1 no
// match; otherwise higher is more specific. Ports are not compared (a NAT
// may change the peer's).
func addrScore(c *Connection, local, remote netip.AddrPort) int {
	s := 0
	if c.Remote.IsValid() {
		if c.Remote.Addr().Unmap() != remote.Addr().Unmap() {
			return -1
		}
		s += 2
	}
	if c.Local.IsValid() {
		if c.Local.Addr().Unmap() != local.Addr().Unmap() {
			return -1
		}
		s++
	}
	return s
}

// connForInit picks the connection whose proposals answer an IKE_SA_INIT,
// by addresses only (identities come in IKE_AUTH).
func (ep *Endpoint) connForInit(local, remote netip.AddrPort) *Connection {
	var best *Connection
	bestScore := -1
	for _, c := range ep.cfg.Connections {
		if s := addrScore(c, local, remote); s > bestScore {
			best, bestScore = c, s
		}
	}
	return best
}

// selectConnection picks the responder's connection in IKE_AUTH from the
// peer's identity, the IDr it asked for, and the addresses (Cisco's "match
// identity remote"): the most specific match wins, earlier configuration
// breaks ties. The IKE proposal already negotiated must be acceptable to
// the connection. local and remote are the addresses of the peer's
// IKE_AUTH request (the SA's once it is accepted).
func (ep *Endpoint) selectConnection(sa *SA, local, remote netip.AddrPort, peer Identity, idr *Identity) *Connection {
	var best *Connection
	bestScore := -1
	for _, c := range ep.cfg.Connections {
		as := addrScore(c, local, remote)
		if as < 0 || !c.RemoteID.Matches(peer) {
			continue
		}
		score := c.RemoteID.specificity()*8 + as
		if idr != nil {
			if !c.LocalID.IsAny() && !c.LocalID.Equal(*idr) {
				continue
			}
			if !c.LocalID.IsAny() {
				score += 4
			}
		}
		if !acceptsSuite(c.ikeProposals(), sa.proposal) {
			continue
		}
		if score > bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// acceptsSuite reports whether one of props contains every transform of
// the negotiated proposal.
func acceptsSuite(props [][]wire.Transform, chosen []wire.Transform) bool {
	for _, p := range props {
		if _, ok := matchProposal(p, chosen, ikeAcceptable); ok {
			return true
		}
	}
	return false
}
