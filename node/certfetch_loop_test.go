package node

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
)

// TestCertFetchKeepsLoopFree: more certificates wait on slow CRLs than the
// fetcher keeps flights for, and the node's event loop stays free.
//
// 300 leaves under one root name 150 distinct CRL distribution points, two
// leaves each, on a server whose handler holds every request until the
// test releases it. The leaves are validated on the node's loop (n.do),
// with the node's fetcher, as ike.CertVerifier does in IKE_AUTH:
//
//	loop: validate 300 under cert.MayDefer → 300 pending, nothing waited for;
//	      128 flights start (maxFlights), 128 asks join them (the second
//	      leaf of a URL), 44 asks are refused and counted (busy)
//	server: at most fetchSlots requests held at once
//	loop: a session listing and the same 300 without cert.MayDefer (the
//	      core's last try) return at once, while the server still holds
//	      everything: not one waits for a fetch
//	release → loop: validate again until all 300 pass; the server saw
//	      each of the 150 URLs exactly once.
//
// Before, the asks without cert.MayDefer sat on the loop waiting for the
// flights they joined, until the server answered.
func TestCertFetchKeepsLoopFree(t *testing.T) {
	const urls, perURL = maxFlights + 22, 2
	now := time.Now()
	root, err := cert.NewCA(cert.Template{CN: "fetch test root"}, cert.KeyECDSAP256, now)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour)}, root.Cert, root.Key)
	if err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	var mu sync.Mutex
	hits := map[string]int{}
	held, mostHeld := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		held++
		mostHeld = max(mostHeld, held)
		mu.Unlock()
		defer func() {
			mu.Lock()
			held--
			mu.Unlock()
		}()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(30 * time.Second):
			return
		}
		w.Write(crl)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(free) // runs before srv.Close

	key, err := cert.GenerateKey(cert.KeyECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	var leaves []*x509.Certificate
	for i := range urls * perURL {
		c, err := root.IssueFor(cert.Template{CN: fmt.Sprintf("peer%d.petrel.test", i),
			CRLURLs: []string{fmt.Sprintf("%s/crl/%d", srv.URL, i%urls)}}, key.Public(), now)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, c)
	}

	a, _, _, _ := startPair(t, LoopbackOptions{})
	v := &cert.Validator{Store: cert.NewStore(nil, []*x509.Certificate{root.Cert}),
		Revocation: &cert.Revocation{Fetcher: a.fetch, Policy: cert.Strict}}
	type tally struct{ ok, pending, refused int }
	// validate runs on a's loop and validates every leaf, as the core would.
	validate := func(mayDefer bool) (tally, time.Duration, error) {
		var n tally
		var took time.Duration
		err := a.do(func(time.Time) {
			start := time.Now()
			for _, leaf := range leaves {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if mayDefer {
					ctx = cert.MayDefer(ctx)
				}
				_, err := v.Validate(ctx, leaf, nil)
				cancel()
				switch {
				case err == nil:
					n.ok++
				case errors.Is(err, cert.ErrFetchPending):
					n.pending++
				default:
					n.refused++
				}
			}
			took = time.Since(start)
		})
		return n, took, err
	}
	// onLoop runs fn (which calls onto a's loop) and reports whether it
	// returned within 10 s, while the server holds every fetch.
	onLoop := func(what string, fn func()) {
		t.Helper()
		done := make(chan struct{})
		start := time.Now()
		go func() { defer close(done); fn() }()
		select {
		case <-done:
			t.Logf("%s returned in %v with every fetch held", what, time.Since(start))
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not return in 10 s: the event loop waits on a fetch", what)
			free()
			<-done
		}
	}

	onLoop("validating 300 under cert.MayDefer", func() {
		n, took, err := validate(true)
		t.Logf("deferring round: %+v, %v on the loop", n, took)
		if err != nil || n.pending != len(leaves) {
			t.Errorf("deferring round: %+v %v, want all %d pending", n, err, len(leaves))
		}
	})
	st := a.Stats().CertFetches
	t.Logf("fetcher after the first round: %+v", st)
	if st.Started != maxFlights || st.Joined != maxFlights || st.Refused != 2*(urls-maxFlights) {
		t.Errorf("fetcher: %+v, want %d started, %d joined, %d refused", st, maxFlights, maxFlights, 2*(urls-maxFlights))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		h := held
		mu.Unlock()
		if h >= fetchSlots || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	onLoop("a session listing", func() {
		if _, err := a.Sessions(); err != nil {
			t.Error(err)
		}
	})
	onLoop("validating 300 without cert.MayDefer", func() {
		n, took, err := validate(false)
		t.Logf("non-deferring round: %+v, %v on the loop", n, took)
		if err != nil || n.refused != len(leaves) {
			t.Errorf("non-deferring round: %+v %v, want all %d refused (revocation status unavailable, strict)", n, err, len(leaves))
		}
	})
	mu.Lock()
	t.Logf("server: %d requests held at most at once, %d URLs asked for before the release", mostHeld, len(hits))
	if mostHeld > fetchSlots {
		t.Errorf("server held %d requests at once, want at most fetchSlots = %d", mostHeld, fetchSlots)
	}
	mu.Unlock()

	free()
	start := time.Now()
	deadline = start.Add(30 * time.Second)
	rounds := 0
	for {
		n, _, err := validate(true)
		rounds++
		if err != nil || n.refused > 0 {
			t.Fatalf("after the release: %+v %v", n, err)
		}
		if n.ok == len(leaves) {
			t.Logf("all %d valid %v after the release, in %d rounds", n.ok, time.Since(start), rounds)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the release: %+v", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != urls {
		t.Errorf("server saw %d URLs, want %d", len(hits), urls)
	}
	for p, h := range hits {
		if h != 1 {
			t.Errorf("%s fetched %d times, want once", p, h)
		}
	}
	t.Logf("fetcher at the end: %+v", a.Stats().CertFetches)
}
