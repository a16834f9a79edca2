package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/cert/httpfetch"
	"github.com/petrel-vpn/petrel/ike"
)

// countingFetcher answers with the URL and a counter, or fails.
type countingFetcher struct {
	mu    sync.Mutex
	calls int
	fail  bool
}

func (c *countingFetcher) Fetch(_ context.Context, req cert.Request) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.fail {
		return nil, errors.New("unreachable")
	}
	return []byte(req.URL + "#" + string(rune('0'+c.calls))), nil
}

func (c *countingFetcher) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// fetchSettled asks f for req under cert.MayDefer until the answer is no
// longer "pending", for at most 10 s.
func fetchSettled(t *testing.T, f *certFetcher, req cert.Request) ([]byte, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), ike.DefaultCertTimeout)
		b, err := f.Fetch(cert.MayDefer(ctx), req)
		cancel()
		if !errors.Is(err, cert.ErrFetchPending) {
			return b, err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still pending after 10 s", req.URL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCertFetcherCachesAndRefreshes: a second ask is answered from memory;
// the background refresh replaces the answer; a failed refresh keeps the
// last good one; Close stops the refresh.
func TestCertFetcherCachesAndRefreshes(t *testing.T) {
	next := &countingFetcher{}
	f := newCertFetcher(next, 20*time.Millisecond)
	defer f.Close()
	req := cert.Request{URL: "http://ca.test/inter.crl"}
	b, err := fetchSettled(t, f, req)
	if err != nil || string(b) != "http://ca.test/inter.crl#1" {
		t.Fatalf("first fetch %q %v", b, err)
	}
	if b, _ := f.Fetch(context.Background(), req); string(b) != "http://ca.test/inter.crl#1" || next.count() != 1 {
		t.Fatalf("second fetch %q after %d calls, want the cached answer", b, next.count())
	}
	deadline := time.Now().Add(5 * time.Second)
	for next.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	if b, _ := f.Fetch(context.Background(), req); string(b) == "http://ca.test/inter.crl#1" {
		t.Fatal("the background refresh did not replace the answer")
	}
	next.mu.Lock()
	next.fail = true
	next.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	if b, err := f.Fetch(context.Background(), req); err != nil || len(b) == 0 {
		t.Fatalf("after failed refreshes: %q %v, want the last good answer", b, err)
	}
	if _, err := fetchSettled(t, f, cert.Request{URL: "http://ca.test/other.crl"}); err == nil {
		t.Fatal("an unknown URL that cannot be fetched gave no error")
	}
	f.Close()
	n := next.count()
	time.Sleep(60 * time.Millisecond)
	if next.count() != n {
		t.Fatal("refreshes after Close")
	}
}

// TestCertFetcherDefers: under cert.MayDefer a request the fetcher does not
// hold — here on a server that takes 2 s — is answered at once with
// cert.ErrFetchPending while one fetch runs in the background however
// often it is asked for; once that fetch is done the same ask gets the
// body from memory. A failed fetch is then answered at once with its
// failure (not "pending") until failTTL has passed. Without MayDefer the
// fetcher does not wait either: it answers errNotYet at once and fetches
// nothing more.
func TestCertFetcherDefers(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == "/missing.crl" {
			http.NotFound(w, r)
			return
		}
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("crl of " + r.URL.Path))
	}))
	defer srv.Close()
	hitCount := func(p string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[p]
	}
	f := newCertFetcher(&httpfetch.Fetcher{}, time.Hour)
	defer f.Close()
	f.failTTL = time.Second
	bg := context.Background()
	deferring := func() (context.Context, context.CancelFunc) {
		c, cancel := context.WithTimeout(bg, ike.DefaultCertTimeout)
		return cert.MayDefer(c), cancel
	}
	req := cert.Request{URL: srv.URL + "/slow.crl"}

	ctx, cancel := deferring()
	start := time.Now()
	_, err := f.Fetch(ctx, req)
	took := time.Since(start)
	cancel() // the background fetch is bounded by its own copy of the deadline
	if !errors.Is(err, cert.ErrFetchPending) {
		t.Fatalf("first deferring fetch: %v, want cert.ErrFetchPending", err)
	}
	t.Logf("deferring fetch of a 2 s URL returned in %v", took)
	if took > 100*time.Millisecond {
		t.Errorf("deferring fetch took %v", took)
	}
	ctx, cancel = deferring()
	if _, err := f.Fetch(ctx, req); !errors.Is(err, cert.ErrFetchPending) {
		t.Errorf("second deferring fetch while under way: %v", err)
	}
	cancel()
	// An ask that may not defer is not waited for either.
	waiting, cancelW := context.WithTimeout(bg, ike.DefaultCertTimeout)
	start = time.Now()
	_, err = f.Fetch(waiting, req)
	took = time.Since(start)
	cancelW()
	t.Logf("non-deferring fetch of a 2 s URL returned in %v: %v", took, err)
	if !errors.Is(err, errNotYet) || errors.Is(err, cert.ErrFetchPending) {
		t.Fatalf("non-deferring fetch while under way: %v, want errNotYet", err)
	}
	b, err := fetchSettled(t, f, req)
	if err != nil || string(b) != "crl of /slow.crl" {
		t.Fatalf("deferring fetch after completion: %q %v, want the body", b, err)
	}
	ctx, cancel = deferring()
	defer cancel()
	if n := hitCount("/slow.crl"); n != 1 {
		t.Errorf("server asked %d times, want 1", n)
	}
	if st := f.stats(); st.Started != 1 || st.Joined < 2 || st.Refused != 0 {
		t.Errorf("stats %+v, want 1 started, the other asks joined", st)
	}

	// A failure is remembered, then forgotten.
	miss := cert.Request{URL: srv.URL + "/missing.crl"}
	if _, err := f.Fetch(ctx, miss); !errors.Is(err, cert.ErrFetchPending) {
		t.Fatalf("deferring fetch of a failing URL: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = f.Fetch(ctx, miss)
		if !errors.Is(err, cert.ErrFetchPending) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil || errors.Is(err, cert.ErrFetchPending) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("after the failed fetch: %v, want its failure", err)
	}
	if _, err2 := f.Fetch(ctx, miss); err2 == nil || err2.Error() != err.Error() || hitCount("/missing.crl") != 1 {
		t.Errorf("failure not answered from memory: %v, %d requests", err2, hitCount("/missing.crl"))
	}
	time.Sleep(f.failTTL + 100*time.Millisecond)
	if _, err := f.Fetch(ctx, miss); !errors.Is(err, cert.ErrFetchPending) {
		t.Errorf("after failTTL: %v, want a new fetch (pending)", err)
	}
}

