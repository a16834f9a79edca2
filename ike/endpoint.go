package ike

import (
	"container/heap"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// EndpointConfig configures an Endpoint. Start from DefaultEndpointConfig.
type EndpointConfig struct {
	Connections []*Connection
	// Rand is the source of SPIs, nonces and cookie secrets; nil means
	// crypto/rand. (KE secrets come from the suite package, which draws
	// from crypto/rand.)
	Rand io.Reader
	// SPIs allocates inbound ESP SPIs; nil draws random ones from Rand.
	SPIs   SPIAllocator
	KeyLog KeyLogger
	Logger *slog.Logger

	// CookieThreshold is the number of half-open SAs from which an
	// IKE_SA_INIT must carry a valid COOKIE (RFC 7296 §2.6): 0 means
	// always, negative means never. DefaultEndpointConfig sets 30.
	CookieThreshold int
	// CookieRotation is how often the cookie secret changes.
	CookieRotation time.Duration
	// HalfOpenPerIP is the number of half-open SAs from one source address
	// from which that address must present a cookie; 0 = no per-IP limit.
	HalfOpenPerIP int
	// MaxHalfOpen bounds half-open SAs; new IKE_SA_INITs beyond it are
	// dropped. 0 = no bound.
	MaxHalfOpen int
	// HalfOpenTimeout is how long a responder keeps an SA that has not
	// authenticated.
	HalfOpenTimeout time.Duration
	// NATTPort is our NAT-T port, where an initiator moves when a NAT is
	// detected; 0 = 4500.
	NATTPort uint16
	// SPIMask and SPIValue constrain the IKE SPIs this endpoint chooses:
	// spi&SPIMask == SPIValue. A sharded transport (ike/udp) uses them to
	// route a datagram to the endpoint that owns its SPI.
	SPIMask, SPIValue uint64
	// InvalidSPIRate bounds INVALID_IKE_SPI answers per second
	// (RFC 7296 §2.21.4); negative disables them.
	InvalidSPIRate int
}

// DefaultEndpointConfig returns the defaults: cookies from 30 half-open SAs,
// cookie secret rotating every 2 minutes, 5 half-open SAs per address before
// cookies, at most 10,000 half-open SAs, 30 s half-open timeout, 10
// INVALID_IKE_SPI answers per second.
func DefaultEndpointConfig() EndpointConfig {
	return EndpointConfig{
		CookieThreshold: 30, CookieRotation: 2 * time.Minute, HalfOpenPerIP: 5, MaxHalfOpen: 10000,
		HalfOpenTimeout: 30 * time.Second, InvalidSPIRate: 10,
	}
}

// Stats counts what the endpoint dropped and answered.
type Stats struct {
	Received          uint64
	DroppedMalformed  uint64 // unparsable, or SK where none belongs
	DroppedUnknownSPI uint64
	DroppedFlags      uint64 // I/R flags wrong for the SA
	DroppedWindow     uint64 // message ID outside the window: replay, duplicate response
	DroppedState      uint64 // exchange not allowed in the SA's state
	DroppedICV        uint64 // SK payload failed its integrity check
	DroppedHalfOpen   uint64 // MaxHalfOpen reached
	Retransmits       uint64 // retransmitted requests answered from the cache
	Retransmitted     uint64 // our requests sent again
	Reassembled       uint64 // messages put together from SKF fragments (RFC 7383)
	CookiesSent       uint64
	CookieRetries     uint64 // we retried IKE_SA_INIT with a cookie
	KERetries         uint64 // we retried IKE_SA_INIT with another KE group
	InvalidSPISent    uint64
	InvalidSPILimited uint64
	CertDeferred      uint64 // IKE_AUTH set aside while a certificate fetch runs (certwait.go)
}

// Add sums o into s (for transports that run several endpoints).
func (s *Stats) Add(o Stats) {
	s.Received += o.Received
	s.DroppedMalformed += o.DroppedMalformed
	s.DroppedUnknownSPI += o.DroppedUnknownSPI
	s.DroppedFlags += o.DroppedFlags
	s.DroppedWindow += o.DroppedWindow
	s.DroppedState += o.DroppedState
	s.DroppedICV += o.DroppedICV
	s.DroppedHalfOpen += o.DroppedHalfOpen
	s.Retransmits += o.Retransmits
	s.Retransmitted += o.Retransmitted
	s.Reassembled += o.Reassembled
	s.CookiesSent += o.CookiesSent
	s.CookieRetries += o.CookieRetries
	s.KERetries += o.KERetries
	s.InvalidSPISent += o.InvalidSPISent
	s.InvalidSPILimited += o.InvalidSPILimited
	s.CertDeferred += o.CertDeferred
}

type initKey struct {
	src  netip.AddrPort
	spiI uint64
}

// Endpoint is the sans-I/O dispatcher: it owns the IKE SAs by SPI, the
// cookie secret, half-open accounting, connection selection for responders,
// INVALID_IKE_SPI rate limiting and the SA timers. Not safe for concurrent
// use: one goroutine owns an Endpoint (ike/udp shards by SPI).
type Endpoint struct {
	cfg      EndpointConfig
	rand     io.Reader
	log      *slog.Logger
	sas      map[uint64]*SA // by our SPI
	inits    map[initKey]*SA
	halfOpen int
	perIP    map[netip.Addr]int
	cookies  cookieJar
	timers   saHeap
	stats    Stats
	// INVALID_IKE_SPI token bucket
	tokens     float64
	tokensTime time.Time
}

// NewEndpoint validates cfg and returns an endpoint whose clock starts at now.
func NewEndpoint(cfg EndpointConfig, now time.Time) (*Endpoint, error) {
	for _, c := range cfg.Connections {
		if err := c.validate(); err != nil {
			return nil, err
		}
	}
	if cfg.CookieRotation <= 0 {
		cfg.CookieRotation = 2 * time.Minute
	}
	if cfg.HalfOpenTimeout <= 0 {
		cfg.HalfOpenTimeout = 30 * time.Second
	}
	ep := &Endpoint{cfg: cfg, rand: cfg.Rand, log: cfg.Logger, sas: map[uint64]*SA{}, inits: map[initKey]*SA{},
		perIP: map[netip.Addr]int{}, tokensTime: now, tokens: float64(max(cfg.InvalidSPIRate, 0))}
	if ep.rand == nil {
		ep.rand = rand.Reader
	}
	if ep.log == nil {
		ep.log = slog.New(slog.DiscardHandler)
	}
	if err := ep.cookies.init(now, ep.rand, cfg.CookieRotation); err != nil {
		return nil, fmt.Errorf("ike: cookie secret: %w", err)
	}
	return ep, nil
}

// Stats returns the counters.
func (ep *Endpoint) Stats() Stats { return ep.stats }

// Len is the number of IKE SAs, half-open included.
func (ep *Endpoint) Len() int { return len(ep.sas) }

// HalfOpen is the number of responder SAs not yet authenticated.
func (ep *Endpoint) HalfOpen() int { return ep.halfOpen }

// SA returns the IKE SA whose local SPI is spi, or nil.
func (ep *Endpoint) SA(spi uint64) *SA { return ep.sas[spi] }

// Range calls f for every IKE SA until f returns false.
func (ep *Endpoint) Range(f func(*SA) bool) {
	for _, sa := range ep.sas {
		if !f(sa) {
			return
		}
	}
}

func (ep *Endpoint) nattPort(netip.AddrPort) uint16 {
	if ep.cfg.NATTPort != 0 {
		return ep.cfg.NATTPort
	}
	return 4500
}

func (ep *Endpoint) conn(name string) *Connection {
	for _, c := range ep.cfg.Connections {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (ep *Endpoint) newSPI() (uint64, error) {
	var b [8]byte
	for {
		if _, err := io.ReadFull(ep.rand, b[:]); err != nil {
			return 0, fmt.Errorf("ike: reading SPI: %w", err)
		}
		spi := binary.BigEndian.Uint64(b[:])&^ep.cfg.SPIMask | ep.cfg.SPIValue&ep.cfg.SPIMask
		if spi != 0 && ep.sas[spi] == nil {
			return spi, nil
		}
	}
}

func (ep *Endpoint) allocSPI() (uint32, error) {
	if ep.cfg.SPIs != nil {
		return ep.cfg.SPIs.AllocSPI()
	}
	var b [4]byte
	for {
		if _, err := io.ReadFull(ep.rand, b[:]); err != nil {
			return 0, fmt.Errorf("ike: reading SPI: %w", err)
		}
		// RFC 4303 §2.1: 1-255 are reserved.
		if spi := binary.BigEndian.Uint32(b[:]); spi > 255 {
			return spi, nil
		}
	}
}

func (ep *Endpoint) newSA(conn *Connection, initiator bool, local, remote netip.AddrPort, now time.Time) *SA {
	sa := &SA{ep: ep, conn: conn, initiator: initiator, local: local, remote: remote, heapIdx: -1, created: now}
	var r Retransmit
	if conn != nil {
		r = conn.Retransmit
	}
	sa.tm.schedule = r.withDefaults()
	return sa
}

// Initiate starts an IKE SA (and its first Child SA) for the named
// connection; it returns the SA's initiator SPI.
func (ep *Endpoint) Initiate(now time.Time, name string, out *Output) (uint64, error) {
	c := ep.conn(name)
	if c == nil {
		return 0, fmt.Errorf("%w %q", ErrUnknownConnection, name)
	}
	if !c.Local.IsValid() || !c.Remote.IsValid() {
		return 0, fmt.Errorf("%w: connection %q needs Local and Remote to initiate", ErrConfig, name)
	}
	spi, err := ep.newSPI()
	if err != nil {
		return 0, err
	}
	sa := ep.newSA(c, true, c.Local, c.Remote, now)
	sa.spiI = spi
	for _, t := range []task{&ikeInit{}, &natd{}, &features{}, &auth{}, &initialContact{}, &childCreate{}} {
		sa.queue(t)
	}
	ep.sas[spi] = sa
	ep.run(sa, now, out, func() { sa.initiate(now, out) })
	return spi, nil
}

// Terminate deletes the IKE SA with local SPI spi: an INFORMATIONAL
// exchange with D(IKE) when established, at once otherwise.
func (ep *Endpoint) Terminate(now time.Time, spi uint64, out *Output) error {
	sa := ep.sas[spi]
	if sa == nil {
		return ErrNoSA
	}
	ep.run(sa, now, out, func() {
		if sa.state == stateEstablished {
			sa.queue(ikeDelete{})
			sa.initiate(now, out)
			return
		}
		sa.destroy(out, "terminated")
	})
	return nil
}

// TerminateNow deletes the IKE SA with local SPI spi at once: an
// established SA sends its INFORMATIONAL Delete once, without waiting for
// the answer or retransmitting it, and is destroyed with its Child SAs in
// the same call (the peer's answer, if any, is then for an unknown SPI).
// While another request of ours is in flight (a DPD probe to a silent
// peer, a Delete already sent) the window holds no room for one more, and
// nothing is sent: a live peer then finds out by its own liveness check.
// For an operator who will not wait out the retransmission schedule of a
// peer that is gone (`petrel down --force`).
func (ep *Endpoint) TerminateNow(now time.Time, spi uint64, out *Output) error {
	sa := ep.sas[spi]
	if sa == nil {
		return ErrNoSA
	}
	ep.run(sa, now, out, func() {
		if sa.state == stateEstablished && !sa.tm.inFlight() {
			sa.queueFront(ikeDelete{})
			sa.initiate(now, out)
		}
		sa.destroy(out, "terminated")
	})
	return nil
}

// Close destroys every SA without telling peers (shutdown).
func (ep *Endpoint) Close(out *Output) {
	for _, sa := range ep.sas {
		ep.run(sa, time.Time{}, out, func() { sa.destroy(out, "shutdown") })
	}
}

// run executes f with sa's output sink set, then updates the endpoint's
// tables: removes dead SAs, ends half-open accounting, re-arms the timer.
func (ep *Endpoint) run(sa *SA, now time.Time, out *Output, f func()) {
	sa.out, sa.now = out, now
	f()
	sa.out = nil
	// New IKE SAs from a rekey join the table and start their work.
	spawned := sa.spawned
	sa.spawned = nil
	for _, n := range spawned {
		if n.state != stateEstablished {
			continue
		}
		ep.sas[n.ourSPI()] = n
		ep.run(n, now, out, func() { n.initiate(now, out) })
	}
	if sa.state == stateDead {
		ep.remove(sa)
		if n := sa.handedTo; n != nil && n.kick && n.state == stateEstablished {
			n.kick = false
			ep.run(n, now, out, func() { n.initiate(now, out) })
		}
		if sa.restart && sa.conn != nil && sa.conn.Remote.IsValid() {
			// DPD action restart (RFC 7296 §2.4): initiate again.
			sa.restart = false
			if _, err := ep.Initiate(now, sa.conn.Name, out); err != nil {
				ep.log.Info("ike: restart after dead peer failed", "conn", sa.conn.Name, "err", err)
			}
		}
		return
	}
	if sa.halfOpen && sa.state >= stateEstablished {
		ep.endHalfOpen(sa)
	}
	ep.timers.set(sa, sa.nextDeadline())
	if sa.reauth {
		sa.reauth = false
		ep.reauthenticate(sa, now, out)
	}
}

func (ep *Endpoint) remove(sa *SA) {
	if ep.sas[sa.ourSPI()] == sa {
		delete(ep.sas, sa.ourSPI())
	}
	if sa.halfOpen {
		ep.endHalfOpen(sa)
	}
	// The IKE_SA_INIT index lives as long as the SA, so a late duplicate
	// IKE_SA_INIT reaches it (and is dropped) instead of opening a new one.
	if !sa.initiator && ep.inits[initKey{sa.halfOpenIP, sa.spiI}] == sa {
		delete(ep.inits, initKey{sa.halfOpenIP, sa.spiI})
	}
	ep.timers.set(sa, time.Time{})
}

func (ep *Endpoint) endHalfOpen(sa *SA) {
	sa.halfOpen = false
	ep.halfOpen--
	ip := sa.halfOpenIP.Addr()
	if ep.perIP[ip]--; ep.perIP[ip] <= 0 {
		delete(ep.perIP, ip)
	}
}

// onEstablished is called by the auth task when the SA is authenticated.
func (ep *Endpoint) onEstablished(sa *SA) {
	sa.ikeTimers = newIKETimers(sa)
	ep.reauthDone(sa)
	sa.event(sa.out, EventIKEUp, "")
	sa.info("ike: IKE SA established", "peer", sa.peerID)
}

// NextDeadline returns when Tick must next be called; ok is false when no
// timer is armed.
func (ep *Endpoint) NextDeadline() (t time.Time, ok bool) {
	if len(ep.timers) == 0 {
		return time.Time{}, false
	}
	return ep.timers[0].deadline, true
}

// Tick runs every timer due at now: retransmissions, give-ups, half-open
// expiry.
func (ep *Endpoint) Tick(now time.Time, out *Output) {
	ep.cookies.maybeRotate(now, ep.rand)
	// Every due SA moves its deadline past now or dies; the bound only
	// guards against a bug turning that into a busy loop.
	for n := 2*len(ep.timers) + 1; n > 0 && len(ep.timers) > 0 && !ep.timers[0].deadline.After(now); n-- {
		sa := ep.timers[0]
		ep.run(sa, now, out, func() { sa.onTimer(now, out) })
	}
}

// saHeap orders SAs by deadline (container/heap).
type saHeap []*SA

func (h saHeap) Len() int           { return len(h) }
func (h saHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h saHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *saHeap) Push(x any) {
	sa := x.(*SA)
	sa.heapIdx = len(*h)
	*h = append(*h, sa)
}
func (h *saHeap) Pop() any {
	old := *h
	sa := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	sa.heapIdx = -1
	return sa
}

// set (re)arms sa's timer; a zero deadline disarms it.
func (h *saHeap) set(sa *SA, d time.Time) {
	sa.deadline = d
	switch {
	case d.IsZero() && sa.heapIdx >= 0:
		heap.Remove(h, sa.heapIdx)
	case d.IsZero():
	case sa.heapIdx >= 0:
		heap.Fix(h, sa.heapIdx)
	default:
		heap.Push(h, sa)
	}
}
