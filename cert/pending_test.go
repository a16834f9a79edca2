package cert

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// deferringFetcher answers "pending" for the URLs in held while the caller
// allows it (MayDefer), as the daemon's fetcher does on a cache miss; other
// requests go to next.
type deferringFetcher struct {
	next    Fetcher
	mu      sync.Mutex
	held    map[string]bool // URL path suffixes
	failing map[string]bool // URL path suffixes that fail
	pending []string        // URLs answered "pending", in order
}

func (f *deferringFetcher) Fetch(ctx context.Context, req Request) ([]byte, error) {
	f.mu.Lock()
	hold := false
	for s := range f.held {
		hold = hold || strings.HasSuffix(req.URL, s)
	}
	for sfx := range f.failing {
		if strings.HasSuffix(req.URL, sfx) {
			f.mu.Unlock()
			return nil, errors.New("test fetcher: unreachable")
		}
	}
	if hold && Deferrable(ctx) {
		f.pending = append(f.pending, req.URL)
		f.mu.Unlock()
		return nil, fmt.Errorf("test fetcher: %s: %w", req.URL, ErrFetchPending)
	}
	f.mu.Unlock()
	return f.next.Fetch(ctx, req)
}

func (f *deferringFetcher) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = nil
}

// TestRevocationPendingPassesThrough: a revocation fetch that is still
// under way is neither "unavailable" (which Lenient would accept, a
// revoked certificate at first contact) nor a refusal, under every policy;
// once the data is in, the revoked certificate is refused. A refusal of
// another certificate of the chain wins over pending; the checks of the
// whole chain start in one pass; a pending OCSP answer does not hand over
// to the CRL; without MayDefer the fetcher waits as always.
func TestRevocationPendingPassesThrough(t *testing.T) {
	ctx := MayDefer(context.Background())
	for _, pol := range []UnreachablePolicy{Lenient, Strict, IfURI} {
		p := newRevocationPKI(t)
		cred := p.leaf(t, "/inter.crl", "", true)
		var logBuf bytes.Buffer
		v := p.validator(pol, slog.New(slog.NewTextHandler(&logBuf, nil)), t0)
		f := &deferringFetcher{next: httpFetcher{}, held: map[string]bool{"/inter.crl": true}}
		v.Revocation.Fetcher = f
		_, err := v.Validate(ctx, cred.Cert, cred.Chain)
		if !errors.Is(err, ErrFetchPending) || ReasonOf(err) != 0 {
			t.Fatalf("%v: pending CRL gave %v, want ErrFetchPending and no reason", pol, err)
		}
		if strings.Contains(logBuf.String(), "unavailable") {
			t.Errorf("%v: pending logged as unavailable:\n%s", pol, logBuf.String())
		}
		// The intermediate's CRL (at the root) was fetched in the same
		// pass although the leaf's is pending.
		if p.hitCount("/root.crl") != 1 {
			t.Errorf("%v: root CRL fetched %d times in the pending pass, want 1", pol, p.hitCount("/root.crl"))
		}
		// Without MayDefer the same fetcher waits (here: fetches).
		if _, err := v.Validate(context.Background(), cred.Cert, cred.Chain); ReasonOf(err) != ReasonRevokedCRL {
			t.Errorf("%v: blocking verification: %v", pol, err)
		}
		f.release()
		if _, err := v.Validate(ctx, cred.Cert, cred.Chain); ReasonOf(err) != ReasonRevokedCRL {
			t.Errorf("%v: after the CRL came: %v, want revoked", pol, err)
		}
	}

	// The verdict and its reason are those of waiting for every fetch:
	// the first certificate not accepted, leaf first. With the leaf's CRL
	// pending and the intermediate revoked, that is pending (the leaf may
	// be revoked too, and that would be the reason given); a revoked
	// intermediate under a leaf whose CRL says good is refused.
	p := newRevocationPKI(t)
	cred := p.leaf(t, "/inter.crl", "", true)
	p.mu.Lock()
	p.revoked[p.inter.Cert.SerialNumber.String()] = true
	p.mu.Unlock()
	v := p.validator(Lenient, nil, t0)
	df := &deferringFetcher{next: httpFetcher{}, held: map[string]bool{"/inter.crl": true}}
	v.Revocation.Fetcher = df
	if _, err := v.Validate(ctx, cred.Cert, cred.Chain); !errors.Is(err, ErrFetchPending) {
		t.Errorf("revoked intermediate, leaf pending: %v, want pending", err)
	}
	if p.hitCount("/root.crl") != 1 {
		t.Error("the intermediate's CRL was not fetched in the pending pass")
	}
	df.release()
	_, err := v.Validate(ctx, cred.Cert, cred.Chain)
	var ce *Error
	if !errors.As(err, &ce) || ce.Reason != ReasonRevokedCRL || ce.Subject != cred.Cert.Subject.String() {
		t.Errorf("revoked leaf under a revoked intermediate: %v, want the leaf's CRL refusal", err)
	}
	good := p.leaf(t, "/inter.crl", "", false)
	v = p.validator(Lenient, nil, t0) // nothing cached
	df = &deferringFetcher{next: httpFetcher{}, held: map[string]bool{"/root.crl": true}}
	v.Revocation.Fetcher = df
	if _, err := v.Validate(ctx, good.Cert, good.Chain); !errors.Is(err, ErrFetchPending) {
		t.Errorf("good leaf, intermediate's CRL pending: %v", err)
	}
	df.release()
	if _, err := v.Validate(ctx, good.Cert, good.Chain); !errors.As(err, &ce) || ce.Reason != ReasonRevokedCRL || ce.Subject != p.inter.Cert.Subject.String() {
		t.Errorf("good leaf, revoked intermediate: %v, want the intermediate's refusal", err)
	}

	// Lenient, the intermediate's CRL unreachable: while the leaf's is
	// pending, no warning is logged (it would be on every attempt); once
	// the verdict is in, one for the intermediate.
	p = newRevocationPKI(t)
	cred = p.leaf(t, "/inter.crl", "", false)
	var warnBuf bytes.Buffer
	v = p.validator(Lenient, slog.New(slog.NewTextHandler(&warnBuf, nil)), t0)
	df = &deferringFetcher{next: httpFetcher{}, held: map[string]bool{"/inter.crl": true}, failing: map[string]bool{"/root.crl": true}}
	v.Revocation.Fetcher = df
	for range 3 {
		if _, err := v.Validate(ctx, cred.Cert, cred.Chain); !errors.Is(err, ErrFetchPending) {
			t.Fatalf("leaf pending, intermediate unreachable: %v", err)
		}
	}
	if warnBuf.Len() != 0 {
		t.Errorf("warnings while pending:\n%s", warnBuf.String())
	}
	df.release()
	if _, err := v.Validate(ctx, cred.Cert, cred.Chain); err != nil {
		t.Fatalf("lenient, intermediate unreachable: %v", err)
	}
	if n := strings.Count(warnBuf.String(), "revocation status unavailable"); n != 1 || !strings.Contains(warnBuf.String(), "intermediate") {
		t.Errorf("want one warning for the intermediate:\n%s", warnBuf.String())
	}

	// OCSP pending: pending, and the CRL is not asked meanwhile (a definite
	// OCSP answer stays final).
	p = newRevocationPKI(t)
	cred = p.leaf(t, "/inter.crl", "/ocsp", false)
	v = p.validator(Strict, nil, t0)
	f := &deferringFetcher{next: httpFetcher{}, held: map[string]bool{"/ocsp": true}}
	v.Revocation.Fetcher = f
	if _, err := v.Validate(ctx, cred.Cert, cred.Chain); !errors.Is(err, ErrFetchPending) {
		t.Errorf("OCSP pending: %v", err)
	}
	if p.hitCount("/inter.crl") != 0 {
		t.Error("the CRL was fetched while the OCSP answer was pending")
	}
	f.release()
	if _, err := v.Validate(ctx, cred.Cert, cred.Chain); err != nil {
		t.Errorf("OCSP answered: %v", err)
	}
}

