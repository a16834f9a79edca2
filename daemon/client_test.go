package daemon

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A daemon that is running but slow (a `down` waiting on a silent peer) is
// not reported as unreachable, and one that is not running is.
func TestClientErrorsSayWhatHappened(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "slow.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	defer close(release)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = NewClient(sock).Down(ctx, "b")
	if err == nil || strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), "did not answer in time") {
		t.Errorf("slow daemon: %v", err)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_, err = NewClient(filepath.Join(t.TempDir(), "none.sock")).Sessions(ctx2)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the petrel daemon") {
		t.Errorf("no daemon: %v", err)
	}
}
