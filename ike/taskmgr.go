package ike

import (
	"errors"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// taskManager is the only code that touches message IDs, the window (one
// request in flight each way, RFC 7296 §2.3), retransmission, the response
// cache and the choice of exchange. Tasks only add and read payloads.
type taskManager struct {
	// Requests we send.
	nextMID  uint32 // message ID of our next (or in-flight) request
	active   []task // tasks of the request in flight
	exch     wire.ExchangeType
	queued   []task
	req      [][]byte // request in flight (one datagram, or its SKF fragments), kept for retransmission
	sends    int      // transmissions of req so far
	retryAt  time.Time
	schedule Retransmit

	// Requests the peer sends.
	peerMID uint32            // next request ID expected
	resp    [][]byte          // our response to request peerMID-1 (datagram or fragments)
	frag    *wire.Reassembler // SKF fragments being collected (RFC 7383), nil when none
	fragAt  time.Time         // when frag started collecting
	passive []task            // responder tasks that live across exchanges

	delayed []delayed // tasks waiting for a time (lifetime.go)

	// The peer's IKE_AUTH while its certificate check waits on a fetch,
	// and the verdict for the auth task (certwait.go); nil otherwise.
	cw *certWait
}

func (tm *taskManager) clear() {
	tm.active, tm.queued, tm.passive, tm.delayed = nil, nil, nil, nil
	tm.req, tm.resp, tm.frag = nil, nil, nil
	tm.cw = nil
}

func (tm *taskManager) inFlight() bool { return len(tm.req) > 0 }

// queue adds an initiator task to run when the window is free.
func (sa *SA) queue(t task) { sa.tm.queued = append(sa.tm.queued, t) }

// exchangeFor chooses the exchange for the next request from the SA's state
// and the tasks it carries (RFC 7296 §1.2-§1.4).
func (sa *SA) exchangeFor(tasks []task) wire.ExchangeType {
	switch sa.state {
	case stateCreated:
		return wire.IKE_SA_INIT
	case stateInitDone:
		return wire.IKE_AUTH
	}
	if len(tasks) > 0 && (tasks[0].kind() == kindChildCreate || tasks[0].kind() == kindIKERekey) {
		return wire.CREATE_CHILD_SA
	}
	return wire.INFORMATIONAL
}

// initiate starts the next exchange if the window is free (window size 1).
func (sa *SA) initiate(now time.Time, out *Output) {
	tm := &sa.tm
	if tm.inFlight() || sa.state == stateDead {
		return
	}
	if len(tm.active) == 0 {
		if len(tm.queued) == 0 {
			return
		}
		if sa.state < stateEstablished {
			// IKE_SA_INIT and IKE_AUTH tasks run together: a task may
			// span both exchanges (RFC 7296 §1.2).
			for _, t := range tm.queued {
				tm.active = insertTask(tm.active, t)
			}
			tm.queued = nil
		} else {
			// Skip tasks whose object went away while they waited.
			for len(tm.queued) > 0 && isObsolete(sa, tm.queued[0]) {
				tm.queued = tm.queued[1:]
			}
			if len(tm.queued) == 0 {
				return
			}
			tm.active = []task{tm.queued[0]}
			tm.queued = tm.queued[1:]
		}
	}
	tm.exch = sa.exchangeFor(tm.active)
	m := msgOut{exch: tm.exch}
	kept := tm.active[:0]
	for _, t := range tm.active {
		st, err := t.build(sa, &m)
		if err != nil {
			sa.fail(out, err)
			return
		}
		if st != done {
			kept = append(kept, t)
		}
	}
	tm.active = kept
	b, err := sa.encode(tm.exch, false, tm.nextMID, m.payloads)
	if err != nil {
		sa.fail(out, err)
		return
	}
	if tm.exch == wire.IKE_SA_INIT {
		sa.initReq = b[0]
	}
	tm.req, tm.sends = b, 1
	tm.retryAt = now.Add(tm.schedule.delay(0))
	sa.send(out, b)
}

// fail ends the SA after a fatal task error.
func (sa *SA) fail(out *Output, err error) {
	reason := err.Error()
	var ne *notifyError
	if errors.As(err, &ne) {
		reason = ne.notify.String()
		if ne.tellPeer && sa.prot != nil {
			// RFC 7296 §2.21.2: an error found by the initiator in
			// IKE_AUTH goes to the responder in a separate
			// INFORMATIONAL, sent once, so it does not keep an SA we
			// refused.
			mid := sa.tm.nextMID
			if sa.tm.inFlight() {
				mid++ // the failing response answered nextMID
			}
			if bs, err := sa.encode(wire.INFORMATIONAL, false, mid, []wire.Payload{&wire.Notify{NotifyType: ne.notify}}); err == nil {
				sa.send(out, bs)
			}
		}
	}
	sa.info("ike: IKE SA failed", "err", err)
	sa.destroy(out, reason)
}

func (sa *SA) send(out *Output, bs [][]byte) {
	for _, b := range bs {
		out.Datagrams = append(out.Datagrams, Datagram{Src: sa.local, Dst: sa.remote, Data: b})
	}
}

func reply(out *Output, in *msgIn, bs [][]byte) {
	for _, b := range bs {
		out.Datagrams = append(out.Datagrams, Datagram{Src: in.dst, Dst: in.src, Data: b})
	}
}

// encode lays out a message of this SA; IKE_SA_INIT goes in clear, every
// other exchange inside an SK payload (RFC 7296 §3.14), split into SKF
// fragments when the peer supports them and the message is too large
// (RFC 7383 §2.5).
func (sa *SA) encode(exch wire.ExchangeType, response bool, mid uint32, ps []wire.Payload) ([][]byte, error) {
	m := wire.Message{Header: wire.Header{
		SPIi: sa.spiI, SPIr: sa.spiR, Exchange: exch, MessageID: mid,
	}}
	if sa.initiator {
		m.Header.Flags |= wire.FlagInitiator
	}
	if response {
		m.Header.Flags |= wire.FlagResponse
	}
	if exch == wire.IKE_SA_INIT {
		m.Payloads = ps
		b, err := m.Encode(nil)
		return [][]byte{b}, err
	}
	if sa.prot == nil {
		return nil, errors.New("ike: no keys to protect " + exch.String())
	}
	m.Inner = ps
	b, err := m.Encode(sa.prot)
	if err != nil {
		return nil, err
	}
	size := sa.maxMessageLen()
	if !sa.peerFrag || len(b) <= size {
		return [][]byte{b}, nil
	}
	return m.EncodeFragments(sa.prot, size)
}

// handle takes one parsed message addressed to this SA. It validates flags
// and message IDs (RFC 7296 §2.2, §2.3), answers retransmitted requests from
// the response cache without reprocessing, decrypts, and hands the message
// to the tasks.
func (sa *SA) handle(now time.Time, m *wire.Message, src, dst netip.AddrPort, out *Output) {
	st := &sa.ep.stats
	h := &m.Header
	// The I bit says the sender is the original initiator (RFC 7296 §3.1).
	if h.Flags.Initiator() == sa.initiator {
		st.DroppedFlags++
		return
	}
	tm := &sa.tm
	reassembled := false
	if m.Fragment() != nil {
		// RFC 7383 §2.6: check the window, verify each fragment, then
		// reassemble; only a complete message goes on.
		inWindow := (h.IsResponse() && tm.inFlight() && h.MessageID == tm.nextMID && h.Exchange == tm.exch) ||
			(!h.IsResponse() && h.MessageID == tm.peerMID)
		if !h.IsResponse() && tm.peerMID > 0 && h.MessageID == tm.peerMID-1 && tm.resp != nil {
			// A retransmitted fragmented request: answer once, on its
			// first fragment (RFC 7383 §2.6.1).
			if f := m.Fragment(); f.Number == 1 && sa.prot != nil {
				if _, err := m.OpenFragment(sa.prot); err == nil {
					st.Retransmits++
					for _, b := range tm.resp {
						out.Datagrams = append(out.Datagrams, Datagram{Src: dst, Dst: src, Data: b})
					}
				}
			}
			return
		}
		if !inWindow {
			st.DroppedWindow++
			return
		}
		full, ok := sa.reassemble(m)
		if !ok {
			return
		}
		m, h, reassembled = full, &full.Header, true
	}
	if h.IsResponse() {
		if !tm.inFlight() || h.MessageID != tm.nextMID || h.Exchange != tm.exch {
			st.DroppedWindow++ // late duplicate, replay or unsolicited
			return
		}
		if sa.state == stateDeleting && m.Encrypted() == nil && wire.FindNotify(m.Payloads, wire.INVALID_IKE_SPI) != nil {
			// RFC 7296 §2.21.4: the peer no longer knows the SA we are
			// deleting (it answered our first delete, and that answer
			// was lost). Unauthenticated, but it can only hasten a
			// deletion already under way.
			sa.destroy(out, "deleted")
			return
		}
		in, we, ok := sa.open(m, src, dst, reassembled)
		if !ok {
			return
		}
		sa.take(now, in, we, out)
		return
	}
	// A request.
	if tm.peerMID > 0 && h.MessageID == tm.peerMID-1 && tm.resp != nil {
		if h.Exchange != wire.IKE_SA_INIT {
			if sa.prot == nil || m.Encrypted() == nil || m.Open(sa.prot) != nil {
				sa.ep.stats.DroppedICV++
				return
			}
		}
		// RFC 7296 §2.1: a retransmitted request is answered with the
		// same response, not processed again.
		st.Retransmits++
		for _, b := range tm.resp {
			out.Datagrams = append(out.Datagrams, Datagram{Src: dst, Dst: src, Data: b})
		}
		return
	}
	if h.MessageID != tm.peerMID {
		st.DroppedWindow++
		return
	}
	if !sa.requestAllowed(h.Exchange) {
		st.DroppedState++
		return
	}
	in, we, ok := sa.open(m, src, dst, reassembled)
	if !ok {
		return
	}
	sa.take(now, in, we, out)
}

// take processes a message that passed the window checks and decrypted
// (we: it breaks the payload rules). An IKE_AUTH message whose certificate
// check waits on a fetch is set aside instead, the SA left as it was
// (certwait.go).
func (sa *SA) take(now time.Time, in *msgIn, we *wire.Error, out *Output) {
	tm := &sa.tm
	if we == nil && sa.verifyAhead(now, in) {
		return // set aside (certwait.go)
	}
	sa.lastRecv = now
	// RFC 7296 §2.23: the latest message that passed its integrity check
	// may move the SA (natfollow.go), before any task builds on its
	// addresses.
	sa.follow(in, out)
	if we != nil {
		tm.cw = nil
		sa.syntaxError(in, we, out)
		return
	}
	if in.hdr.IsResponse() {
		sa.processResponse(now, in, out)
	} else {
		sa.processRequest(now, in, out)
	}
	tm.cw = nil // processed: nothing waits, the verdict was used
}

// requestAllowed: IKE_SA_INIT only first, IKE_AUTH only after it, other
// exchanges only on an established SA (RFC 7296 §1.2, §2.2).
func (sa *SA) requestAllowed(x wire.ExchangeType) bool {
	switch sa.state {
	case stateCreated:
		return x == wire.IKE_SA_INIT
	case stateInitDone:
		return x == wire.IKE_AUTH
	case stateEstablished, stateDeleting:
		return x == wire.INFORMATIONAL || x == wire.CREATE_CHILD_SA
	}
	return false
}

// open decrypts a protected message; failures are dropped and counted
// (RFC 7296 §2.21.2: no answer to a message that does not verify). A
// message that verifies but breaks the payload rules of its exchange
// (wire.CheckRules, checked here before any task runs) is returned with its
// *wire.Error.
func (sa *SA) open(m *wire.Message, src, dst netip.AddrPort, reassembled bool) (*msgIn, *wire.Error, bool) {
	in := &msgIn{hdr: m.Header, raw: m.Raw(), src: src, dst: dst}
	var we *wire.Error
	if m.Header.Exchange == wire.IKE_SA_INIT {
		if m.Encrypted() != nil || m.Fragment() != nil {
			sa.ep.stats.DroppedMalformed++
			return nil, nil, false
		}
		in.payloads = m.Payloads
	} else if reassembled {
		in.payloads = m.Inner // fragments were verified one by one
	} else {
		if sa.prot == nil || m.Encrypted() == nil {
			sa.ep.stats.DroppedMalformed++
			return nil, nil, false
		}
		if err := m.Open(sa.prot); err != nil {
			if !errors.As(err, &we) {
				sa.ep.stats.DroppedICV++
				return nil, nil, false
			}
			sa.ep.stats.DroppedMalformed++
			return in, we, true
		}
		in.payloads = m.Inner
	}
	if err := wire.CheckRules(m); err != nil {
		sa.ep.stats.DroppedMalformed++
		if !errors.As(err, &we) {
			we = &wire.Error{Notify: wire.INVALID_SYNTAX, Reason: err.Error()}
		}
		return in, we, true
	}
	if m.Header.Exchange == wire.IKE_SA_INIT {
		// The IKE_SA_INIT octets are signed in IKE_AUTH (RFC 7296 §2.15).
		if m.Header.IsResponse() {
			sa.initResp = in.raw
		} else {
			sa.initReq = in.raw
		}
	}
	return in, nil, true
}

// syntaxError handles an authenticated message that breaks the rules
// (RFC 7296 §2.21.1): a protected request is answered with the error
// notification; a protected response ends the SA, whose exchange cannot
// complete. Unprotected ones (IKE_SA_INIT) may be forged and are dropped.
func (sa *SA) syntaxError(in *msgIn, we *wire.Error, out *Output) {
	if in.hdr.Exchange == wire.IKE_SA_INIT {
		return
	}
	if in.hdr.IsResponse() {
		sa.fail(out, notifyErr(we.Notify, "peer's response: "+we.Reason))
		return
	}
	bs, err := sa.encode(in.hdr.Exchange, true, in.hdr.MessageID, []wire.Payload{&wire.Notify{NotifyType: we.Notify, Data: we.Data}})
	if err != nil {
		return
	}
	sa.tm.resp = bs
	sa.tm.peerMID++
	reply(out, in, bs)
}

func (sa *SA) processResponse(now time.Time, in *msgIn, out *Output) {
	tm := &sa.tm
	kept := tm.active[:0:0]
	for i, t := range tm.active {
		st, err := t.process(sa, in)
		if err != nil {
			sa.fail(out, err)
			return
		}
		if st == retry {
			// RFC 7296 §2.6, §1.2: send IKE_SA_INIT again (message ID
			// 0); the other tasks have not seen the error response.
			// Other exchanges completed and retry with the next ID
			// (INVALID_KE_PAYLOAD in CREATE_CHILD_SA, §1.3).
			tm.req = nil
			if in.hdr.Exchange != wire.IKE_SA_INIT {
				tm.nextMID++
			}
			sa.initiate(now, out)
			return
		}
		if st == needMore {
			kept = append(kept, tm.active[i])
		}
	}
	tm.active = kept
	tm.req = nil
	tm.nextMID++
	if in.hdr.Exchange == wire.IKE_AUTH && sa.state == stateEstablished {
		sa.authDone()
		sa.queueMoreChildren()
	}
	if sa.state == stateDead {
		return
	}
	sa.initiate(now, out)
}

func (sa *SA) processRequest(now time.Time, in *msgIn, out *Output) {
	tm := &sa.tm
	sa.peerUsed(in) // task_ike_rekey.go
	if len(tm.passive) == 0 {
		tm.passive = responderTasks(sa, in)
		if len(tm.passive) == 0 {
			sa.ep.stats.DroppedState++
			return
		}
	}
	resp := msgOut{exch: in.hdr.Exchange, response: true}
	var failure error
	for _, t := range tm.passive {
		if _, err := t.process(sa, in); err != nil {
			failure = err
			break
		}
	}
	if failure == nil {
		kept := tm.passive[:0:0]
		for _, t := range tm.passive {
			st, err := t.build(sa, &resp)
			if err != nil {
				failure = err
				break
			}
			if st != done {
				kept = append(kept, t)
			}
		}
		tm.passive = kept
	}
	if failure != nil {
		// Answer with the error notification alone (RFC 7296 §2.21).
		resp.payloads = resp.payloads[:0]
		var ne *notifyError
		if errors.As(failure, &ne) {
			resp.notify(ne.notify, ne.data)
		} else {
			resp.notify(wire.INVALID_SYNTAX, nil)
		}
		if in.hdr.Exchange == wire.IKE_SA_INIT {
			sa.spiR = 0 // no state kept: the error carries no responder SPI
		}
	}
	bs, err := sa.encode(in.hdr.Exchange, true, in.hdr.MessageID, resp.payloads)
	if err == nil {
		if in.hdr.Exchange == wire.IKE_SA_INIT {
			sa.initResp = bs[0]
		}
		tm.resp = bs
		tm.peerMID++
		reply(out, in, bs)
	}
	if failure != nil {
		sa.fail(out, failure)
		return
	}
	if in.hdr.Exchange == wire.IKE_AUTH && sa.state == stateEstablished {
		sa.authDone()
	}
	if err != nil {
		sa.fail(out, err)
		return
	}
	if sa.state == stateDeleting && len(tm.passive) == 0 && in.hdr.Exchange == wire.INFORMATIONAL {
		reason := "deleted-by-peer"
		if sa.peerRefused {
			reason = "AUTHENTICATION_FAILED"
		}
		sa.destroy(out, reason)
		return
	}
	sa.initiate(now, out)
}

// onTimer retransmits or gives up (RFC 7296 §2.1, §2.4) and expires
// half-open responder SAs.
func (sa *SA) onTimer(now time.Time, out *Output) {
	tm := &sa.tm
	if w := tm.cw; w != nil && w.in != nil && !now.Before(w.at) {
		sa.retryAside(now, out) // certwait.go
		if sa.state == stateDead {
			return
		}
	}
	if tm.inFlight() && !now.Before(tm.retryAt) {
		if tm.sends > tm.schedule.Tries {
			sa.info("ike: giving up after retransmissions", "exchange", tm.exch, "sends", tm.sends)
			if sa.state == stateEstablished && sa.replaced == nil {
				sa.peerDead(out) // RFC 7296 §2.4
				return
			}
			sa.destroy(out, "timeout")
			return
		}
		tm.retryAt = now.Add(tm.schedule.delay(tm.sends))
		tm.sends++
		sa.ep.stats.Retransmitted++
		sa.send(out, tm.req)
	}
	if !sa.initiator && sa.state < stateEstablished && !now.Before(sa.created.Add(sa.ep.cfg.HalfOpenTimeout)) {
		sa.destroy(out, "half-open timeout")
		return
	}
	sa.expireFragments(now)
	if l := sa.lifeDeadline(); !l.IsZero() && !now.Before(l) {
		sa.onLifeTimer(now, out)
	}
	if sa.state == stateEstablished {
		sa.checkLiveness(now)
		sa.initiate(now, out)
	}
}

// isObsolete asks a queued task whether it still has work.
func isObsolete(sa *SA, t task) bool {
	o, ok := t.(interface{ obsolete(*SA) bool })
	return ok && o.obsolete(sa)
}

// nextDeadline is when onTimer must run next; zero when nothing is pending.
func (sa *SA) nextDeadline() time.Time {
	var d time.Time
	if sa.tm.inFlight() {
		d = sa.tm.retryAt
	}
	if !sa.initiator && sa.state < stateEstablished {
		h := sa.created.Add(sa.ep.cfg.HalfOpenTimeout)
		if d.IsZero() || h.Before(d) {
			d = h
		}
	}
	for _, l := range []time.Time{sa.lifeDeadline(), sa.dpdDue(), sa.fragDeadline(), sa.certWaitDeadline()} {
		if !l.IsZero() && (d.IsZero() || l.Before(d)) {
			d = l
		}
	}
	return d
}
