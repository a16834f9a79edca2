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
// all of them.
//
// It answers from memory what it has fetched before and refreshes every
// answer in the background each refresh interval, so that when package
// cert's own cache runs out (a CRL's or OCSP response's nextUpdate) the
// newer copy is already here. Answers no one asked for in a day are
// dropped.
//
// A request it does not hold — first contact with a CA, a new hash-and-URL
// certificate — is fetched in the background, once however many ask for it
// (one flight per request), with at most fetchSlots fetches at a time and
// each bounded by the asker's deadline (the verifier's timeout). When the
// asker allows it (cert.MayDefer, as ike.CertVerifier does while it can
// discard the peer's IKE_AUTH until the retransmission), Fetch returns at
// once an error wrapping cert.ErrFetchPending; otherwise it waits for the
// flight, as a plain Fetcher would. The outcome is kept either way: the
// body like any answer, a failure for failTTL, so that the next ask — the
// peer's retransmission — is answered at once and the revocation policy
// judges a failure exactly as it judges one waited for.
type certFetcher struct {
	next    cert.Fetcher
	refresh time.Duration
	idle    time.Duration // drop entries not asked for in this long
	max     int           // entries (and failures) kept at most
	failTTL time.Duration // how long a failed fetch is answered from memory
	flights int           // background fetches under way or waiting at most
	slots   chan struct{} // bounds the fetches running at once

	ctx    context.Context // cancelled by Close: ends every fetch
	cancel context.CancelFunc
	wg     sync.WaitGroup // background fetches

	mu       sync.Mutex
	entries  map[string]*fetchEntry
	failed   map[string]failure
	inFlight map[string]*flight
	running  bool // the refresh loop started (with the first entry)
	closed   bool

	stop chan struct{}
	done chan struct{}
}

// certRefresh is how often fetched revocation data and hash-and-URL
// certificates are fetched again in the background.
const certRefresh = 5 * time.Minute

// Bounds of the fetches the fetcher starts itself.
const (
	// certFailTTL is how long a failed fetch is answered from memory: past
	// the verifier's bound on discarding (its timeout and a margin), so the
	// retransmission that ends the wait finds it.
	certFailTTL = 30 * time.Second
	// fetchSlots is how many fetches run at once.
	fetchSlots = 8
	// maxFlights bounds the fetches under way or waiting for a slot; an
	// ask beyond it starts nothing: it is "pending" under cert.MayDefer
	// (the verifier asks again later, until its bound), otherwise it fails
	// at once (not remembered), like an unreachable server.
	maxFlights = 128
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

// flight is a fetch under way; done is closed when body or err is set.
type flight struct {
	done chan struct{}
	body []byte
	err  error
}

// errBusy: maxFlights fetches are under way.
var errBusy = errors.New("node: too many certificate fetches under way")

func newCertFetcher(next cert.Fetcher, refresh time.Duration) *certFetcher {
	ctx, cancel := context.WithCancel(context.Background())
	f := &certFetcher{next: next, refresh: refresh, idle: 24 * time.Hour, max: 1024,
		failTTL: certFailTTL, flights: maxFlights, slots: make(chan struct{}, fetchSlots),
		ctx: ctx, cancel: cancel,
		entries: map[string]*fetchEntry{}, failed: map[string]failure{}, inFlight: map[string]*flight{},
		stop: make(chan struct{}), done: make(chan struct{})}
	return f
}

func fetchKey(req cert.Request) string {
	return req.URL + "\x00" + req.ContentType + "\x00" + string(req.Body)
}

// Fetch implements cert.Fetcher: from memory, else from a fetch in the
// background — not waited for under cert.MayDefer (an error wrapping
// cert.ErrFetchPending), waited for up to ctx's deadline otherwise.
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
	fl := f.inFlight[key]
	if fl == nil {
		if f.closed {
			f.mu.Unlock()
			return nil, errors.New("node: certificate fetcher closed")
		}
		if len(f.inFlight) >= f.flights {
			f.mu.Unlock()
			if cert.Deferrable(ctx) {
				// Asked again later, when a flight may have ended.
				return nil, fmt.Errorf("fetching %s: %w (%w)", req.URL, cert.ErrFetchPending, errBusy)
			}
			return nil, fmt.Errorf("fetching %s: %w", req.URL, errBusy)
		}
		fl = &flight{done: make(chan struct{})}
		f.inFlight[key] = fl
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
	select {
	case <-fl.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("fetching %s: %w", req.URL, ctx.Err())
	}
	if fl.err != nil {
		return nil, fl.err
	}
	if !fits(fl.body, req) {
		return nil, fmt.Errorf("node: %s: %d octets, limit %d", req.URL, len(fl.body), req.MaxSize)
	}
	return fl.body, nil
}

// fits: body is within req's size bound.
func fits(body []byte, req cert.Request) bool {
	return req.MaxSize <= 0 || int64(len(body)) <= req.MaxSize
}

// run is one background fetch: it waits for a slot and fetches, within d,
// and keeps the outcome.
func (f *certFetcher) run(key string, req cert.Request, d time.Duration, fl *flight) {
	defer f.wg.Done()
	ctx, cancel := context.WithTimeout(f.ctx, d)
	defer cancel()
	var body []byte
	var err error
	select {
	case f.slots <- struct{}{}:
		body, err = f.next.Fetch(ctx, req)
		<-f.slots
	case <-ctx.Done():
		err = fmt.Errorf("fetching %s: waiting for a free fetch slot: %w", req.URL, ctx.Err())
	}
	now := time.Now()
	f.mu.Lock()
	delete(f.inFlight, key)
	if err == nil {
		if len(f.entries) >= f.max {
			f.evictLocked()
		}
		f.entries[key] = &fetchEntry{req: req, body: body, fetched: now, used: now}
		if !f.running && !f.closed {
			f.running = true
			go f.loop()
		}
	} else {
		if len(f.failed) >= f.max {
			for k, old := range f.failed {
				if !now.Before(old.until) || len(f.failed) >= f.max {
					delete(f.failed, k)
				}
			}
		}
		f.failed[key] = failure{err: err, until: now.Add(f.failTTL)}
	}
	fl.body, fl.err = body, err
	f.mu.Unlock()
	close(fl.done)
}

// evictLocked drops the least recently used entry.
func (f *certFetcher) evictLocked() {
	var oldest string
	var at time.Time
	for k, e := range f.entries {
		if oldest == "" || e.used.Before(at) {
			oldest, at = k, e.used
		}
	}
	delete(f.entries, oldest)
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

// refreshAll fetches every entry again, one at a time, keeping the old
// answer when a fetch fails.
func (f *certFetcher) refreshAll() {
	now := time.Now()
	f.mu.Lock()
	var due []*fetchEntry
	for k, e := range f.entries {
		if now.Sub(e.used) > f.idle {
			delete(f.entries, k)
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
		if cur := f.entries[fetchKey(e.req)]; cur == e {
			e.body, e.fetched = body, time.Now()
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
