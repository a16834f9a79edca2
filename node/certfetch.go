package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/ike"
)

// certFetcher keeps CRL, OCSP and hash-and-URL fetches off the event loop.
// Certificate verification runs inside the protocol core, on the loop that
// serves every SA (ike.CertVerifier), so a fetch waited for there stalls
// all of them. Fetch therefore never waits, whoever asks and however many
// fetches are under way: it takes a mutex that no one holds across I/O,
// looks in memory, perhaps starts a goroutine, and returns.
//
// It answers from memory what it has fetched before and refreshes every
// revocation answer in the background each refresh interval, so that when
// package cert's own cache runs out (a CRL's or OCSP response's
// nextUpdate) the newer copy is already here. Answers no one asked for in
// a day are dropped.
//
// A request it does not hold — first contact with a CA, a new hash-and-URL
// certificate — is fetched in the background, once however many ask for it
// (one flight per request: same URL, content type and body), with at most
// fetchSlots fetches running at a time and each flight, its wait for a
// slot included, bounded by the first asker's deadline (the verifier's
// timeout). The ask itself is answered at once: under cert.MayDefer (as
// ike.CertVerifier asks while it can set the peer's IKE_AUTH aside) with
// an error wrapping cert.ErrFetchPending, so that the core asks again
// later; otherwise with errNotYet, which the revocation policy judges like
// an unreachable server (the core asks so only once it has set the message
// aside for its fetch timeout and a margin, when a fetch it started has
// ended). The outcome of a fetch is kept either way: the body like any
// answer, a failure for failTTL (not a flight that found no free slot in
// time: that asked no server), so that the next ask — the peer's
// retransmission, the core's retry — is answered at once and the policy
// judges a failure exactly as it would judge one waited for.
//
// Bounds, so that no number of peers makes it open more connections or
// keep more memory: at most maxFlights flights (goroutines) exist at once,
// of which at most maxPeerFlights fetch hash-and-URL certificates; an ask
// beyond that starts nothing and is counted (Refused) — "pending" under
// cert.MayDefer, so the core's retries pick it up once a flight has ended,
// errBusy otherwise. Hash-and-URL URLs are the peer's choice before it has
// authenticated (cert.Request.Peer), revocation URLs come from
// certificates that chain to a trust anchor, so the peer's fetches get at
// most peerSlots of the fetchSlots connections and certMaxPeerEntries of
// the certMaxEntries answers kept (certMaxBytes in all): a hostile peer
// naming thousands of URLs on a server that never answers slows other
// hash-and-URL peers, not revocation.
type certFetcher struct {
	next    cert.Fetcher
	refresh time.Duration
	idle    time.Duration // drop entries not asked for in this long
	max     int           // entries (and failures) kept at most
	maxPeer int           // of which hash-and-URL entries at most
	maxSize int64         // octets of answers kept at most
	failTTL time.Duration // how long a failed fetch is answered from memory
	flights int           // flights at most (maxFlights)
	peerFl  int           // hash-and-URL flights at most (maxPeerFlights)
	slots   chan struct{} // bounds the fetches running at once
	peerSl  chan struct{} // bounds the hash-and-URL fetches running at once

	ctx    context.Context // cancelled by Close: ends every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // background fetches

	mu       sync.Mutex // never held across a fetch or a channel operation
	entries  map[string]*fetchEntry
	size     int64 // octets of the bodies in entries
	failed   map[string]failure
	inFlight map[string]*flight
	peerN    int // flights in inFlight with req.Peer
	counts   CertFetchStats
	running  bool // the refresh loop started (with the first entry)
	closed   bool

	stop chan struct{}
	done chan struct{}
}

// CertFetchStats counts what the node's certificate fetcher did with the
// asks it could not answer from memory (Stats.CertFetches). An IKE_AUTH set
// aside asks again at each retry, so Joined and Refused count asks, not
// distinct fetches.
type CertFetchStats struct {
	Started uint64 // flights started
	Joined  uint64 // asks for a request already in flight (not fetched again)
	Refused uint64 // asks that started nothing: maxFlights or maxPeerFlights flights under way
	NoSlot  uint64 // flights that ended before a fetch slot came free (not remembered)
}

// certRefresh is how often fetched revocation data is fetched again in the
// background.
const certRefresh = 5 * time.Minute

// Bounds of the fetches the fetcher starts itself.
const (
	// certFailTTL is how long a failed fetch is answered from memory: past
	// the verifier's bound on discarding (its timeout and a margin), so the
	// retransmission that ends the wait finds it.
	certFailTTL = 30 * time.Second
	// fetchSlots is how many fetches (connections) run at once; peerSlots
	// of them may fetch hash-and-URL certificates.
	fetchSlots = 8
	peerSlots  = 4
	// maxFlights bounds the flights (a goroutine and a few hundred octets
	// each), maxPeerFlights those for hash-and-URL certificates. 128 is
	// sixteen times the slots: with each fetch bounded by the verifier's
	// 5 s timeout, more queued than that could not run before their askers
	// give up.
	maxFlights     = 128
	maxPeerFlights = 64
	// certMaxEntries bounds the answers kept; certMaxPeerEntries the
	// hash-and-URL certificates among them (64 KiB each at most, so 16 MiB);
	// certMaxBytes the octets of them all (a CRL may have 8 MiB,
	// cert.MaxCRLSize, and 1024 of those would be 8 GiB).
	certMaxEntries     = 1024
	certMaxPeerEntries = 256
	certMaxBytes       = 256 << 20
)

