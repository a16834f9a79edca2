package ike

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// Certificate checks that wait on the network: set aside and try again.
//
// Verifying the peer's certificate may need data fetched over HTTP — a
// CRL, an OCSP response, a hash-and-URL certificate — and one goroutine
// runs every SA of an endpoint (in the daemon, every SA of the node), so a
// fetch waited for inside the core stalls them all. A deferringVerifier
// (CertVerifier) can instead answer "pending" (cert.ErrFetchPending): its
// Fetcher (the node's) has started the fetch in the background and will
// answer the same request at once when it is done, with the data or with
// the failure. The core then treats the peer's IKE_AUTH message as if it
// had not arrived yet: the SA stays exactly as it was, nothing is sent,
// and the message is tried again later — from a copy the SA keeps
// (tried after 100 ms, then after twice as long each time, at most 1 s
// apart) and whenever the ordinary retransmission of RFC 7296 §2.1 brings
// it again (as responder, the initiator's; as initiator, our own
// retransmission of the request makes the responder send its cached
// response again). By then the fetch has usually completed and the
// message verifies from the cache, with the same revocation policy as a
// fetch waited for: for a fetch started at the first try nothing about the
// decision changes, only where the waiting happens (see Bounded for a fetch
// that starts late). The copy is kept only while the SA still expects that
// message (same state, same message ID, our request still in flight).
//
// Stateless set-aside. The decision must come before anything of the SA
// changes, so the task manager verifies the message in a pass of its own
// (verifyAhead, from SA.take) right after it is decrypted and its payloads
// checked — after the message-ID and state checks and fragment reassembly,
// which leave nothing behind for a message that is complete (the
// reassembler is emptied once a message is whole), and before the SA
// records the message's time or addresses, before any task (IKE_SA_INIT's,
// NAT detection, features, auth, INITIAL_CONTACT, the Child SA) sees it,
// and before a response is built or cached or a message ID moves. The pass
// only reads the SA: auth.peerOf and auth.verifyContext compute the
// identity, the connection and the AuthContext that the auth task would
// use, without storing them. A message that goes on carries its verdict
// to the auth task (taskManager.takeVerified), so it is verified once.
// Snapshotting and restoring the SA was the alternative; it would have to
// know every field that every task may touch.
//
// Bounded. An SA does not wait forever: once its first set-aside IKE_AUTH
// is older than the verifier's deferLimit (its fetch timeout and a
// margin), it verifies without deferring. The background fetch, bounded by
// the same timeout, has ended by then, so the Fetcher answers at once with
// what it has — the data, or the failure it keeps for a while, which the
// revocation policy (cert.Lenient, Strict, IfURI) then judges exactly as a
// fetch that failed while we waited. A fetch that could not start before
// (a CRL asked for once a hash-and-URL certificate came in, or only after
// an OCSP responder failed) and is still running at this last try is not
// waited for with the node's Fetcher, which never blocks the loop: it
// counts as unavailable, so it has had only the margin rather than its
// whole timeout. Another Fetcher may wait, bounded by its timeout.
//
// A Verifier that does not implement deferringVerifier, or a CertVerifier
// whose Fetcher cannot fetch in the background (one that ignores
// cert.MayDefer), verifies in the same pass but waits, as before.

// certWaitMargin is added to the verifier's fetch timeout to bound how long
// an SA keeps setting its peer's IKE_AUTH aside.
const certWaitMargin = 2 * time.Second

// deferringVerifier is a Verifier that can say "not yet" instead of
// waiting on the network.
type deferringVerifier interface {
	// verify checks the peer's payloads like InfoVerifier.VerifyInfo.
	// With mayDefer it may return an error wrapping cert.ErrFetchPending
	// instead of waiting for a fetch.
	verify(ctx *AuthContext, payloads []wire.Payload, mayDefer bool) (AuthSide, error)
	// deferLimit is how long after the first message set aside an SA
	// stops deferring.
	deferLimit() time.Duration
}

// Tries of a message set aside: first after certRetryFirst, then twice
// as long each time, at most certRetryMax apart.
const (
	certRetryFirst = 100 * time.Millisecond
	certRetryMax   = time.Second
)

// certWait is the state of an SA whose peer's IKE_AUTH waits on a
// certificate fetch, and the verdict verifyAhead hands to the auth task.
// The SA holds one only around its IKE_AUTH (taskManager.cw).
type certWait struct {
	in    *msgIn        // the message set aside; nil when none is
	at    time.Time     // when to try it again
	delay time.Duration // the wait before that try
	since time.Time     // when the first message was set aside; zero if none was
	done  bool          // the bound was reached (logged once)
	v     verified      // verifyAhead's verdict on the message being processed (v.in nil: none)
}

// verified is the verdict of verifyAhead on one message, for the auth task.
type verified struct {
	in   *msgIn
	conn *Connection
	side AuthSide
	err  error
}

