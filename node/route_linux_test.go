//go:build linux

package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/config"
)

// The route-based namespace test: two network namespaces joined by a veth
// pair (192.0.2.1 <-> 192.0.2.2), protected hosts 10.1.0.1 and 10.2.0.1
// on lo, and in each namespace this test binary re-executed as a petrel
// node whose child has `interface:`:
//
//	pr-rta: ping 10.1.0.1 -> route 10.2.0.0/24 dev vti-b -> ESP/UDP -> veth
//	pr-rtb: veth -> ESP/UDP -> vti-a -> 10.2.0.1 (lo)
//
// The routes are the test's (the admin's); the node installs no policies.
// Root only; skipped without root, /dev/net/tun, ip or ping.

const routeHelperEnv = "PETREL_NODE_ROUTE_HELPER"

// TestRouteHelper is the re-executed node: it loads the configuration in
// $PETREL_NODE_ROUTE_HELPER, prints "ready", answers "sessions" with one
// JSON line and "reload FILE" with "reloaded", and closes the node when
// stdin ends.
func TestRouteHelper(t *testing.T) {
	path := os.Getenv(routeHelperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := New(Options{Config: cfg, Logger: log})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready", n.Backend())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "sessions":
			s, err := n.Sessions()
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			b, _ := json.Marshal(s)
			fmt.Println(string(b))
		case len(f) == 2 && f[0] == "reload":
			c, err := config.Load(f[1])
			if err == nil {
				_, err = n.Reload(c)
			}
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			fmt.Println("reloaded")
		}
	}
	n.Close(context.Background())
	os.Exit(0)
}

func routeConfig(local, remote, lts, rts, dev, start, dp string) string {
	return fmt.Sprintf(`daemon:
  listen: %[1]s
  dataplane: %[7]s
connections:
  peer:
    local_addrs: %[1]s
    remote_addrs: %[2]s
    encap: yes
    proposals: aes256gcm16-prfsha256-x25519
    local:
      auth: psk
      id: %[1]s
    remote:
      auth: psk
      id: %[2]s
    children:
      net:
        local_ts: %[3]s
        remote_ts: %[4]s
        esp_proposals: aes256gcm16
        interface: %[5]s
        start_action: %[6]s
secrets:
  s:
    secret: 0x0123456789abcdef0123456789abcdef
`, local, remote, lts, rts, dev, start, dp)
}

type routeNode struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startRouteNode(t *testing.T, ns, cfgPath string) *routeNode {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestRouteHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), routeHelperEnv+"="+cfgPath)
	cmd.Stderr = &prefixWriter{t: t, prefix: ns}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &routeNode{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		defer close(r.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(r.stop)
	if l := r.line(); !strings.HasPrefix(l, "ready") {
		t.Fatalf("%s: %q", ns, l)
	}
	return r
}

func (r *routeNode) line() string {
	select {
	case l := <-r.lines:
		return l
	case <-time.After(15 * time.Second):
		r.t.Fatal("route node: no answer in 15 s")
	}
	return ""
}

func (r *routeNode) ask(cmd string) string {
	fmt.Fprintln(r.stdin, cmd)
	return r.line()
}

// stop closes stdin (the node deletes its SAs and closes) and waits.
func (r *routeNode) stop() {
	if r.stdin == nil {
		return
	}
	r.stdin.Close()
	r.stdin = nil
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
}

type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + ": " + l)
	}
	return len(p), nil
}

func needRouteRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, TUN)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	for _, tool := range []string{"ip", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool)
		}
	}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// linkExists says whether ns has an interface dev.
func linkExists(ns, dev string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", dev).Run() == nil
}

