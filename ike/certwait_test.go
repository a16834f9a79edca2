package ike

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// slowFetch stands for the node's fetcher on a first contact: while held,
// an ask under cert.MayDefer is answered "pending" at once (the fetch runs
// in the background), and an ask that waits gets the outcome of a fetch
// that did not complete in time. Once released it serves next, or fails.
type slowFetch struct {
	next    cert.Fetcher
	mu      sync.Mutex
	held    bool
	fail    bool // the fetch ends in failure
	pending int  // "pending" answers given
	waited  int  // asks that waited while held
}

func (f *slowFetch) Fetch(ctx context.Context, req cert.Request) ([]byte, error) {
	f.mu.Lock()
	switch {
	case f.held && cert.Deferrable(ctx):
		f.pending++
		f.mu.Unlock()
		return nil, fmt.Errorf("slow fetcher: %s: %w", req.URL, cert.ErrFetchPending)
	case f.held:
		f.waited++
		f.mu.Unlock()
		return nil, fmt.Errorf("slow fetcher: %s: timed out", req.URL)
	case f.fail:
		f.mu.Unlock()
		return nil, fmt.Errorf("slow fetcher: %s: unreachable", req.URL)
	}
	f.mu.Unlock()
	return f.next.Fetch(ctx, req)
}

func (f *slowFetch) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = false
}

func (f *slowFetch) counts() (pending, waited int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pending, f.waited
}

// saSnapshot renders what a discarded message must leave as it was: the
// state, message IDs, the request in flight and its timer, the response
// cache, the tasks, the connection, the peer's identity and
// authentication, the addresses and the time of the last message.
func saSnapshot(sa *SA) string {
	tm := &sa.tm
	var b strings.Builder
	fmt.Fprintf(&b, "state=%v peerMID=%d nextMID=%d sends=%d retryAt=%v frag=%v\n", sa.state, tm.peerMID, tm.nextMID, tm.sends, tm.retryAt, tm.frag != nil)
	fmt.Fprintf(&b, "req=%x\nresp=%x\n", tm.req, tm.resp)
	fmt.Fprintf(&b, "active=%d passive=%d queued=%d conn=%p peerID=%v auth=%+v\n", len(tm.active), len(tm.passive), len(tm.queued), sa.conn, sa.peerID, sa.auth)
	fmt.Fprintf(&b, "local=%v remote=%v lastRecv=%v schedule=%+v\n", sa.local, sa.remote, sa.lastRecv, tm.schedule)
	if a := sa.authTask(); a != nil {
		fmt.Fprintf(&b, "authTask peerCAs=%x peerHTTP=%v idr=%v\n", a.peerCAs, a.peerHTTP, a.idr)
	}
	return b.String()
}

// debugLogTo makes n's endpoint log at Debug level to a buffer.
func debugLogTo(n *node) *bytes.Buffer {
	var buf bytes.Buffer
	n.ep.log = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &buf
}

// retransmit advances the clock to A's retransmission of its request in
// flight on SA spi and returns what A sends.
func (p *pair) retransmit(spi uint64) []Datagram {
	p.t.Helper()
	sa := p.a.ep.SA(spi)
	if sa == nil || !sa.tm.inFlight() {
		p.t.Fatal("no request in flight to retransmit")
	}
	p.now = sa.tm.retryAt
	p.a.out.Reset()
	p.a.ep.Tick(p.now, &p.a.out)
	if len(p.a.out.Datagrams) == 0 {
		p.t.Fatal("no retransmission")
	}
	return append([]Datagram(nil), p.a.out.Datagrams...)
}

// tickNext advances the clock to n's next deadline and runs it.
func (p *pair) tickNext(n *node) *Output {
	p.t.Helper()
	d, ok := n.ep.NextDeadline()
	if !ok {
		p.t.Fatal("no deadline")
	}
	p.now = d
	return p.tick(n)
}

const discardedLine = "IKE_AUTH set aside until a certificate fetch completes"

