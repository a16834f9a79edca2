package cert

import (
	"context"
	"errors"
	"strings"
)

// Request is one HTTP fetch: a GET, or a POST when Body is not nil.
type Request struct {
	URL         string
	ContentType string // for POST
	Body        []byte
	// MaxSize bounds the response; a longer one is an error.
	MaxSize int64
	// Peer marks a URL the peer chose before it authenticated: a
	// hash-and-URL certificate (RFC 7296 §3.6), fetched before anything
	// about the peer is verified. Revocation URLs come from certificates
	// that chain to a trust anchor. A Fetcher may give the peer's fetches
	// a budget of their own, so that no peer can crowd out revocation.
	Peer bool
}

// Fetcher fetches CRLs, OCSP responses and hash-and-URL certificates. The
// daemon uses cert/httpfetch; tests inject their own. Implementations must
// honour ctx and apply a timeout of their own.
type Fetcher interface {
	Fetch(ctx context.Context, req Request) ([]byte, error)
}

// isHTTPURL reports whether u is an http URL, the only kind fetched (CDPs
// may also name LDAP). RFC 7296 §3.6 hash-and-URL URLs are HTTP as well.
func isHTTPURL(u string) bool {
	return len(u) > 7 && strings.EqualFold(u[:7], "http://")
}

// ErrFetchPending is what a Fetcher returns, wrapped, when the caller let
// it not wait (MayDefer) and it does not hold the answer yet: it has
// started the fetch in the background and will answer the same request at
// once when it completes (with the body, or with the failure). Package
// cert passes such an error up unchanged — never as "revocation status
// unavailable", which under Lenient would accept a certificate whose
// status is only late, nor as a refusal — so that the caller can try the
// whole verification again later (ike.CertVerifier, the node's fetcher).
var ErrFetchPending = errors.New("cert: fetch pending")

type mayDeferKey struct{}

// MayDefer marks ctx so that a Fetcher able to fetch in the background
// may answer a request it does not hold yet with ErrFetchPending instead
// of waiting. Fetchers that cannot ignore the mark and wait as always.
func MayDefer(ctx context.Context) context.Context {
	return context.WithValue(ctx, mayDeferKey{}, true)
}

// Deferrable reports whether ctx was marked by MayDefer.
func Deferrable(ctx context.Context) bool {
	v, _ := ctx.Value(mayDeferKey{}).(bool)
	return v
}

// isPending reports whether err says a fetch is still under way.
func isPending(err error) bool { return errors.Is(err, ErrFetchPending) }
