package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/node"
)

// pair starts two nodes on loopback with netstacks and brings the tunnel up
// through a's control API.
func pair(t *testing.T) (a, b *node.Node, c *Client, nsA func(ctx context.Context, network, addr string) (net.Conn, error), peerB node.LoopbackPeer) {
	t.Helper()
	pa, pb, err := node.WriteLoopbackPair(t.TempDir(), node.LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err = node.New(node.Options{Config: pb.Config})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	a, err = node.New(node.Options{Config: pa.Config})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	na, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := nb.ListenTCP(&net.TCPAddr{IP: net.ParseIP(pb.Addr), Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	api := &http.Server{Handler: (&Server{Node: a}).Handler()}
	go api.Serve(l)
	t.Cleanup(func() { api.Close() })
	return a, b, NewClient(sock), na.DialContext, pb
}

// The API drives a real node: up, sessions, events, down; errors come back
// as one line naming the cause.
func TestAPI(t *testing.T) {
	_, _, c, _, _ := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan node.Event, 16)
	go c.Events(ctx, func(e node.Event) bool { got <- e; return true })
	time.Sleep(50 * time.Millisecond)
	up, err := c.Up(ctx, "b")
	if err != nil || up.Event.Kind != "child-up" || up.Event.InSPI == "" {
		t.Fatalf("up: %+v %v", up, err)
	}
	ss, err := c.Sessions(ctx)
	if err != nil || len(ss) != 1 || ss[0].Children[0].InSPI != up.Event.InSPI {
		t.Fatalf("sessions: %+v %v", ss, err)
	}
	kinds := map[string]bool{}
	for deadline := time.After(5 * time.Second); !kinds["child-up"]; {
		select {
		case e := <-got:
			kinds[e.Kind] = true
		case <-deadline:
			t.Fatalf("events seen: %v", kinds)
		}
	}
	if !kinds["ike-up"] {
		t.Errorf("no ike-up event before child-up: %v", kinds)
	}
	if d, err := c.Down(ctx, "b"); err != nil || d.Deleted != 1 {
		t.Fatalf("down: %+v %v", d, err)
	}
	_, err = c.Down(ctx, "b")
	if err == nil || !strings.Contains(err.Error(), "no IKE SA") || strings.Contains(err.Error(), "\n") {
		t.Errorf("second down: %v", err)
	}
	if _, err := c.Up(ctx, "missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("up missing: %v", err)
	}
	if _, err := NewClient(filepath.Join(t.TempDir(), "none.sock")).Sessions(ctx); err == nil ||
		!strings.Contains(err.Error(), "cannot reach the petrel daemon") {
		t.Errorf("no daemon: %v", err)
	}
}

// Scraping the metrics listener after traffic: SA gauges, setups and ESP
// counters reflect the real tunnel.
func TestMetricsScrape(t *testing.T) {
	a, _, c, dial, pb := pair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + pb.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv, addr, err := ServeMetrics("127.0.0.1:0", a, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	r, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	text := string(body)
	value := func(series string) float64 {
		m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no %s in:\n%s", series, text)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	if v := value(`petrel_ike_sas{state="established"}`); v != 1 {
		t.Errorf("established SAs %v", v)
	}
	if v := value(`petrel_child_sas`); v != 1 {
		t.Errorf("child SAs %v", v)
	}
	if v := value(`petrel_setups_total{kind="ike"}`); v != 1 {
		t.Errorf("ike setups %v", v)
	}
	if v := value(`petrel_esp_packets_total{dir="out"}`); v < 3 {
		t.Errorf("ESP packets out %v", v)
	}
	if v := value(`petrel_esp_bytes_total{dir="in"}`); v <= 0 {
		t.Errorf("ESP bytes in %v", v)
	}
	if v := value(`petrel_esp_dropped_total{reason="integrity"}`); v != 0 {
		t.Errorf("integrity drops %v", v)
	}
	value(`petrel_cookie_challenges_sent_total`)
	for _, m := range []string{`petrel_rekeys_total{kind="ike"}`, `petrel_rekeys_total{kind="child"}`, `petrel_dpd_events_total{event="peer_dead"}`, `petrel_cert_fetches_total{result="refused"}`} {
		if v := value(m); v != 0 {
			t.Errorf("%s = %v on a fresh SA, want 0", m, v)
		}
	}
}

// sd_notify: READY=1 reaches the NOTIFY_SOCKET datagram socket.
func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}

// Per-subsystem levels: ike at debug, the rest at warn.
func TestLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, config.Log{Format: "json", Level: "warn", Levels: map[string]string{"ike": "debug"}})
	if err != nil {
		t.Fatal(err)
	}
	log.With("subsystem", "ike").Debug("ike detail")
	log.With("subsystem", "control").Info("control chatter")
	log.Info("base chatter")
	log.Warn("base warning")
	out := buf.String()
	if !strings.Contains(out, "ike detail") || strings.Contains(out, "chatter") || !strings.Contains(out, "base warning") {
		t.Errorf("log output:\n%s", out)
	}
	if _, err := NewLogger(os.Stderr, config.Log{Level: "loud"}); err == nil {
		t.Error("level loud accepted")
	}
}

// A second daemon may not take over a live socket.
func TestListenRefusesLiveSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, err := Listen(sock); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second Listen: %v", err)
	}
}