// TestCertWaitResponder: B, the responder, checks A's certificate against
// a CRL it has not fetched yet. The fetch runs in the background and A's
// IKE_AUTH is set aside — nothing sent, no event, the SA exactly as
// before. Once the CRL is in, either A's retransmission of the same
// request or B's own try of the copy it kept verifies, and both come up.
//
//	A: HDR(mid 1), SK{IDi, CERT(CRL ca.test), CERT, CERTREQ, AUTH, SA, TS}  -->
//	B: CRL pending: set aside (one debug line)
//	A: (4 s) the same request again, or B (100 ms) tries its copy
//	B:                                  <--  HDR(mid 1), SK{IDr, CERT, CERT, AUTH, SA, TS}
func TestCertWaitResponder(t *testing.T) {
	for _, peerRetransmits := range []bool{true, false} {
		t.Run(map[bool]string{true: "peer retransmits", false: "own copy"}[peerRetransmits], func(t *testing.T) {
			pki := newCertPKIRootCRL(t, "test")
			anchors := []*x509.Certificate{pki.root.Cert}
			tm := gwTemplate("a.example.net")
			tm.CRLURLs = []string{crlURL}
			slow := &slowFetch{next: pki, held: true}
			a := certSide{cred: pki.leaf(t, tm, cert.KeyECDSAP256), anchors: anchors}
			b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors, revoke: pki, fetch: slow}
			ca, cb := certConns(a, b)
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			log := debugLogTo(p.b)
			spi, req := p.initiate("gw")
			resp := p.exchange(p.b, req)
			authReq := p.exchange(p.a, resp)
			bsa := p.responderSA(resp)
			before := saSnapshot(bsa)
			stats := p.b.ep.Stats()

			bout := p.deliver(p.b, authReq)
			if len(bout.Datagrams) != 0 || len(bout.Events) != 0 || len(bout.Ops) != 0 {
				t.Fatalf("IKE_AUTH set aside caused %d datagrams, events %+v, ops %+v", len(bout.Datagrams), bout.Events, bout.Ops)
			}
			if after := saSnapshot(bsa); after != before {
				t.Fatalf("the IKE_AUTH set aside changed the SA:\nbefore %s\nafter  %s", before, after)
			}
			if bsa.tm.peerMID != 1 || bsa.state != stateInitDone {
				t.Fatalf("peerMID %d state %v", bsa.tm.peerMID, bsa.state)
			}
			if st := p.b.ep.Stats(); st.Retransmits != stats.Retransmits || st.DroppedWindow != stats.DroppedWindow || st.CertDeferred != stats.CertDeferred+1 {
				t.Errorf("stats: %+v -> %+v; want only CertDeferred to count the set-aside", stats, st)
			}
			if n := linesWith(log, discardedLine); n != 1 {
				t.Errorf("want one debug line for the set-aside, got %d:\n%s", n, log)
			}
			if pending, waited := slow.counts(); pending != 2 || waited != 0 {
				t.Errorf("fetcher: %d pending answers, %d waits; want 2 (the CRLs of leaf and intermediate at once), 0", pending, waited)
			}
			// B's own try while the CRL is still pending: nothing moves.
			if out := p.tickNext(p.b); len(out.Datagrams) != 0 || len(out.Events) != 0 || saSnapshot(bsa) != before {
				t.Fatal("B's try while pending moved")
			}

			slow.release()
			if peerRetransmits {
				re := p.retransmit(spi)
				if len(re) != 1 || !bytes.Equal(re[0].Data, authReq.Data) {
					t.Fatal("A's retransmission is not its IKE_AUTH request")
				}
				bout = p.deliver(p.b, re[0])
			} else {
				bout = p.tickNext(p.b)
				if p.now.Sub(t0) > time.Second {
					t.Errorf("B tried its copy at %v", p.now.Sub(t0))
				}
			}
			if len(bout.Datagrams) != 1 || len(events(bout, EventIKEUp)) != 1 || len(ops(bout, OpInstall)) == 0 {
				t.Fatalf("responder after the fetch: %d datagrams, events %+v", len(bout.Datagrams), bout.Events)
			}
			if !strings.Contains(bsa.AuthInfo().Remote.Subject, "a.example.net") {
				t.Errorf("responder's view of A: %+v", bsa.AuthInfo().Remote)
			}
			if aout := p.deliver(p.a, bout.Datagrams[0]); len(events(aout, EventIKEUp)) != 1 {
				t.Fatalf("initiator: %+v", aout.Events)
			}
			if bsa.tm.cw != nil {
				t.Error("B still keeps the copy")
			}
		})
	}
}