// waitLink waits up to 5 s for dev to appear (want) or go (!want).
func waitLink(t *testing.T, ns, dev string, want bool) {
	t.Helper()
	for range 50 {
		if linkExists(ns, dev) == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: link %s exists=%v, want %v", ns, dev, !want, want)
}

func pingOK(ns, src, dst string) bool {
	return exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1", "-I", src, dst).Run() == nil
}

func TestRouteBasedChildNetns(t *testing.T) {
	needRouteRoot(t)
	nsA, nsB := fmt.Sprintf("pr-rta-%d", os.Getpid()), fmt.Sprintf("pr-rtb-%d", os.Getpid())
	for _, ns := range []string{nsA, nsB} {
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", nsA, "link", "add", "pr-va", "type", "veth", "peer", "name", "pr-vb", "netns", nsB)
	sh(t, "ip", "-n", nsA, "addr", "add", "192.0.2.1/24", "dev", "pr-va")
	sh(t, "ip", "-n", nsB, "addr", "add", "192.0.2.2/24", "dev", "pr-vb")
	sh(t, "ip", "-n", nsA, "link", "set", "pr-va", "up")
	sh(t, "ip", "-n", nsB, "link", "set", "pr-vb", "up")
	sh(t, "ip", "-n", nsA, "addr", "add", "10.1.0.1/32", "dev", "lo")
	sh(t, "ip", "-n", nsA, "addr", "add", "10.3.0.1/32", "dev", "lo") // outside a's selectors
	sh(t, "ip", "-n", nsB, "addr", "add", "10.2.0.1/32", "dev", "lo")

	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfgA := write("a.yaml", routeConfig("192.0.2.1", "192.0.2.2", "10.1.0.0/24", "10.2.0.0/24", "vti-b", "start", "auto"))
	cfgB := write("b.yaml", routeConfig("192.0.2.2", "192.0.2.1", "10.2.0.0/24", "10.1.0.0/24", "vti-a", "none", "userspace-tun"))
	b := startRouteNode(t, nsB, cfgB)
	// The devices exist as soon as the connections are loaded, before
	// any SA: the admin can route into them.
	waitLink(t, nsB, "vti-a", true)
	a := startRouteNode(t, nsA, cfgA)
	waitLink(t, nsA, "vti-b", true)
	if linkExists(nsA, "petrel0") {
		t.Fatal("a policy-based TUN was made for a route-based child")
	}
	sh(t, "ip", "-n", nsA, "route", "add", "10.2.0.0/24", "dev", "vti-b")
	sh(t, "ip", "-n", nsB, "route", "add", "10.1.0.0/24", "dev", "vti-a")

	ok := false
	for i := 0; i < 20 && !ok; i++ { // the SA comes up while we ping
		ok = pingOK(nsA, "10.1.0.1", "10.2.0.1")
	}
	if !ok {
		t.Fatal("no ping through the route-based tunnel")
	}
	if !pingOK(nsA, "10.1.0.1", "10.2.0.1") {
		t.Fatal("second ping failed")
	}
	// No policies: the kernel route is all that steers traffic, and the
	// node left the remote selectors unrouted.
	if out := sh(t, "ip", "-n", nsA, "route", "show", "10.2.0.0/24"); !strings.Contains(out, "dev vti-b") {
		t.Fatalf("route: %q", out)
	}

	// Outside the selectors: a's source 10.3.0.1 is not in b's remote TS;
	// a seals it (route-based), b drops and counts it (RFC 4301 §5.2).
	before := policyDrops(t, b)
	if pingOK(nsA, "10.3.0.1", "10.2.0.1") {
		t.Fatal("ping from outside the selectors went through")
	}
	if after := policyDrops(t, b); after <= before {
		t.Fatalf("b's policy drops %d -> %d, want them counted", before, after)
	}

	// Reload a with the child's interface renamed: vti-b goes, vti-c
	// comes, and after the admin routes into it traffic flows again.
	cfgA2 := write("a2.yaml", routeConfig("192.0.2.1", "192.0.2.2", "10.1.0.0/24", "10.2.0.0/24", "vti-c", "start", "auto"))
	if l := a.ask("reload " + cfgA2); l != "reloaded" {
		t.Fatalf("reload: %q", l)
	}
	waitLink(t, nsA, "vti-b", false)
	waitLink(t, nsA, "vti-c", true)
	sh(t, "ip", "-n", nsA, "route", "replace", "10.2.0.0/24", "dev", "vti-c")
	ok = false
	for i := 0; i < 20 && !ok; i++ {
		ok = pingOK(nsA, "10.1.0.1", "10.2.0.1")
	}
	if !ok {
		t.Fatal("no ping through the reloaded route-based device")
	}

	// Shutdown removes the devices.
	a.stop()
	b.stop()
	waitLink(t, nsA, "vti-c", false)
	waitLink(t, nsB, "vti-a", false)
}

// policyDrops sums the policy drops of every Child SA of a node.
func policyDrops(t *testing.T, r *routeNode) uint64 {
	t.Helper()
	l := r.ask("sessions")
	var ss []Session
	if err := json.Unmarshal([]byte(l), &ss); err != nil {
		t.Fatalf("sessions: %v: %q", err, l)
	}
	var total uint64
	for _, s := range ss {
		for _, c := range s.Children {
			total += c.PolicyDrops
		}
	}
	return total
}
