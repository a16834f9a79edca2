package cert

import (
	"context"
	"strings"
)

// Request is one HTTP fetch: a GET, or a POST when Body is not nil.
type Request struct {
	URL         string
	ContentType string // for POST
	Body        []byte
	// MaxSize bounds the response; a longer one is an error.
	MaxSize int64
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
