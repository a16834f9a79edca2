package node

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/petrel-vpn/petrel/dataplane"
)

// syncBuffer is a log sink safe for the node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withProbe(t *testing.T, f func() error) {
	old := probeXFRM
	probeXFRM = f
	t.Cleanup(func() { probeXFRM = old })
}

func TestBackendKind(t *testing.T) {
	for s, want := range map[string]dataplane.Kind{"auto": dataplane.KindAuto, "": dataplane.KindAuto,
		"xfrm": dataplane.KindXFRM, "userspace-tun": dataplane.KindTUN, "netstack": dataplane.KindNetstack} {
		if got := backendKind(s); got != want {
			t.Errorf("%q: %v, want %v", s, got, want)
		}
	}
}

// auto on a kernel without ESP: one line with the probe's reason, then
// userspace.
func TestBackendAutoFallsBack(t *testing.T) {
	reason := "dataplane: backend not available: the kernel has XFRM but no in-kernel ESP (test)"
	withProbe(t, func() error { return errors.New(reason) })
	pa, _, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pa.Config.Daemon.Dataplane != "auto" {
		t.Fatalf("default dataplane %q", pa.Config.Daemon.Dataplane)
	}
	var logs syncBuffer
	n, err := New(Options{Config: pa.Config, Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoAutoStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())
	if got := strings.Count(logs.String(), "using userspace ESP: "+reason); got != 1 {
		t.Fatalf("fallback logged %d times:\n%s", got, logs.String())
	}
	if n.Backend() != "userspace (tun)" || n.DataPlane() == nil || n.DataPlane().Name() != "userspace" {
		t.Fatalf("backend %q", n.Backend())
	}
}

// auto with this machine's own probe: whatever it says is what the node
// logs (here: the kernel lacks ESP, or CAP_NET_ADMIN is missing).
func TestBackendAutoRealProbe(t *testing.T) {
	perr := dataplane.ProbeXFRM()
	if perr == nil {
		t.Skip("this kernel runs ESP in XFRM; the fallback cannot be seen here")
	}
	pa, _, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	n, err := New(Options{Config: pa.Config, Logger: slog.New(slog.NewTextHandler(&logs, nil)), NoAutoStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())
	// The probe's error ends with the kernel's answer; compare the part
	// that names the missing feature.
	want := perr.Error()
	if i := strings.LastIndex(want, ": "); i > 0 {
		want = want[:i]
	}
	if !strings.Contains(logs.String(), "using userspace ESP: "+want) {
		t.Fatalf("log lacks %q:\n%s", want, logs.String())
	}
	if n.Backend() != "userspace (tun)" {
		t.Fatalf("backend %q", n.Backend())
	}
}

// dataplane: xfrm where the kernel cannot: New fails with the reason and
// leaves the ports free.
func TestBackendForcedXFRMFails(t *testing.T) {
	reason := "dataplane: backend not available: the kernel has XFRM but no in-kernel ESP (test)"
	withProbe(t, func() error { return errors.New(reason) })
	pa, _, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pa.Config.Daemon.Dataplane = "xfrm"
	n, err := New(Options{Config: pa.Config, NoAutoStart: true})
	if err == nil {
		n.Close(t.Context())
		t.Fatal("xfrm accepted on a kernel without ESP")
	}
	if err.Error() != "node: dataplane xfrm: "+reason {
		t.Fatalf("error %q", err)
	}
	pa.Config.Daemon.Dataplane = "userspace-tun"
	n, err = New(Options{Config: pa.Config, NoAutoStart: true})
	if err != nil {
		t.Fatalf("ports not released after the failed start: %v", err)
	}
	n.Close(t.Context())
}