// TestCertWaitInitiator: A, the initiator, checks B's certificate against
// a CRL it has not fetched yet. B's IKE_AUTH response is set aside, A's SA
// unchanged. Either A's own try of the copy it kept verifies once the CRL
// is in, or — the CRL still pending when A retransmits — B answers A's
// retransmission from its response cache and that copy verifies.
//
//	A: HDR(mid 1), SK{IDi, ..., AUTH, ...}                              -->
//	B (up):                            <--  HDR(mid 1), SK{IDr, CERT(CRL), CERT, AUTH, ...}
//	A: CRL pending: set aside
//	own copy:       A (100 ms ...) tries it again: up
//	retransmission: A (4 s, still pending) the same request again       -->
//	                B: from its response cache    <--  the same response
//	                A: up
func TestCertWaitInitiator(t *testing.T) {
	for _, viaRetransmit := range []bool{false, true} {
		t.Run(map[bool]string{false: "own copy", true: "retransmission"}[viaRetransmit], func(t *testing.T) {
			pki := newCertPKIRootCRL(t, "test")
			anchors := []*x509.Certificate{pki.root.Cert}
			tm := gwTemplate("b.example.net")
			tm.CRLURLs = []string{crlURL}
			slow := &slowFetch{next: pki, held: true}
			a := certSide{cred: pki.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256), anchors: anchors, revoke: pki, fetch: slow}
			b := certSide{cred: pki.leaf(t, tm, cert.KeyECDSAP256), anchors: anchors}
			ca, cb := certConns(a, b)
			p := newPair(t, []*Connection{ca}, []*Connection{cb})
			log := debugLogTo(p.a)
			spi, req := p.initiate("gw")
			authReq := p.exchange(p.a, p.exchange(p.b, req))
			bout := p.deliver(p.b, authReq)
			if len(events(bout, EventIKEUp)) != 1 || len(bout.Datagrams) != 1 {
				t.Fatalf("responder: %+v", bout.Events)
			}
			authResp := bout.Datagrams[0]
			asa := p.a.ep.SA(spi)
			before := saSnapshot(asa)
			aout := p.deliver(p.a, authResp)
			if len(aout.Datagrams) != 0 || len(aout.Events) != 0 || len(aout.Ops) != 0 {
				t.Fatalf("response set aside caused %d datagrams, events %+v", len(aout.Datagrams), aout.Events)
			}
			if after := saSnapshot(asa); after != before {
				t.Fatalf("the response set aside changed the SA:\nbefore %s\nafter  %s", before, after)
			}
			if !asa.tm.inFlight() || asa.tm.nextMID != 1 || asa.state != stateInitDone {
				t.Fatalf("in flight %v nextMID %d state %v", asa.tm.inFlight(), asa.tm.nextMID, asa.state)
			}
			if n := linesWith(log, discardedLine); n != 1 {
				t.Errorf("want one set-aside line, got %d:\n%s", n, log)
			}

			if !viaRetransmit {
				slow.release()
				aout = p.tickNext(p.a)
				if len(aout.Datagrams) != 0 || p.now.Sub(t0) > time.Second {
					t.Errorf("A sent %d datagrams, tried at %v", len(aout.Datagrams), p.now.Sub(t0))
				}
			} else {
				re := p.retransmit(spi) // 4 s, A's copy tried (still pending) on the way
				if len(re) != 1 || !bytes.Equal(re[0].Data, authReq.Data) {
					t.Fatal("A's retransmission is not its IKE_AUTH request")
				}
				retrans := p.b.ep.Stats().Retransmits
				bout = p.deliver(p.b, re[0])
				if len(bout.Datagrams) != 1 || !bytes.Equal(bout.Datagrams[0].Data, authResp.Data) || p.b.ep.Stats().Retransmits != retrans+1 {
					t.Fatal("the responder did not answer the retransmission from its cache")
				}
				if !asa.tm.inFlight() || asa.tm.nextMID != 1 || asa.state != stateInitDone || asa.tm.sends != 2 {
					t.Fatal("A's SA moved while pending")
				}
				slow.release()
				aout = p.deliver(p.a, bout.Datagrams[0])
			}
			if len(events(aout, EventIKEUp)) != 1 || len(ops(aout, OpInstall)) == 0 {
				t.Fatalf("initiator after the fetch: %+v", aout.Events)
			}
			if asa.tm.cw != nil {
				t.Error("A still keeps the copy")
			}
			if _, waited := slow.counts(); waited != 0 {
				t.Errorf("fetcher: %d waits, want 0", waited)
			}
		})
	}
}

