package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSiteToSiteNamespaces is the README's site-to-site walkthrough, as
// root: namespaces pd-a and pd-b joined by a veth pair on 192.0.2.0/24,
// `petrel daemon` in each with examples/site-a.yaml and site-b.yaml (TUN
// data plane, plain ESP), and a ping from 10.1.0.1 to 10.2.0.1 through the
// tunnel. Skipped without root or iproute2.
func TestSiteToSiteNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and TUN")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "petrel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	// The README's names plus this process's id, so that two runs at once
	// do not collide.
	id := os.Getpid() % 100000
	nsA, nsB := fmt.Sprintf("pd-a%d", id), fmt.Sprintf("pd-b%d", id)
	vA, vB := fmt.Sprintf("pd-va%d", id), fmt.Sprintf("pd-vb%d", id)
	for _, ns := range []string{nsA, nsB} {
		run("ip", "netns", "del", ns)
		must("ip", "netns", "add", ns)
		t.Cleanup(func() { run("ip", "netns", "del", ns) })
	}
	must("ip", "link", "add", vA, "type", "veth", "peer", "name", vB)
	for _, s := range [][]string{
		{"link", "set", vA, "netns", nsA}, {"link", "set", vB, "netns", nsB},
		{"-n", nsA, "addr", "add", "192.0.2.1/24", "dev", vA}, {"-n", nsA, "link", "set", vA, "up"},
		{"-n", nsB, "addr", "add", "192.0.2.2/24", "dev", vB}, {"-n", nsB, "link", "set", vB, "up"},
		{"-n", nsA, "link", "set", "lo", "up"}, {"-n", nsB, "link", "set", "lo", "up"},
		{"-n", nsA, "addr", "add", "10.1.0.1/32", "dev", "lo"}, {"-n", nsB, "addr", "add", "10.2.0.1/32", "dev", "lo"},
	} {
		must(append([]string{"ip"}, s...)...)
	}
	t.Setenv("PETREL_PSK", "walkthrough-test-psk-0123456789")
	sockA, sockB := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	start := func(ns, cfg, sock string) (*exec.Cmd, *bytes.Buffer) {
		var log bytes.Buffer
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "daemon", "-c", "../../examples/"+cfg, "--socket", sock)
		cmd.Stderr = &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			if t.Failed() {
				t.Logf("%s log:\n%s", ns, log.String())
			}
		})
		return cmd, &log
	}
	b, _ := start(nsB, "site-b.yaml", sockB)
	waitFor := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !f(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("b's socket", func() bool { _, err := run(bin, "connections", "--socket", sockB); return err == nil })
	a, _ := start(nsA, "site-a.yaml", sockA) // start_action: start
	waitFor("the tunnel", func() bool {
		out, _ := run(bin, "sessions", "--socket", sockA)
		return strings.Contains(out, "established")
	})
	out := must("ip", "netns", "exec", nsA, "ping", "-c", "3", "-W", "2", "-I", "10.1.0.1", "10.2.0.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping:\n%s", out)
	}
	detail := must(bin, "sessions", "--detail", "--socket", sockA)
	for _, want := range []string{"Pkts Tx       : 3", "Pkts Rx       : 3", "Encapsulation : Tunnel  ", "NAT-T         : no"} {
		if !strings.Contains(detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, detail)
		}
	}
	a.Process.Signal(syscall.SIGTERM)
	if err := a.Wait(); err != nil {
		t.Errorf("daemon a: %v", err)
	}
	waitFor("b to see the delete", func() bool {
		out, _ := run(bin, "sessions", "-o", "json", "--socket", sockB)
		return strings.TrimSpace(out) == "[]"
	})
	b.Process.Signal(syscall.SIGTERM)
	if err := b.Wait(); err != nil {
		t.Errorf("daemon b: %v", err)
	}
}