// verifyAhead verifies the peer's IKE_AUTH message in before any task
// sees it, and reports whether it was set aside because the verification
// waits on a certificate fetch. Otherwise the verdict is kept for the auth
// task. Messages without an identity and AUTH to verify, for a connection
// whose Verifier cannot defer, go on untouched: the auth task handles them
// as always.
func (sa *SA) verifyAhead(now time.Time, in *msgIn) bool {
	tm := &sa.tm
	if tm.cw != nil {
		tm.cw.v = verified{}
	}
	if in.hdr.Exchange != wire.IKE_AUTH || sa.state != stateInitDone || in.hdr.IsResponse() != sa.initiator {
		return false
	}
	if !sa.mayDeferAuth() {
		return false
	}
	a := sa.authTask()
	if a == nil {
		return false
	}
	peer, conn, err := a.peerOf(sa, in)
	if err != nil {
		return false // the auth task refuses it
	}
	dv, ok := conn.RemoteAuth.(deferringVerifier)
	if !ok {
		return false
	}
	cw := tm.cw
	if cw == nil {
		cw = &certWait{}
		tm.cw = cw
	}
	waited := time.Duration(0)
	if !cw.since.IsZero() {
		waited = now.Sub(cw.since)
	}
	mayDefer := cw.since.IsZero() || waited < dv.deferLimit()
	if !mayDefer && !cw.done {
		cw.done = true
		sa.info("ike: IKE_AUTH waited on certificate fetches long enough; verifying with what has come", "waited", waited)
	}
	side, err := dv.verify(a.verifyContext(sa, in, conn, peer), in.payloads, mayDefer)
	if mayDefer && errors.Is(err, cert.ErrFetchPending) {
		if cw.since.IsZero() {
			cw.since = now
		}
		d := certRetryFirst
		if cw.in != nil {
			d = min(2*cw.delay, certRetryMax)
		}
		cw.in, cw.at, cw.delay = in, now.Add(d), d
		sa.ep.stats.CertDeferred++
		sa.debug("ike: IKE_AUTH set aside until a certificate fetch completes",
			"response", in.hdr.IsResponse(), "mid", in.hdr.MessageID, "waited", waited, "retry_in", d, "err", err)
		return true
	}
	cw.v = verified{in: in, conn: conn, side: side, err: err}
	return false
}

// mayDeferAuth: a connection the peer's IKE_AUTH may be verified for has
// a deferringVerifier (checked first, so that other handshakes pay
// nothing for this pass).
func (sa *SA) mayDeferAuth() bool {
	if sa.initiator {
		_, ok := sa.conn.RemoteAuth.(deferringVerifier)
		return ok
	}
	for _, c := range sa.ep.cfg.Connections {
		if _, ok := c.RemoteAuth.(deferringVerifier); ok {
			return true
		}
	}
	return false
}

// takeVerified returns verifyAhead's verdict on m for conn, once; nil
// when there is none.
func (tm *taskManager) takeVerified(m *msgIn, conn *Connection) *verified {
	if tm.cw == nil || tm.cw.v.in != m || tm.cw.v.conn != conn {
		return nil
	}
	v := tm.cw.v
	tm.cw.v = verified{}
	return &v
}

// retryAside tries the message set aside again if the SA still expects
// it; it is dropped otherwise.
func (sa *SA) retryAside(now time.Time, out *Output) {
	tm := &sa.tm
	in := tm.cw.in
	expected := sa.state == stateInitDone && in.hdr.Exchange == wire.IKE_AUTH
	if in.hdr.IsResponse() {
		expected = expected && sa.initiator && tm.inFlight() && tm.exch == wire.IKE_AUTH && in.hdr.MessageID == tm.nextMID
	} else {
		expected = expected && !sa.initiator && in.hdr.MessageID == tm.peerMID
	}
	if !expected {
		tm.cw = nil
		return
	}
	sa.take(now, in, nil, out)
}

// certWaitDeadline is when the message set aside is tried again; zero if
// none is.
func (sa *SA) certWaitDeadline() time.Time {
	if w := sa.tm.cw; w != nil && w.in != nil {
		return w.at
	}
	return time.Time{}
}

// authTask is the SA's auth task for the peer's IKE_AUTH message: a
// responder's among its passive tasks, an initiator's among those of the
// request in flight.
func (sa *SA) authTask() *auth {
	list := sa.tm.active
	if !sa.initiator {
		list = sa.tm.passive
	}
	for _, t := range list {
		if a, ok := t.(*auth); ok {
			return a
		}
	}
	return nil
}

// debug logs at Debug level with the SA's attributes.
func (sa *SA) debug(msg string, args ...any) {
	if l := sa.log(); l.Enabled(context.Background(), slog.LevelDebug) {
		l.Debug(msg, append(sa.logAttrs(), args...)...)
	}
}