// TestCertFetcherBounds: at most maxFlights fetches are under way (an ask
// beyond starts none and is counted: "pending" under cert.MayDefer, errBusy
// for an ask that may not defer, neither remembered), and Close ends the
// fetches under way.
func TestCertFetcherBounds(t *testing.T) {
	release := make(chan struct{})
	next := fetchFunc(func(ctx context.Context, req cert.Request) ([]byte, error) {
		select {
		case <-release:
			return []byte("ok"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	f := newCertFetcher(next, time.Hour)
	f.flights = 3
	ctx := cert.MayDefer(context.Background())
	for i := range 3 {
		if _, err := f.Fetch(ctx, cert.Request{URL: fmt.Sprintf("http://ca.test/%d.crl", i)}); !errors.Is(err, cert.ErrFetchPending) {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	more := cert.Request{URL: "http://ca.test/more.crl"}
	if _, err := f.Fetch(ctx, more); !errors.Is(err, cert.ErrFetchPending) || !errors.Is(err, errBusy) {
		t.Fatalf("beyond the bound: %v, want pending (busy)", err)
	}
	if _, err := f.Fetch(context.Background(), more); errors.Is(err, cert.ErrFetchPending) || !errors.Is(err, errBusy) {
		t.Fatalf("beyond the bound, waiting: %v, want errBusy", err)
	}
	f.mu.Lock()
	flights, failed := len(f.inFlight), len(f.failed)
	f.mu.Unlock()
	if flights != 3 || failed != 0 {
		t.Fatalf("%d flights, %d failures remembered; want 3, 0", flights, failed)
	}
	if st := f.stats(); st.Started != 3 || st.Refused != 2 {
		t.Fatalf("stats %+v, want 3 started, 2 refused", st)
	}
	// The same URL joins its flight.
	if _, err := f.Fetch(ctx, cert.Request{URL: "http://ca.test/1.crl"}); !errors.Is(err, cert.ErrFetchPending) {
		t.Fatalf("asking again: %v", err)
	}
	done := make(chan struct{})
	go func() { f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close does not end the fetches under way")
	}
	close(release)
}

// TestCertFetcherPeerBudget: hash-and-URL fetches (cert.Request.Peer, URLs
// an unauthenticated peer chose) get at most maxPeerFlights flights and
// peerSlots connections, so that a peer naming many URLs on a server that
// never answers leaves flights and slots to revocation fetches; and their
// answers are not refreshed (the peer names them by hash).
func TestCertFetcherPeerBudget(t *testing.T) {
	var mu sync.Mutex
	running, most := map[bool]int{}, map[bool]int{}
	release := make(chan struct{})
	next := fetchFunc(func(ctx context.Context, req cert.Request) ([]byte, error) {
		mu.Lock()
		running[req.Peer]++
		most[req.Peer] = max(most[req.Peer], running[req.Peer])
		mu.Unlock()
		defer func() {
			mu.Lock()
			running[req.Peer]--
			mu.Unlock()
		}()
		select {
		case <-release:
			return []byte("ok"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	f := newCertFetcher(next, time.Hour)
	defer f.Close()
	f.flights, f.peerFl = 10, 4
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = cert.MayDefer(ctx)
	for i := range 6 {
		_, err := f.Fetch(ctx, cert.Request{URL: fmt.Sprintf("http://evil.test/%d.der", i), Peer: true})
		if !errors.Is(err, cert.ErrFetchPending) || (i >= 4) != errors.Is(err, errBusy) {
			t.Fatalf("peer fetch %d: %v", i, err)
		}
	}
	for i := range 6 {
		if _, err := f.Fetch(ctx, cert.Request{URL: fmt.Sprintf("http://ca.test/%d.crl", i)}); !errors.Is(err, cert.ErrFetchPending) || errors.Is(err, errBusy) {
			t.Fatalf("revocation fetch %d beside 4 peer flights: %v", i, err)
		}
	}
	if _, err := f.Fetch(ctx, cert.Request{URL: "http://ca.test/more.crl"}); !errors.Is(err, errBusy) {
		t.Fatalf("the 11th flight: %v, want errBusy", err)
	}
	// Wait until the slots are taken: peerSlots by peer fetches, the rest
	// by revocation.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		r, p := running[false], running[true]
		mu.Unlock()
		if r+p == fetchSlots || time.Now().After(deadline) {
			t.Logf("running: %d revocation, %d peer fetches", r, p)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	peerMost := most[true]
	mu.Unlock()
	if peerMost > peerSlots {
		t.Errorf("%d peer fetches at once, want at most %d", peerMost, peerSlots)
	}
	close(release)
	for i := range 4 {
		if b, err := fetchSettled(t, f, cert.Request{URL: fmt.Sprintf("http://evil.test/%d.der", i), Peer: true}); err != nil || string(b) != "ok" {
			t.Fatalf("peer fetch %d after release: %q %v", i, b, err)
		}
	}
	if st := f.stats(); st.Refused != 3 || st.Started != 10 {
		t.Errorf("stats %+v, want 10 started, 3 refused", st)
	}
	for i := range 6 {
		fetchSettled(t, f, cert.Request{URL: fmt.Sprintf("http://ca.test/%d.crl", i)})
	}
	before := map[string]time.Time{}
	f.mu.Lock()
	for k, e := range f.entries {
		before[k] = e.fetched
	}
	f.mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	f.refreshAll() // fetches the revocation answers again, not the peer's
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.entries) != 10 {
		t.Errorf("%d entries, want 10", len(f.entries))
	}
	for k, e := range f.entries {
		if refreshed := e.fetched != before[k]; refreshed == e.req.Peer {
			t.Errorf("%s (peer %v): refreshed %v", e.req.URL, e.req.Peer, refreshed)
		}
	}
}

// TestCertFetcherNoSlotForgotten: a flight that found no free fetch slot
// before its deadline asked no server, so nothing is remembered: the next
// ask starts a flight again (pending), instead of being answered with a
// failure for failTTL.
func TestCertFetcherNoSlotForgotten(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	running := make(chan string, 4)
	next := fetchFunc(func(ctx context.Context, req cert.Request) ([]byte, error) {
		running <- req.URL
		select {
		case <-release:
			return []byte("ok"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	f := newCertFetcher(next, time.Hour)
	defer f.Close()
	f.slots = make(chan struct{}, 1)
	long, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := f.Fetch(cert.MayDefer(long), cert.Request{URL: "http://ca.test/held.crl"}); !errors.Is(err, cert.ErrFetchPending) {
		t.Fatal(err)
	}
	select { // the held fetch has the only slot
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the first fetch did not start")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	queued := cert.Request{URL: "http://ca.test/queued.crl"}
	if _, err := f.Fetch(cert.MayDefer(short), queued); !errors.Is(err, cert.ErrFetchPending) {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.stats().NoSlot == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := f.stats(); st.NoSlot != 1 {
		t.Fatalf("stats %+v, want one flight without a slot", st)
	}
	if _, err := f.Fetch(cert.MayDefer(long), queued); !errors.Is(err, cert.ErrFetchPending) {
		t.Fatalf("asked again: %v, want pending (a new flight)", err)
	}
	if st := f.stats(); st.Started != 3 {
		t.Errorf("stats %+v, want 3 flights started", st)
	}
}

// TestCertFetcherByteBound: the answers kept take at most maxSize octets;
// the least recently used go first, and a refresh that grows an answer
// makes room the same way.
func TestCertFetcherByteBound(t *testing.T) {
	var mu sync.Mutex
	size := 4
	next := fetchFunc(func(_ context.Context, req cert.Request) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		return []byte(strings.Repeat("x", size)), nil
	})
	f := newCertFetcher(next, time.Hour)
	defer f.Close()
	f.maxSize = 10
	for i := range 5 {
		if _, err := fetchSettled(t, f, cert.Request{URL: fmt.Sprintf("http://ca.test/%d.crl", i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // distinct use times
	}
	check := func(want ...int) {
		t.Helper()
		f.mu.Lock()
		defer f.mu.Unlock()
		var sum int64
		for _, e := range f.entries {
			sum += int64(len(e.body))
		}
		var kept []int
		for i := range 5 {
			if f.entries[fetchKey(cert.Request{URL: fmt.Sprintf("http://ca.test/%d.crl", i)})] != nil {
				kept = append(kept, i)
			}
		}
		if fmt.Sprint(kept) != fmt.Sprint(want) || sum != f.size || f.size > f.maxSize {
			t.Errorf("kept %v (%d octets, counted %d), want %v within %d", kept, sum, f.size, want, f.maxSize)
		}
	}
	check(3, 4)
	mu.Lock()
	size = 7
	mu.Unlock()
	f.refreshAll()
	check(4)
}

type fetchFunc func(context.Context, cert.Request) ([]byte, error)

func (f fetchFunc) Fetch(ctx context.Context, req cert.Request) ([]byte, error) { return f(ctx, req) }
