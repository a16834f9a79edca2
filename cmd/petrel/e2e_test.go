package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/node"
)

// extraConn is a connection entry for the loopback configurations.
func extraConn(name, me, peer, lts, rts, esp, start string) string {
	return fmt.Sprintf(`  %s:
    local_addrs: 127.0.0.1
    remote_addrs: 127.0.0.1
    local_port: LOCAL_PORT
    remote_port: REMOTE_PORT
    encap: yes
    local: {auth: psk, id: "fqdn:%s-%s.petrel.test"}
    remote: {auth: psk, id: "fqdn:%s-%s.petrel.test"}
    children:
      c:
        local_ts: %s
        remote_ts: %s
        esp_proposals: %s
        start_action: %s
`, name, name, me, name, peer, lts, rts, esp, start)
}

// daemonProc is a running `petrel daemon`.
type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	stderr *syncBuffer
	done   chan error
}

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

// TestDaemonEndToEnd starts two real `petrel daemon` processes on loopback
// (userspace data plane without a device, ESP in UDP: no root) and drives
// them only through the CLI: up, sessions and their detail checked against
// the peer's view of the same SA, reload with added, removed, changed and
// untouched connections, SIGHUP, down, a failing command, and a clean
// shutdown whose deletes the peer sees.
func TestDaemonEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "petrel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	keepA := extraConn("keep", "a", "b", "10.11.0.0/24", "10.12.0.0/24", "default", "none")
	goneA := extraConn("gone", "a", "b", "10.21.0.0/24", "10.22.0.0/24", "default", "none")
	changeA := extraConn("change", "a", "b", "10.31.0.0/24", "10.32.0.0/24", "aes256gcm16", "none")
	changedA := extraConn("change", "a", "b", "10.31.0.0/24", "10.32.0.0/24", "aes128gcm16", "none")
	addedA := extraConn("added", "a", "b", "10.41.0.0/24", "10.42.0.0/24", "default", "start")
	extraB := extraConn("keep", "b", "a", "10.12.0.0/24", "10.11.0.0/24", "default", "none") +
		extraConn("gone", "b", "a", "10.22.0.0/24", "10.21.0.0/24", "default", "none") +
		extraConn("change", "b", "a", "10.32.0.0/24", "10.31.0.0/24", "default", "none") +
		extraConn("added", "b", "a", "10.42.0.0/24", "10.41.0.0/24", "default", "none")
	pa, pb, err := node.WriteLoopbackPair(dir, node.LoopbackOptions{Socket: true, ExtraA: keepA + goneA + changeA, ExtraB: extraB})
	if err != nil {
		t.Fatal(err)
	}
	setNetstack := func(path string) {
		b, _ := os.ReadFile(path)
		b = bytes.Replace(b, []byte("daemon:\n"), []byte("daemon:\n  dataplane: netstack\n"), 1)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setNetstack(pa.File)
	setNetstack(pb.File)
	// a serves metrics on a free loopback port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := l.Addr().String()
	l.Close()
	text, _ := os.ReadFile(pa.File)
	text = bytes.Replace(text, []byte("daemon:\n"), []byte("daemon:\n  metrics_listen: "+metricsAddr+"\n"), 1)
	if err := os.WriteFile(pa.File, text, 0o600); err != nil {
		t.Fatal(err)
	}

	start := func(cfg string, socket string) *daemonProc {
		d := &daemonProc{socket: socket, stderr: &syncBuffer{}, done: make(chan error, 1)}
		d.cmd = exec.Command(bin, "daemon", "-c", cfg)
		d.cmd.Stderr = d.stderr
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { d.done <- d.cmd.Wait() }()
		t.Cleanup(func() {
			d.cmd.Process.Kill()
			if t.Failed() {
				t.Logf("daemon %s log:\n%s", cfg, d.stderr.String())
			}
		})
		return d
	}
	b := start(pb.File, filepath.Join(dir, "b.sock"))
	a := start(pa.File, filepath.Join(dir, "a.sock"))

	cli := func(d *daemonProc, args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--socket", d.socket)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			return out.String() + errb.String(), fmt.Errorf("petrel %v: %v: %s", args, err, errb.String())
		}
		return out.String(), nil
	}
	must := func(d *daemonProc, args ...string) string {
		t.Helper()
		out, err := cli(d, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	sessions := func(d *daemonProc) map[string]node.Session {
		t.Helper()
		var list []node.Session
		if err := json.Unmarshal([]byte(must(d, "sessions", "-o", "json")), &list); err != nil {
			t.Fatal(err)
		}
		m := map[string]node.Session{}
		for _, s := range list {
			m[s.Conn] = s
		}
		return m
	}
	// poll retries check for up to 10 s.
	poll := func(what string, check func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !check(); {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, d := range []*daemonProc{a, b} {
		poll("the control socket "+d.socket, func() bool { _, err := cli(d, "connections"); return err == nil })
	}
	if fi, err := os.Stat(a.socket); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, %v; want 0660", fi.Mode(), err)
	}

	// b's event stream, followed with the CLI.
	evCtx, stopEvents := context.WithCancel(context.Background())
	defer stopEvents()
	evCmd := exec.CommandContext(evCtx, bin, "events", "-o", "json", "--socket", b.socket)
	evOut := &syncBuffer{}
	evCmd.Stdout = evOut
	if err := evCmd.Start(); err != nil {
		t.Fatal(err)
	}
	go evCmd.Wait()
	time.Sleep(100 * time.Millisecond)

	for _, c := range []string{"b", "keep", "gone", "change"} {
		if out := must(a, "up", c); !strings.Contains(out, c+": established") {
			t.Fatalf("up %s: %q", c, out)
		}
	}

	// Metrics: four IKE SAs, four Child SAs set up.
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`petrel_ike_sas{state="established"} 4`, `petrel_child_sas 4`, `petrel_setups_total{kind="child"} 4`} {
		if !strings.Contains(string(metrics), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Detail fields against the real SA: b's view of the same IKE SA.
	sa, sb := sessions(a), sessions(b)
	ab, ba := sa["b"], sb["a"]
	if ab.State != "established" || ab.Role != "initiator" || ba.Role != "responder" {
		t.Fatalf("state %s roles %s/%s", ab.State, ab.Role, ba.Role)
	}
	if ab.SPIi != ba.SPIi || ab.SPIr != ba.SPIr || ab.SPIr == "" {
		t.Errorf("IKE SPIs a %s/%s b %s/%s", ab.SPIi, ab.SPIr, ba.SPIi, ba.SPIr)
	}
	if ab.Encr != "AES_GCM_16-256" || ab.PRF != "PRF_HMAC_SHA2_256" || ab.DHGroup != "CURVE_25519" ||
		ba.Encr != ab.Encr || ba.DHGroup != ab.DHGroup {
		t.Errorf("suite a %s/%s/%s b %s/%s", ab.Encr, ab.PRF, ab.DHGroup, ba.Encr, ba.DHGroup)
	}
	if ab.LocalID != "a.petrel.test" || ab.RemoteID != "b.petrel.test" || ba.RemoteID != "a.petrel.test" ||
		ab.LocalAuth != "psk" || !ab.NATT {
		t.Errorf("ids %s %s %s auth %s nat-t %v", ab.LocalID, ab.RemoteID, ba.RemoteID, ab.LocalAuth, ab.NATT)
	}
	if len(ab.Children) != 1 || len(ba.Children) != 1 {
		t.Fatalf("children %d/%d", len(ab.Children), len(ba.Children))
	}
	ca, cb := ab.Children[0], ba.Children[0]
	if ca.InSPI != cb.OutSPI || ca.OutSPI != cb.InSPI || ca.Encr != "AES_GCM_16-256" ||
		ca.LocalTS[0] != "10.1.0.0/24" || cb.LocalTS[0] != "10.2.0.0/24" {
		t.Errorf("child a %+v b %+v", ca, cb)
	}
	detail := must(a, "sessions", "--detail")
	for _, want := range []string{"Connection    : b", "Protocol      : IKEv2 IPsec", "SPI (I)       : " + ab.SPIi,
		"SPI In        : " + ca.InSPI, "Remote ID     : b.petrel.test", "D/H Group     : CURVE_25519",
		"Loc Auth Mode : preSharedKeys", "Local Addr    : 10.1.0.0/24", "IPsec Tunnels : 1"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, detail)
		}
	}
	if table := must(a, "sessions"); !strings.Contains(table, "CONNECTION") || !strings.Contains(table, "b.petrel.test") {
		t.Errorf("table:\n%s", table)
	}
	var conns []node.ConnInfo
	if err := json.Unmarshal([]byte(must(a, "connections", "-o", "json")), &conns); err != nil || len(conns) != 4 {
		t.Fatalf("connections: %d %v", len(conns), err)
	}

	// Reload: gone removed, change changed, added added, b and keep untouched.
	before := sa
	text, _ = os.ReadFile(pa.File)
	portA := pa.Config.Daemon.NATTPort
	portB := pb.Config.Daemon.NATTPort
	fill := func(s string) string {
		return strings.NewReplacer("LOCAL_PORT", fmt.Sprint(portA), "REMOTE_PORT", fmt.Sprint(portB)).Replace(s)
	}
	newText := strings.Replace(string(text), fill(goneA), "", 1)
	newText = strings.Replace(newText, fill(changeA), fill(changedA)+fill(addedA), 1)
	if err := os.WriteFile(pa.File, []byte(newText), 0o600); err != nil {
		t.Fatal(err)
	}
	// A broken file is refused with its position, and nothing changes.
	if err := os.WriteFile(pa.File, []byte(newText+"  oops: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := cli(a, "reload"); err == nil || !strings.Contains(out, "a.yaml:") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("reload of a broken file: %v %q", err, out)
	}
	if err := os.WriteFile(pa.File, []byte(newText), 0o600); err != nil {
		t.Fatal(err)
	}
	out := must(a, "reload")
	t.Logf("petrel reload: %s", out)
	if want := "added: added; removed: gone; changed: change; unchanged: b,keep"; !strings.Contains(out, want) {
		t.Fatalf("reload said %q, want %q", out, want)
	}
	var after map[string]node.Session
	poll("change and added re-established", func() bool {
		after = sessions(a)
		ch, ad := after["change"], after["added"]
		return ch.State == "established" && len(ch.Children) == 1 && ad.State == "established" && len(ad.Children) == 1
	})
	for _, c := range []string{"b", "keep"} {
		if after[c].SPIi != before[c].SPIi || after[c].Children[0].InSPI != before[c].Children[0].InSPI {
			t.Errorf("untouched %s changed SA: %s -> %s", c, before[c].SPIi, after[c].SPIi)
		}
	}
	if _, ok := after["gone"]; ok {
		t.Error("removed connection gone still has an SA")
	}
	if after["change"].SPIi == before["change"].SPIi || after["change"].Children[0].Encr != "AES_GCM_16-128" {
		t.Errorf("changed connection: %s -> %s, %s", before["change"].SPIi, after["change"].SPIi, after["change"].Children[0].Encr)
	}
	poll("b to see gone deleted", func() bool { _, ok := sessions(b)["gone"]; return !ok })

	// SIGHUP: added removed from the file.
	if err := os.WriteFile(pa.File, []byte(strings.Replace(newText, fill(addedA), "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cmd.Process.Signal(syscall.SIGHUP)
	poll("SIGHUP to delete added", func() bool { _, ok := sessions(a)["added"]; return !ok })

	// down, and a failing command: one line, non-zero exit.
	if out := must(a, "down", "keep"); !strings.Contains(out, "keep: deleted 1 IKE SA") {
		t.Errorf("down: %q", out)
	}
	poll("b to see keep deleted", func() bool { _, ok := sessions(b)["keep"]; return !ok })
	out, err = cli(a, "up", "nope")
	if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, `"nope"`) {
		t.Errorf("up nope: err %v, output %q", err, out)
	}

	// Clean shutdown: a deletes its SAs first, b sees it.
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("daemon a exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon a did not exit")
	}
	poll("b to have no sessions", func() bool { return len(sessions(b)) == 0 })
	if _, err := os.Stat(a.socket); !os.IsNotExist(err) {
		t.Errorf("a's socket left behind: %v", err)
	}
	poll("b's event stream to show the delete", func() bool {
		return strings.Contains(evOut.String(), `"kind":"ike-down","conn":"a"`) &&
			strings.Contains(evOut.String(), `"reason":"deleted-by-peer"`)
	})
	b.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-b.done; err != nil {
		t.Errorf("daemon b exited with %v", err)
	}
}