// TestCertWaitRevoked: A's certificate is revoked, and B's policy is
// lenient. While the CRL is pending nothing is decided (were "pending"
// taken for "unavailable", the lenient policy would accept a revoked
// certificate at first contact); once it is in, A is refused.
//
//	A: HDR, SK{IDi, CERT(revoked), CERT, CERTREQ, AUTH, ...}  -->
//	B: CRL pending: dropped
//	A: the same request again                                  -->
//	B: revoked (CRL)                  <--  HDR, SK{N(AUTHENTICATION_FAILED)}
func TestCertWaitRevoked(t *testing.T) {
	pki := newCertPKIRootCRL(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	tm := gwTemplate("a.example.net")
	tm.CRLURLs = []string{crlURL}
	acred := pki.leaf(t, tm, cert.KeyECDSAP256)
	pki.revoke(acred.Cert)
	slow := &slowFetch{next: pki, held: true}
	var warn bytes.Buffer
	a := certSide{cred: acred, anchors: anchors}
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors,
		revoke: pki, fetch: slow, lenient: true, revokeLog: slog.New(slog.NewTextHandler(&warn, nil))}
	ca, cb := certConns(a, b)
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	log := logTo(p.b)
	spi, req := p.initiate("gw")
	authReq := p.exchange(p.a, p.exchange(p.b, req))
	if bout := p.deliver(p.b, authReq); len(bout.Datagrams) != 0 || len(bout.Events) != 0 {
		t.Fatalf("pending: %d datagrams, events %+v", len(bout.Datagrams), bout.Events)
	}
	if warn.Len() != 0 {
		t.Errorf("pending taken for unavailable:\n%s", warn.String())
	}
	if pending, _ := slow.counts(); pending != 2 {
		t.Errorf("%d pending answers, want 2 (both CRLs of the chain asked for at once)", pending)
	}
	slow.release()
	bout := p.deliver(p.b, p.retransmit(spi)[0])
	if len(bout.Datagrams) != 1 || !hasNotify(innerOf(t, p.a.ep.SA(spi), bout.Datagrams[0]), wire.AUTHENTICATION_FAILED) {
		t.Fatal("want N(AUTHENTICATION_FAILED) for the revoked certificate")
	}
	if len(events(bout, EventIKEUp)) != 0 || p.b.ep.Len() != 0 {
		t.Fatal("responder accepted or kept the revoked peer")
	}
	if n := linesWith(log, "cert: revoked (CRL)"); n != 1 {
		t.Errorf("responder log:\n%s", log)
	}
}

