// Package httpfetch is the HTTP implementation of cert.Fetcher, used by the
// daemon to fetch CRLs, OCSP responses and hash-and-URL certificates. It is
// kept out of package cert so that the sans-I/O protocol core, which may
// import cert, never imports net/http. It may import cert and the standard
// library.
package httpfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/petrel-vpn/petrel/cert"
)

// DefaultTimeout bounds one fetch when Fetcher.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Fetcher fetches over HTTP with a timeout and a size bound.
type Fetcher struct {
	// Client is the HTTP client; nil means a client that follows no more
	// than 3 redirects.
	Client  *http.Client
	Timeout time.Duration // per fetch; 0: DefaultTimeout
}

var defaultClient = &http.Client{
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("httpfetch: too many redirects")
		}
		return nil
	},
}

// Fetch performs a GET, or a POST when req.Body is not nil, and returns the
// body of a 200 response no longer than req.MaxSize (0: 1 MiB).
func (f *Fetcher) Fetch(ctx context.Context, req cert.Request) ([]byte, error) {
	timeout := f.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	method, body := http.MethodGet, io.Reader(nil)
	if req.Body != nil {
		method, body = http.MethodPost, bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, req.URL, body)
	if err != nil {
		return nil, fmt.Errorf("httpfetch: %w", err)
	}
	if req.ContentType != "" {
		hr.Header.Set("Content-Type", req.ContentType)
	}
	client := f.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("httpfetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("httpfetch: %s: HTTP %s", req.URL, resp.Status)
	}
	max := req.MaxSize
	if max <= 0 {
		max = 1 << 20
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("httpfetch: %s: %d octets, limit %d", req.URL, resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("httpfetch: %s: %w", req.URL, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("httpfetch: %s: more than %d octets", req.URL, max)
	}
	return data, nil
}
