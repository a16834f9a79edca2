package httpfetch

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
)

var _ cert.Fetcher = (*Fetcher)(nil)

func TestFetch(t *testing.T) {
	payload := bytes.Repeat([]byte{0xab}, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/get":
			w.Write(payload)
		case "/post":
			b, _ := io.ReadAll(r.Body)
			w.Write(append([]byte(r.Method+" "+r.Header.Get("Content-Type")+" "), b...))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/chunked":
			for range 10 {
				w.Write(payload)
				w.(http.Flusher).Flush()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server on %s, want 127.0.0.1", srv.URL)
	}
	f := &Fetcher{Timeout: 200 * time.Millisecond}
	ctx := context.Background()

	got, err := f.Fetch(ctx, cert.Request{URL: srv.URL + "/get", MaxSize: 1000})
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("GET: %v, %d octets", err, len(got))
	}
	if _, err := f.Fetch(ctx, cert.Request{URL: srv.URL + "/get", MaxSize: 999}); err == nil {
		t.Error("GET over the size bound (Content-Length) succeeded")
	}
	if _, err := f.Fetch(ctx, cert.Request{URL: srv.URL + "/chunked", MaxSize: 5000}); err == nil || !strings.Contains(err.Error(), "more than 5000") {
		t.Errorf("chunked body over the size bound: %v", err)
	}
	got, err = f.Fetch(ctx, cert.Request{URL: srv.URL + "/post", Body: []byte("req"), ContentType: "application/ocsp-request"})
	if err != nil || string(got) != "POST application/ocsp-request req" {
		t.Errorf("POST: %v, %q", err, got)
	}
	if _, err := f.Fetch(ctx, cert.Request{URL: srv.URL + "/missing"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	// The handler answers 200 after 5 s; only the timeout makes this fail.
	if _, err := f.Fetch(ctx, cert.Request{URL: srv.URL + "/slow"}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("slow fetch: %v, want a deadline error", err)
	}
}