// TestCertWaitBound: the CRLs never come. B sets A's IKE_AUTH aside and
// tries it again while the wait is younger than the verifier's timeout and
// margin (7 s); its first try after that — whether its own or on A's
// retransmission — verifies without deferring, the fetcher answers with
// its failure, and the revocation policy decides: strict refuses, lenient
// accepts.
//
//	A: IKE_AUTH (0 s)   --> B: pending, set aside; B's tries, A's retransmission at 4 s: pending
//	B (at 7 s or more, its own try or A's at 11.2 s): fetch failed
//	                            strict  <-- N(AUTHENTICATION_FAILED)
//	                            lenient <-- IDr, AUTH, ... (up)
func TestCertWaitBound(t *testing.T) {
	for _, lenient := range []bool{false, true} {
		for _, peerRetransmits := range []bool{false, true} {
			name := map[bool]string{false: "strict", true: "lenient"}[lenient] + "/" + map[bool]string{false: "own tries", true: "peer retransmits"}[peerRetransmits]
			t.Run(name, func(t *testing.T) {
				pki := newCertPKIRootCRL(t, "test")
				anchors := []*x509.Certificate{pki.root.Cert}
				tm := gwTemplate("a.example.net")
				tm.CRLURLs = []string{crlURL}
				slow := &slowFetch{next: pki, held: true}
				a := certSide{cred: pki.leaf(t, tm, cert.KeyECDSAP256), anchors: anchors}
				b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors,
					revoke: pki, fetch: slow, lenient: lenient}
				ca, cb := certConns(a, b)
				p := newPair(t, []*Connection{ca}, []*Connection{cb})
				log := debugLogTo(p.b)
				spi, req := p.initiate("gw")
				resp := p.exchange(p.b, req)
				authReq := p.exchange(p.a, resp)
				bsa := p.responderSA(resp)
				if out := p.deliver(p.b, authReq); len(out.Datagrams) != 0 {
					t.Fatal("first IKE_AUTH answered")
				}
				limit := DefaultCertTimeout + certWaitMargin
				var bout *Output
				if peerRetransmits {
					// B's own copy is lost in this run: only A's
					// retransmissions bring the message back.
					bsa.tm.cw.in = nil
					p.b.ep.timers.set(bsa, bsa.nextDeadline())
					re := p.retransmit(spi) // 4 s
					if out := p.deliver(p.b, re[0]); len(out.Datagrams) != 0 || len(out.Events) != 0 {
						t.Fatalf("retransmission at %v answered", p.now.Sub(t0))
					}
					bsa.tm.cw.in = nil
					p.b.ep.timers.set(bsa, bsa.nextDeadline())
					re = p.retransmit(spi) // 11.2 s
					bout = p.deliver(p.b, re[0])
				} else {
					tries := 0
					for {
						bout = p.tickNext(p.b)
						if len(bout.Datagrams) != 0 || p.now.Sub(t0) > time.Minute {
							break
						}
						tries++
						if bsa.tm.peerMID != 1 || bsa.state != stateInitDone {
							t.Fatal("the SA moved while pending")
						}
					}
					if d := p.now.Sub(t0); d < limit || d > limit+certRetryMax {
						t.Errorf("decided at %v, want within %v of %v", d, certRetryMax, limit)
					}
					if tries < 5 {
						t.Errorf("%d tries before the bound", tries)
					}
				}
				if d := p.now.Sub(t0); d < limit {
					t.Fatalf("decided at %v, within the bound", d)
				}
				// Two CRLs pending at every try; then the leaf's failure,
				// which strict refuses at once, lenient accepts and goes on
				// to the intermediate's.
				wantWaits := map[bool]int{false: 1, true: 2}[lenient]
				if pending, waited := slow.counts(); pending < 4 || pending%2 != 0 || waited != wantWaits {
					t.Errorf("fetcher: %d pending answers, %d waits; want an even number >= 4, %d", pending, waited, wantWaits)
				}
				if n := linesWith(log, "waited on certificate fetches long enough"); n != 1 {
					t.Errorf("want one line for the end of the wait, got %d:\n%s", n, log)
				}
				if len(bout.Datagrams) != 1 {
					t.Fatalf("responder sent %d datagrams", len(bout.Datagrams))
				}
				if !lenient {
					if !hasNotify(innerOf(t, p.a.ep.SA(spi), bout.Datagrams[0]), wire.AUTHENTICATION_FAILED) || p.b.ep.Len() != 0 {
						t.Fatal("strict: want N(AUTHENTICATION_FAILED) and no SA")
					}
					if n := linesWith(log, "cert: revocation status unavailable"); n != 1 {
						t.Errorf("strict: responder log:\n%s", log)
					}
					return
				}
				if len(events(bout, EventIKEUp)) != 1 {
					t.Fatalf("lenient: responder %+v", bout.Events)
				}
				if aout := p.deliver(p.a, bout.Datagrams[0]); len(events(aout, EventIKEUp)) != 1 {
					t.Fatalf("lenient: initiator %+v", aout.Events)
				}
			})
		}
	}
}

