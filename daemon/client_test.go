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

// fakeNode records which down the API called.
type fakeNode struct {
	Node
	downs, nows []string
}

func (f *fakeNode) Down(ctx context.Context, name string) (int, error) {
	f.downs = append(f.downs, name)
	return 1, nil
}

func (f *fakeNode) DownNow(name string) (int, error) {
	f.nows = append(f.nows, name)
	return 2, nil
}

// POST /v1/connections/NAME/down waits for the peer; with ?force=1 it
// takes the forced path (Client.DownNow, `petrel down --force`).
func TestDownForceRoute(t *testing.T) {
	f := &fakeNode{}
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Server{Handler: (&Server{Node: f}).Handler()}
	go api.Serve(l)
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := NewClient(sock)
	if r, err := c.Down(ctx, "x y"); err != nil || r.Deleted != 1 {
		t.Fatalf("down: %+v %v", r, err)
	}
	if r, err := c.DownNow(ctx, "x y"); err != nil || r.Deleted != 2 {
		t.Fatalf("down --force: %+v %v", r, err)
	}
	if len(f.downs) != 1 || len(f.nows) != 1 || f.downs[0] != "x y" || f.nows[0] != "x y" {
		t.Fatalf("calls: down %q, down now %q", f.downs, f.nows)
	}
}
