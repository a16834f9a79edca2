package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/config"
)

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PETREL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startPair starts two nodes from a loopback pair.
func startPair(t *testing.T, o LoopbackOptions) (a, b *Node, pa, pb LoopbackPeer) {
	t.Helper()
	pa, pb, err := WriteLoopbackPair(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	a, b = startNodes(t, pa, pb)
	return a, b, pa, pb
}

// startNodes starts b, then a, from their (possibly edited) configurations;
// both are closed when the test ends.
func startNodes(t *testing.T, pa, pb LoopbackPeer) (a, b *Node) {
	t.Helper()
	b, err := New(Options{Config: pb.Config, Logger: testLogger(t).With("node", "b")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	a, err = New(Options{Config: pa.Config, Logger: testLogger(t).With("node", "a")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	return a, b
}

// Two nodes on 127.0.0.1 with netstack data planes:
//
//	a                                   b
//	IKE_SA_INIT (port NATT-a → NATT-b) →
//	                                   ← IKE_SA_INIT
//	IKE_AUTH {SA, TSi, TSr}            →
//	                                   ← IKE_AUTH (Child SA "net")
//	HTTP GET 10.2.0.1 ==ESP-in-UDP====>  served by b's netstack
func TestTunnelCarriesHTTP(t *testing.T) {
	a, b, pa, pb := startPair(t, LoopbackOptions{})
	nsA, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := nsB.ListenTCP(&net.TCPAddr{IP: net.ParseIP(pb.Addr), Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from b", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := a.Up(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != "child-up" || ev.Child != "net" {
		t.Fatalf("Up returned %+v", ev)
	}
	client := &http.Client{Transport: &http.Transport{DialContext: nsA.DialContext}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + pb.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "hello " + pa.Addr; !strings.HasPrefix(string(body), want) {
		t.Fatalf("body %q, want prefix %q", body, want)
	}

	sa, err := a.Sessions()
	if err != nil || len(sa) != 1 {
		t.Fatalf("a sessions: %v %v", sa, err)
	}
	sb, _ := b.Sessions()
	if len(sb) != 1 {
		t.Fatalf("b has %d sessions", len(sb))
	}
	s, r := sa[0], sb[0]
	if s.Role != "initiator" || r.Role != "responder" || s.State != "established" {
		t.Errorf("roles %s/%s state %s", s.Role, r.Role, s.State)
	}
	if s.SPIi != r.SPIi || s.SPIr != r.SPIr {
		t.Errorf("IKE SPIs differ: %s/%s vs %s/%s", s.SPIi, s.SPIr, r.SPIi, r.SPIr)
	}
	if s.Encr != "AES_GCM_16-256" || s.PRF != "PRF_HMAC_SHA2_256" || s.DHGroup != "CURVE_25519" || r.DHGroup != s.DHGroup {
		t.Errorf("IKE suite %q %q %q (b: %q)", s.Encr, s.PRF, s.DHGroup, r.DHGroup)
	}
	if s.LocalID != "a.petrel.test" || s.RemoteID != "b.petrel.test" || r.RemoteID != "a.petrel.test" {
		t.Errorf("identities %q %q / b sees %q", s.LocalID, s.RemoteID, r.RemoteID)
	}
	if !s.NATT || len(s.Children) != 1 || len(r.Children) != 1 {
		t.Fatalf("nat-t %v children %d/%d", s.NATT, len(s.Children), len(r.Children))
	}
	c, rc := s.Children[0], r.Children[0]
	if c.InSPI != rc.OutSPI || c.OutSPI != rc.InSPI {
		t.Errorf("Child SPIs a %s/%s b %s/%s", c.InSPI, c.OutSPI, rc.InSPI, rc.OutSPI)
	}
	if c.Encr != "AES_GCM_16-256" || c.LocalTS[0] != "10.1.0.0/24" || c.RemoteTS[0] != "10.2.0.0/24" {
		t.Errorf("child %+v", c)
	}
	// The last segments may still be in flight: b has received at most
	// what a sent, and something.
	if c.PacketsTx == 0 || c.PacketsRx == 0 || rc.PacketsRx == 0 || rc.PacketsRx > c.PacketsTx || rc.BytesRx > c.BytesTx {
		t.Errorf("counters a tx %d/%d rx %d, b rx %d/%d", c.PacketsTx, c.BytesTx, c.PacketsRx, rc.PacketsRx, rc.BytesRx)
	}

	// b learns of the delete from a's INFORMATIONAL.
	events, stop := b.Subscribe()
	defer stop()
	if n, err := a.Down(ctx, "b"); err != nil || n != 1 {
		t.Fatalf("Down: %d %v", n, err)
	}
	waitEvent(t, events, "ike-down")
	if sb, _ := b.Sessions(); len(sb) != 0 {
		t.Errorf("b still has %d sessions after the delete", len(sb))
	}
	if _, err := a.Down(ctx, "b"); err == nil {
		t.Error("second Down succeeded")
	}
	if _, err := a.Up(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Up(nope): %v", err)
	}
}

func waitEvent(t *testing.T, events <-chan Event, kind string) Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// A wrong PSK: b refuses IKE_AUTH, a's Up says why in one line and a
// counts the failure by reason.
func TestUpReportsAuthFailure(t *testing.T) {
	pa, pb, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(pb.File)
	i := strings.Index(string(text), "secret: 0x")
	wrong := string(text[:i]) + "secret: 0x" + strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(pb.File, []byte(wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgB, err := config.Load(pb.File)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Config: cfgB, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	a, err := New(Options{Config: pa.Config, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = a.Up(ctx, "b")
	se, ok := errors.AsType[*SetupError](err)
	if !ok || se.Reason != "AUTHENTICATION_FAILED" || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Up: %v", err)
	}
	if got := a.Stats().Failures["ike:AUTHENTICATION_FAILED"]; got != 1 {
		t.Errorf("a counts %d AUTHENTICATION_FAILED, stats %+v", got, a.Stats().Failures)
	}
	if s, _ := a.Sessions(); len(s) != 0 {
		t.Errorf("a keeps %d sessions", len(s))
	}
	// The core reports no event for a responder's failed IKE_AUTH, so b
	// can only show that nothing came up.
	if st := b.Stats(); st.IKEUp != 0 || st.Endpoint.Received < 2 {
		t.Errorf("b stats %+v", st)
	}
}

// start_action: trap: a's policies are in place before any SA; the first
// packet towards b's network raises an Acquire, a initiates, and the TCP
// connection (its SYN retransmitted) completes through the new SA.
func TestTrapInitiatesOnTraffic(t *testing.T) {
	a, b, pa, pb := startPair(t, LoopbackOptions{StartAction: "trap"})
	nsA, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := nsB.ListenTCP(&net.TCPAddr{IP: net.ParseIP(pb.Addr), Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "trapped") })}
	go srv.Serve(ln)
	defer srv.Close()
	if s, _ := a.Sessions(); len(s) != 0 {
		t.Fatalf("a has %d sessions before traffic", len(s))
	}
	client := &http.Client{Transport: &http.Transport{DialContext: nsA.DialContext}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + pb.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "trapped" {
		t.Fatalf("body %q", body)
	}
	s, _ := a.Sessions()
	if len(s) != 1 || s[0].Role != "initiator" || s[0].Children[0].PacketsTx == 0 {
		t.Fatalf("sessions after traffic: %+v", s)
	}
}

// Reload with a changed ESP proposal list: the old SA is deleted, a new one
// takes over under the same selectors, and traffic flows through it (the
// policies are shared by the child's SAs, whichever order the old SA's
// delete and the new SA's install come in).
func TestReloadChangedKeepsTraffic(t *testing.T) {
	a, b, pa, pb := startPair(t, LoopbackOptions{StartAction: "start"})
	nsA, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := nsB.ListenTCP(&net.TCPAddr{IP: net.ParseIP(pb.Addr), Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	defer srv.Close()
	get := func() {
		t.Helper()
		// A fresh connection each time, so it uses the current SA.
		client := &http.Client{Transport: &http.Transport{DialContext: nsA.DialContext, DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := client.Get("http://" + pb.Addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	waitSessions := func(check func([]Session) bool) []Session {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			s, _ := a.Sessions()
			if check(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("sessions: %+v", s)
			}
		}
	}
	established := func(encr string) func([]Session) bool {
		return func(s []Session) bool {
			return len(s) == 1 && s[0].State == "established" && len(s[0].Children) == 1 && s[0].Children[0].Encr == encr
		}
	}
	before := waitSessions(established("AES_GCM_16-256"))
	get()

	text, _ := os.ReadFile(pa.File)
	changed := strings.Replace(string(text), "esp_proposals: aes256gcm16", "esp_proposals: aes128gcm16, aes256gcm16", 1)
	if err := os.WriteFile(pa.File, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(pa.File)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Reload(cfg)
	if err != nil || len(res.Changed) != 1 || res.Changed[0] != "b" {
		t.Fatalf("reload: %+v %v", res, err)
	}
	// b accepts only AES-GCM-256, so the new SA still uses it; what
	// changes is the SA itself.
	after := waitSessions(func(s []Session) bool {
		return established("AES_GCM_16-256")(s) && s[0].SPIi != before[0].SPIi
	})
	get()
	s, _ := a.Sessions()
	if s[0].Children[0].PacketsRx == 0 || s[0].SPIi != after[0].SPIi {
		t.Errorf("no traffic on the new SA: %+v", s[0].Children[0])
	}
}
