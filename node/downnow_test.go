package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

// DownNow against a peer that stopped answering: Down runs into its time
// limit (the Delete is being retransmitted), DownNow returns at once with
// the IKE SA and its Child SA gone from the node and its data plane.
func TestDownNowSilentPeer(t *testing.T) {
	a, b, _, _ := startPair(t, LoopbackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	// b's loop is held: it reads nothing and answers nothing.
	release, held := make(chan struct{}), make(chan struct{})
	go b.do(func(time.Time) { close(held); <-release })
	<-held
	defer close(release)

	short, cancelShort := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancelShort()
	if _, err := a.Down(short, "b"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Down with a silent peer: %v", err)
	}
	// While its Delete is retransmitted the IKE SA is listed as deleting,
	// not as half-open, and keeps the peer's identity.
	if s, err := a.Sessions(); err != nil || len(s) != 1 || s[0].State != "deleting" || s[0].RemoteID == "" {
		t.Fatalf("listing while the Delete is unanswered: %+v (%v)", s, err)
	}
	start := time.Now()
	if n, err := a.DownNow("b"); err != nil || n != 1 {
		t.Fatalf("DownNow: %d %v", n, err)
	}
	took := time.Since(start)
	if s, err := a.Sessions(); err != nil || len(s) != 0 {
		t.Fatalf("after DownNow: %d sessions (%v)", len(s), err)
	}
	var children int
	if err := a.do(func(time.Time) { children = len(a.children) }); err != nil || children != 0 {
		t.Fatalf("after DownNow: %d Child SAs in the data plane (%v)", children, err)
	}
	if _, err := a.DownNow("b"); !errors.Is(err, ErrNoSA) {
		t.Errorf("second DownNow: %v", err)
	}
	t.Logf("DownNow returned in %v", took.Round(time.Millisecond))
}
