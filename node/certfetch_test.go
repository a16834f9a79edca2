package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
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

// TestCertFetcherCachesAndRefreshes: a second ask is answered from memory;
// the background refresh replaces the answer; a failed refresh keeps the
// last good one; Close stops the refresh.
func TestCertFetcherCachesAndRefreshes(t *testing.T) {
	next := &countingFetcher{}
	f := newCertFetcher(next, 20*time.Millisecond)
	defer f.Close()
	req := cert.Request{URL: "http://ca.test/inter.crl"}
	b, err := f.Fetch(context.Background(), req)
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
	if _, err := f.Fetch(context.Background(), cert.Request{URL: "http://ca.test/other.crl"}); err == nil {
		t.Fatal("an unknown URL that cannot be fetched gave no error")
	}
	f.Close()
	n := next.count()
	time.Sleep(60 * time.Millisecond)
	if next.count() != n {
		t.Fatal("refreshes after Close")
	}
}