type fetchEntry struct {
	req     cert.Request
	body    []byte
	fetched time.Time
	used    time.Time
}

// failure is a failed fetch, answered until until.
type failure struct {
	err   error
	until time.Time
}

// flight is a fetch under way.
type flight struct {
	peer bool // req.Peer: counted in peerN
}

var (
	// errBusy: maxFlights (or maxPeerFlights) fetches are under way.
	errBusy = errors.New("node: too many certificate fetches under way")
	// errNotYet: the fetch runs in the background and the asker may not
	// wait for it (it did not allow deferring).
	errNotYet = errors.New("node: certificate fetch still under way; not waited for on the event loop")
)

func newCertFetcher(next cert.Fetcher, refresh time.Duration) *certFetcher {
	ctx, cancel := context.WithCancel(context.Background())
	f := &certFetcher{next: next, refresh: refresh, idle: 24 * time.Hour,
		max: certMaxEntries, maxPeer: certMaxPeerEntries, maxSize: certMaxBytes, failTTL: certFailTTL,
		flights: maxFlights, peerFl: maxPeerFlights,
		slots: make(chan struct{}, fetchSlots), peerSl: make(chan struct{}, peerSlots),
		ctx: ctx, cancel: cancel,
		entries: map[string]*fetchEntry{}, failed: map[string]failure{}, inFlight: map[string]*flight{},
		stop: make(chan struct{}), done: make(chan struct{})}
	return f
}

func fetchKey(req cert.Request) string {
	return req.URL + "\x00" + req.ContentType + "\x00" + string(req.Body)
}

// Fetch implements cert.Fetcher without waiting: from memory, else the
// fetch runs in the background and the answer is an error wrapping
// cert.ErrFetchPending under cert.MayDefer, errNotYet or errBusy otherwise.
func (f *certFetcher) Fetch(ctx context.Context, req cert.Request) ([]byte, error) {
	key := fetchKey(req)
	now := time.Now()
	f.mu.Lock()
	if e := f.entries[key]; e != nil && fits(e.body, req) {
		e.used = now
		body := e.body
		f.mu.Unlock()
		return body, nil
	}
	if fl, ok := f.failed[key]; ok {
		if now.Before(fl.until) {
			f.mu.Unlock()
			return nil, fl.err
		}
		delete(f.failed, key)
	}
	if f.inFlight[key] != nil {
		f.counts.Joined++
	} else {
		if f.closed {
			f.mu.Unlock()
			return nil, errors.New("node: certificate fetcher closed")
		}
		if len(f.inFlight) >= f.flights || (req.Peer && f.peerN >= f.peerFl) {
			f.counts.Refused++
			f.mu.Unlock()
			if cert.Deferrable(ctx) {
				// Asked again later, when a flight may have ended.
				return nil, fmt.Errorf("node: fetching %s: %w (%w)", req.URL, cert.ErrFetchPending, errBusy)
			}
			return nil, fmt.Errorf("node: fetching %s: %w", req.URL, errBusy)
		}
		fl := &flight{peer: req.Peer}
		f.inFlight[key] = fl
		if fl.peer {
			f.peerN++
		}
		f.counts.Started++
		d := ike.DefaultCertTimeout
		if dl, ok := ctx.Deadline(); ok {
			d = time.Until(dl)
		}
		req.Body = append([]byte(nil), req.Body...)
		f.wg.Add(1)
		go f.run(key, req, d, fl)
	}
	f.mu.Unlock()
	if cert.Deferrable(ctx) {
		return nil, fmt.Errorf("node: fetching %s in the background: %w", req.URL, cert.ErrFetchPending)
	}
	return nil, fmt.Errorf("node: fetching %s: %w", req.URL, errNotYet)
}

// stats returns the counters.
func (f *certFetcher) stats() CertFetchStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// fits: body is within req's size bound.
func fits(body []byte, req cert.Request) bool {
	return req.MaxSize <= 0 || int64(len(body)) <= req.MaxSize
}

