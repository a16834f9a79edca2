package node

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/ike"
)

// Event is an up/down event of an IKE or Child SA, as the control API's
// event stream carries it.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"` // ike-up, ike-down, child-up, child-down, child-failed
	Conn      string    `json:"conn,omitempty"`
	Child     string    `json:"child,omitempty"`
	SPIi      string    `json:"spi_i,omitempty"`
	SPIr      string    `json:"spi_r,omitempty"`
	InSPI     string    `json:"in_spi,omitempty"`
	OutSPI    string    `json:"out_spi,omitempty"`
	Local     string    `json:"local,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	PeerID    string    `json:"peer_id,omitempty"`
	Initiator bool      `json:"initiator"`
	Reason    string    `json:"reason,omitempty"`
	// How each side authenticated and the peer's certificate (ike-up).
	LocalAuth         string `json:"local_auth,omitempty"`
	RemoteAuth        string `json:"remote_auth,omitempty"`
	RemoteCertSubject string `json:"remote_cert_subject,omitempty"`
	RemoteCertIssuer  string `json:"remote_cert_issuer,omitempty"`

	spiI uint64
}

// onEvent updates the node's books and publishes an event of the core.
func (n *Node) onEvent(now time.Time, ev ike.Event) {
	key := spiPair{ev.SPIi, ev.SPIr}
	switch ev.Kind {
	case ike.EventIKEUp:
		n.nextIndex++
		n.sas[key] = &saInfo{index: n.nextIndex, upAt: now}
		n.stats.add(&n.stats.ikeUp, 1)
	case ike.EventIKEDown:
		if n.sas[key] == nil {
			n.stats.fail("ike", ev.Reason)
		}
		delete(n.sas, key)
	case ike.EventIKERekeyed:
		n.ikeRekeyed(ev)
		n.stats.add(&n.stats.ikeRekeys, 1)
	case ike.EventChildRekeyed:
		n.stats.add(&n.stats.childRekeys, 1)
	case ike.EventPeerDead:
		n.stats.add(&n.stats.peerDead, 1) // its trap: flush, before the ops
	case ike.EventChildUp:
		n.stats.add(&n.stats.childUp, 1)
		n.releaseDPDTrap(ev.Conn, ev.Child, "child up")
	case ike.EventChildFailed:
		n.stats.fail("child", ev.Reason)
	}
	e := Event{Time: now, Kind: ev.Kind.String(), Conn: ev.Conn, Child: ev.Child, Initiator: ev.Initiator,
		Reason: ev.Reason, spiI: ev.SPIi}
	if ev.SPIi != 0 {
		e.SPIi = hex64(ev.SPIi)
	}
	if ev.SPIr != 0 {
		e.SPIr = hex64(ev.SPIr)
	}
	if ev.InSPI != 0 {
		e.InSPI, e.OutSPI = hex32(ev.InSPI), hex32(ev.OutSPI)
	}
	if ev.Local.IsValid() {
		e.Local, e.Remote = ev.Local.String(), ev.Remote.String()
	}
	if !ev.PeerID.IsAny() {
		e.PeerID = ev.PeerID.String()
	}
	if ev.Kind == ike.EventIKEUp {
		n.addAuth(&e, ev)
	}
	attrs := []any{"conn", e.Conn, "spi_i", e.SPIi, "spi_r", e.SPIr}
	if e.LocalAuth != "" {
		attrs = append(attrs, "local_auth", e.LocalAuth, "remote_auth", e.RemoteAuth)
	}
	if e.RemoteCertSubject != "" {
		attrs = append(attrs, "peer_cert_subject", e.RemoteCertSubject, "peer_cert_issuer", e.RemoteCertIssuer)
	}
	if e.Child != "" {
		attrs = append(attrs, "child", e.Child, "in_spi", e.InSPI, "out_spi", e.OutSPI)
	}
	if e.Reason != "" {
		attrs = append(attrs, "reason", e.Reason)
	}
	n.ikeLog.Info("node: "+e.Kind, attrs...)
	n.hub.publish(e)
}

// hub fans events out to subscribers without ever blocking the loop: a
// subscriber that falls 256 events behind loses events (counted).
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	ch      chan Event
	dropped atomic.Uint64
}

// Subscribe returns a channel of events and a function to stop; the
// channel is closed by cancel or when the node closes.
func (n *Node) Subscribe() (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, 256)}
	n.hub.mu.Lock()
	if n.hub.subs == nil {
		n.hub.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	n.hub.subs[s] = struct{}{}
	n.hub.mu.Unlock()
	return s.ch, func() {
		n.hub.mu.Lock()
		defer n.hub.mu.Unlock()
		if _, ok := n.hub.subs[s]; ok {
			delete(n.hub.subs, s)
			close(s.ch)
		}
	}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		close(s.ch)
	}
	h.subs = nil
}

// Stats are the node's counters for metrics.
type Stats struct {
	IKEUp, ChildUp uint64
	// IKERekeys and ChildRekeys count completed rekeys (RFC 7296 §1.3.2,
	// §1.3.3); PeerDead counts peers declared dead by liveness checks (§2.4).
	IKERekeys, ChildRekeys, PeerDead uint64
	// Failures counts setups that failed, by "ike:REASON" or
	// "child:REASON" (AUTHENTICATION_FAILED, NO_PROPOSAL_CHOSEN, timeout...).
	Failures map[string]uint64
	// Retired* are the counters of deleted Child SAs (live ones are in
	// Sessions).
	RetiredIn, RetiredOut esp.Counters
	QueueDrops            uint64
	// UnknownSPI counts the data plane's reports of ESP for SPIs it has no
	// SA for (rate-limited; each may send N(INVALID_SPI) to the sender,
	// RFC 7296 §2.4); UnknownSPIDrops counts every such packet dropped
	// (userspace data plane only).
	UnknownSPI, UnknownSPIDrops uint64
	// Endpoint sums the core's counters over the generations (cookies
	// sent, ICV failures, retransmissions...).
	Endpoint ike.Stats
	// CertFetches counts the certificate fetches (certfetch.go).
	CertFetches CertFetchStats
}

type stats struct {
	mu                               sync.Mutex
	ikeUp, childUp                   uint64
	ikeRekeys, childRekeys, peerDead uint64
	queueDrops, unknownSPI           uint64
	failures                         map[string]uint64
	retiredIn, retiredOut            esp.Counters
}

func (s *stats) add(p *uint64, v uint64) {
	s.mu.Lock()
	*p += v
	s.mu.Unlock()
}

func (s *stats) fail(scope, reason string) {
	if reason == "" {
		reason = "unknown"
	}
	s.mu.Lock()
	s.failures[scope+":"+reason]++
	s.mu.Unlock()
}

func (s *stats) retire(c esp.Counters, in bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &s.retiredOut
	if in {
		t = &s.retiredIn
	}
	t.Packets += c.Packets
	t.Bytes += c.Bytes
	t.ReplayDrops += c.ReplayDrops
	t.AuthFailures += c.AuthFailures
	t.InvalidDrops += c.InvalidDrops
	t.PolicyDrops += c.PolicyDrops
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	var st Stats
	_ = n.do(func(time.Time) {
		st.Endpoint = n.retiredEP
		for _, g := range n.gens {
			st.Endpoint.Add(g.ep.Stats())
		}
	})
	n.stats.mu.Lock()
	defer n.stats.mu.Unlock()
	st.IKEUp, st.ChildUp, st.QueueDrops = n.stats.ikeUp, n.stats.childUp, n.stats.queueDrops
	st.UnknownSPI = n.stats.unknownSPI
	if n.us != nil {
		st.UnknownSPIDrops = n.us.UnknownSPIDrops()
	}
	st.IKERekeys, st.ChildRekeys, st.PeerDead = n.stats.ikeRekeys, n.stats.childRekeys, n.stats.peerDead
	st.Failures = make(map[string]uint64, len(n.stats.failures))
	for k, v := range n.stats.failures {
		st.Failures[k] = v
	}
	st.RetiredIn, st.RetiredOut = n.stats.retiredIn, n.stats.retiredOut
	st.CertFetches = n.fetch.stats()
	return st
}

// addAuth fills an ike-up event with how both sides authenticated, read
// from the SA (by the SPI this side chose, RFC 7296 §3.1).
func (n *Node) addAuth(e *Event, ev ike.Event) {
	spi := ev.SPIr
	if ev.Initiator {
		spi = ev.SPIi
	}
	for _, g := range n.gens {
		if sa := g.ep.SA(spi); sa != nil {
			ai := sa.AuthInfo()
			e.LocalAuth, e.RemoteAuth = authName(ai.Local), authName(ai.Remote)
			e.RemoteCertSubject, e.RemoteCertIssuer = ai.Remote.Subject, ai.Remote.Issuer
			return
		}
	}
}