// TestCertWaitFragmented: A's IKE_AUTH comes in RFC 7383 fragments; the
// message they make up waits on the CRL and is dropped, leaving no
// fragments behind; the retransmitted fragments are put together again
// and verified.
func TestCertWaitFragmented(t *testing.T) {
	pki := newCertPKIRootCRL(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	tm := gwTemplate("a.example.net")
	tm.CRLURLs = []string{crlURL}
	slow := &slowFetch{next: pki, held: true}
	a := certSide{cred: pki.leaf(t, tm, cert.KeyRSA2048), anchors: anchors}
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyRSA2048), anchors: anchors, revoke: pki, fetch: slow}
	ca, cb := certConns(a, b)
	ca.NoFragmentation, cb.NoFragmentation = false, false
	ca.FragmentSize, cb.FragmentSize = 576, 576
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	frags := append([]Datagram(nil), p.deliver(p.a, resp).Datagrams...)
	if len(frags) < 2 {
		t.Fatalf("IKE_AUTH in %d datagram(s), want fragments", len(frags))
	}
	bsa := p.responderSA(resp)
	before := saSnapshot(bsa)
	for _, f := range frags {
		if out := p.deliver(p.b, f); len(out.Datagrams) != 0 || len(out.Events) != 0 {
			t.Fatal("a fragment was answered while the CRL is pending")
		}
	}
	if after := saSnapshot(bsa); after != before {
		t.Fatalf("the discarded message changed the SA:\nbefore %s\nafter  %s", before, after)
	}
	slow.release()
	var bout *Output
	for _, f := range p.retransmit(spi) {
		bout = p.deliver(p.b, f)
	}
	if len(events(bout, EventIKEUp)) != 1 || len(bout.Datagrams) < 2 {
		t.Fatalf("responder: %+v, %d datagrams", bout.Events, len(bout.Datagrams))
	}
}

// TestCertWaitHashURL: A sends its certificate as hash-and-URL; B has not
// fetched it yet, drops the IKE_AUTH, and verifies the retransmission.
func TestCertWaitHashURL(t *testing.T) {
	pki := newCertPKIRootCRL(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	cred := pki.leaf(t, gwTemplate("a.example.net"), cert.KeyECDSAP256)
	cred.HashURL = "http://certs.test/a.der"
	pki.objects[cred.HashURL] = cred.Cert.Raw
	slow := &slowFetch{next: pki, held: true}
	a := certSide{cred: cred, anchors: anchors}
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors, hashURL: pki, fetch: slow}
	ca, cb := certConns(a, b)
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, req := p.initiate("gw")
	authReq := p.exchange(p.a, p.exchange(p.b, req))
	if cs := certs(innerOf(t, p.b.ep.SA(p.a.ep.SA(spi).spiR), authReq)); len(cs) == 0 || cs[0].Encoding != wire.CertHashURLX509 {
		t.Fatal("A did not send hash-and-URL")
	}
	if out := p.deliver(p.b, authReq); len(out.Datagrams) != 0 || len(out.Events) != 0 {
		t.Fatal("answered while the certificate is pending")
	}
	slow.release()
	bout := p.deliver(p.b, p.retransmit(spi)[0])
	if len(events(bout, EventIKEUp)) != 1 {
		t.Fatalf("responder: %+v", bout.Events)
	}
	if pending, _ := slow.counts(); pending != 1 {
		t.Errorf("%d pending answers, want 1", pending)
	}
}

// TestCertVerifierBlockingFetcher: with a Fetcher that cannot fetch in the
// background (it ignores cert.MayDefer) nothing is dropped: the first
// IKE_AUTH is verified, waiting on the fetch as before.
func TestCertVerifierBlockingFetcher(t *testing.T) {
	pki := newCertPKIRootCRL(t, "test")
	anchors := []*x509.Certificate{pki.root.Cert}
	tm := gwTemplate("a.example.net")
	tm.CRLURLs = []string{crlURL}
	a := certSide{cred: pki.leaf(t, tm, cert.KeyECDSAP256), anchors: anchors}
	b := certSide{cred: pki.leaf(t, gwTemplate("b.example.net"), cert.KeyECDSAP256), anchors: anchors, revoke: pki}
	ca, cb := certConns(a, b)
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, aout, bout := p.establish("gw")
	if len(events(bout, EventIKEUp)) != 1 || len(events(aout, EventIKEUp)) != 1 {
		t.Fatalf("A %+v, B %+v", aout.Events, bout.Events)
	}
	pki.mu.Lock()
	n := pki.fetches
	pki.mu.Unlock()
	if n != 2 {
		t.Errorf("CRLs fetched %d times, want 2 (leaf's and intermediate's)", n)
	}
}
