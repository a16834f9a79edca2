package node

import (
	"context"
	"sync"
	"time"

	"github.com/petrel-vpn/petrel/cert"
)

// certFetcher keeps CRL, OCSP and hash-and-URL fetches off the event loop
// where it can. Certificate verification runs inside the protocol core, on
// the loop that serves every SA (ike.CertVerifier), so a fetch there stalls
// all of them. This fetcher answers from memory what it has fetched before
// and refreshes every answer in the background each refresh interval, so
// that when package cert's own cache runs out (a CRL's or OCSP response's
// nextUpdate) the newer copy is already here. Only the first fetch of a URL
// — first contact with a CA, a new hash-and-URL certificate — waits on the
// network in the loop, bounded by the verifier's timeout. Answers no one
// asked for in a day are dropped.
// certRefresh is how often fetched revocation data and hash-and-URL
// certificates are fetched again in the background.
const certRefresh = 5 * time.Minute

type certFetcher struct {
	next    cert.Fetcher
	refresh time.Duration
	idle    time.Duration // drop entries not asked for in this long
	max     int           // entries kept at most

	mu      sync.Mutex
	entries map[string]*fetchEntry
	running bool // the refresh loop started (with the first entry)
	closed  bool

	stop chan struct{}
	done chan struct{}
}

type fetchEntry struct {
	req     cert.Request
	body    []byte
	fetched time.Time
	used    time.Time
}

func newCertFetcher(next cert.Fetcher, refresh time.Duration) *certFetcher {
	f := &certFetcher{next: next, refresh: refresh, idle: 24 * time.Hour, max: 1024,
		entries: map[string]*fetchEntry{}, stop: make(chan struct{}), done: make(chan struct{})}
	return f
}

func fetchKey(req cert.Request) string {
	return req.URL + "\x00" + req.ContentType + "\x00" + string(req.Body)
}

// Fetch implements cert.Fetcher.
func (f *certFetcher) Fetch(ctx context.Context, req cert.Request) ([]byte, error) {
	key := fetchKey(req)
	now := time.Now()
	f.mu.Lock()
	if e := f.entries[key]; e != nil && (req.MaxSize <= 0 || int64(len(e.body)) <= req.MaxSize) {
		e.used = now
		body := e.body
		f.mu.Unlock()
		return body, nil
	}
	f.mu.Unlock()
	body, err := f.next.Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) >= f.max {
		f.evictLocked()
	}
	req.Body = append([]byte(nil), req.Body...)
	f.entries[key] = &fetchEntry{req: req, body: body, fetched: now, used: now}
	if !f.running && !f.closed {
		f.running = true
		go f.loop()
	}
	return body, nil
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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		go func() {
			select {
			case <-f.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
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

// Close stops the background refresh.
func (f *certFetcher) Close() {
	f.mu.Lock()
	running, closed := f.running, f.closed
	f.closed = true
	f.mu.Unlock()
	if closed {
		return
	}
	close(f.stop)
	if running {
		<-f.done
	}
}