// run is one flight: it waits for a slot and fetches, all within d, and
// keeps the outcome. A flight that got no slot in time keeps nothing: the
// server was never asked, and the next ask starts a flight again.
func (f *certFetcher) run(key string, req cert.Request, d time.Duration, fl *flight) {
	defer f.wg.Done()
	ctx, cancel := context.WithTimeout(f.ctx, d)
	defer cancel()
	body, fetched, err := f.fetchInSlot(ctx, req, fl.peer)
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.inFlight, key)
	if fl.peer {
		f.peerN--
	}
	switch {
	case !fetched:
		f.counts.NoSlot++
	case err == nil:
		f.addLocked(key, req, body, now)
	default:
		if len(f.failed) >= f.max {
			for k, old := range f.failed {
				if !now.Before(old.until) || len(f.failed) >= f.max {
					delete(f.failed, k)
				}
			}
		}
		f.failed[key] = failure{err: err, until: now.Add(f.failTTL)}
	}
}

// fetchInSlot fetches req once it holds a slot (and, for a hash-and-URL
// certificate, a peer slot); fetched is false when ctx ended first.
func (f *certFetcher) fetchInSlot(ctx context.Context, req cert.Request, peer bool) (body []byte, fetched bool, err error) {
	if peer {
		select {
		case f.peerSl <- struct{}{}:
			defer func() { <-f.peerSl }()
		case <-ctx.Done():
			return nil, false, nil
		}
	}
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	case <-ctx.Done():
		return nil, false, nil
	}
	if ctx.Err() != nil { // both were ready: the deadline passed all the same
		return nil, false, nil
	}
	body, err = f.next.Fetch(ctx, req)
	return body, true, err
}

// addLocked keeps a fetched answer, making room first: the least recently
// used entry, or, for a hash-and-URL certificate when maxPeer of them are
// kept, the least recently used of those; then, while the answers take
// more than maxSize octets, the least recently used others.
func (f *certFetcher) addLocked(key string, req cert.Request, body []byte, now time.Time) {
	if old, ok := f.entries[key]; ok {
		f.size -= int64(len(old.body))
	} else {
		if req.Peer {
			n := 0
			for _, e := range f.entries {
				if e.req.Peer {
					n++
				}
			}
			if n >= f.maxPeer {
				f.evictLocked(true)
			}
		}
		if len(f.entries) >= f.max {
			f.evictLocked(false)
		}
	}
	f.entries[key] = &fetchEntry{req: req, body: body, fetched: now, used: now}
	f.size += int64(len(body))
	f.trimLocked(key)
	if !f.running && !f.closed {
		f.running = true
		go f.loop()
	}
}

// evictLocked drops the least recently used entry (of hash-and-URL
// certificates only, with peer).
func (f *certFetcher) evictLocked(peer bool) {
	var oldest string
	var at time.Time
	for k, e := range f.entries {
		if peer && !e.req.Peer {
			continue
		}
		if oldest == "" || e.used.Before(at) {
			oldest, at = k, e.used
		}
	}
	f.dropLocked(oldest)
}

// trimLocked evicts the least recently used entries other than keep ("":
// any) while the answers take more than maxSize octets, keeping one.
func (f *certFetcher) trimLocked(keep string) {
	for f.size > f.maxSize && len(f.entries) > 1 {
		var oldest string
		var at time.Time
		for k, e := range f.entries {
			if k != keep && (oldest == "" || e.used.Before(at)) {
				oldest, at = k, e.used
			}
		}
		f.dropLocked(oldest)
	}
}

// dropLocked forgets the entry of key.
func (f *certFetcher) dropLocked(key string) {
	if e, ok := f.entries[key]; ok {
		f.size -= int64(len(e.body))
		delete(f.entries, key)
	}
}

func (f *certFetcher) loop() {
	defer close(f.done)
	t := time.NewTicker(f.refresh)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.refreshAll()
		}
	}
}

// refreshAll fetches every revocation entry again, one at a time, keeping
// the old answer when a fetch fails. Hash-and-URL certificates are not
// fetched again: the peer names them by their hash (RFC 7296 §3.6), so a
// newer copy could only be a different object.
func (f *certFetcher) refreshAll() {
	now := time.Now()
	f.mu.Lock()
	var due []*fetchEntry
	for k, e := range f.entries {
		if now.Sub(e.used) > f.idle {
			f.dropLocked(k)
			continue
		}
		if e.req.Peer {
			continue
		}
		due = append(due, e)
	}
	f.mu.Unlock()
	for _, e := range due {
		ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
		body, err := f.next.Fetch(ctx, e.req)
		cancel()
		if err != nil {
			continue
		}
		f.mu.Lock()
		if key := fetchKey(e.req); f.entries[key] == e {
			f.size += int64(len(body)) - int64(len(e.body))
			e.body, e.fetched = body, time.Now()
			f.trimLocked("") // least recently used first, this one too
		}
		f.mu.Unlock()
	}
}

// Close stops the background refresh and ends the fetches under way.
func (f *certFetcher) Close() {
	f.mu.Lock()
	running, closed := f.running, f.closed
	f.closed = true
	f.mu.Unlock()
	if closed {
		return
	}
	f.cancel()
	close(f.stop)
	if running {
		<-f.done
	}
	f.wg.Wait()
}