// TestHashURLPending: a hash-and-URL certificate still being fetched makes
// Remote.Verify say "pending" (not ReasonHashURL); every such CERT payload
// is asked for in the same pass; afterwards it verifies.
func TestHashURLPending(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	cred := p.leaf(t, gatewayTemplate(), KeyECDSAP256)
	ff := &fakeFetcher{bodies: map[string][]byte{"http://c/gw.der": cred.Cert.Raw, "http://c/inter.der": p.inter.Cert.Raw}}
	f := &deferringFetcher{next: ff, held: map[string]bool{".der": true}}
	trust := NewStore(nil, []*x509.Certificate{p.root.Cert})
	remote := &Remote{Validator: &Validator{Store: trust, Now: fixedClock(t0)}, HashURL: &HashURLResolver{Fetcher: f}}
	id := ID{wire.ID_FQDN, []byte("gw.example.net")}
	octets := signedOctets(t, id)
	auth, err := SignAuth(nil, cred.Key, wire.AuthDigitalSignature, SchemeECDSASHA256, octets)
	if err != nil {
		t.Fatal(err)
	}
	ps := []wire.Payload{HashURL(wire.CertHashURLX509, cred.Cert.Raw, "http://c/gw.der"),
		HashURL(wire.CertHashURLX509, p.inter.Cert.Raw, "http://c/inter.der"), auth}
	in := VerifyInput{SignedOctets: octets, PeerID: id, Payloads: ps}
	ctx := MayDefer(context.Background())
	if _, err := remote.Verify(ctx, in); !errors.Is(err, ErrFetchPending) || ReasonOf(err) != 0 {
		t.Fatalf("pending hash-and-URL: %v", err)
	}
	if len(f.pending) != 2 {
		t.Errorf("asked for %v in the pending pass, want both objects", f.pending)
	}
	// A malformed CERT after the pending one does not decide yet: waiting
	// for the fetch, its answer would have come first.
	bad := VerifyInput{SignedOctets: octets, PeerID: id, Payloads: []wire.Payload{ps[0],
		&wire.Cert{Encoding: wire.CertX509Signature, Data: []byte("not DER")}, auth}}
	if _, err := remote.Verify(ctx, bad); !errors.Is(err, ErrFetchPending) {
		t.Errorf("pending, then malformed: %v, want pending", err)
	}
	f.release()
	if _, err := remote.Verify(ctx, in); err != nil {
		t.Errorf("after the fetch: %v", err)
	}
	if _, err := remote.Verify(ctx, bad); ReasonOf(err) != ReasonMalformed {
		t.Errorf("after the fetch, malformed: %v", err)
	}
}
