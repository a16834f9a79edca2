package interop

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// nsPrefix starts the name of every namespace this package creates.
const nsPrefix = "pi-"

// Netns is a network namespace created by a Scenario.
type Netns struct {
	Name string
	s    *Scenario
}

// Command returns a command that runs argv inside the namespace. The
// command gets its own process group, so a Ctrl-C at the terminal reaches
// the harness only and the harness ends its children itself.
func (n *Netns) Command(ctx context.Context, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name}, argv...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs argv inside the namespace with a bound of timeout and returns its
// combined output; the error names the command and carries its output.
func (n *Netns) Run(timeout time.Duration, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCmd(n.Command(ctx, argv...))
}

// MustRun is Run that fails the scenario on error.
func (n *Netns) MustRun(timeout time.Duration, argv ...string) string {
	n.s.t.Helper()
	out, err := n.Run(timeout, argv...)
	if err != nil {
		n.s.Fatalf("%v", err)
	}
	return out
}

// runCmd runs cmd and returns its combined output with an error that says
// which command failed and why.
func runCmd(cmd *exec.Cmd) (string, error) {
	var buf bytes.Buffer
	cmd.Stdout = &buf
	cmd.Stderr = &buf
	err := cmd.Run()
	out := buf.String()
	if err != nil {
		return out, fmt.Errorf("interop: %s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// ip runs `ip ARGS` on the host (used for commands naming a namespace with
// -n, which need no exec).
func ip(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := runCmd(exec.CommandContext(ctx, "ip", args...))
	return err
}

// NewNetns creates the namespace pi-<pid>-<scenario id>-<role> with lo up,
// forwarding on and reverse-path filtering off, and registers its removal
// (after ending every process left in it).
func (s *Scenario) NewNetns(role string) *Netns {
	s.t.Helper()
	n := &Netns{Name: fmt.Sprintf("%s%d-%s-%s", nsPrefix, os.Getpid(), s.id, role), s: s}
	if err := ip("netns", "add", n.Name); err != nil {
		s.Fatalf("create namespace: %v", err)
	}
	s.defer_("delete netns "+n.Name, func() error { return deleteNetns(n.Name) })
	if err := ip("-n", n.Name, "link", "set", "lo", "up"); err != nil {
		s.Fatalf("namespace %s: %v", n.Name, err)
	}
	n.MustRun(5*time.Second, "sysctl", "-qw", "net.ipv4.ip_forward=1",
		"net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	return n
}

// AddLoopbackAddr puts a /32 host address on lo; it stands for a protected
// subnet (this kernel has no dummy driver).
func (n *Netns) AddLoopbackAddr(a netip.Addr) {
	n.s.t.Helper()
	if err := ip("-n", n.Name, "addr", "add", netip.PrefixFrom(a, a.BitLen()).String(), "dev", "lo"); err != nil {
		n.s.Fatalf("namespace %s: %v", n.Name, err)
	}
}

// AddDefaultRoute routes everything not on a link via gw.
func (n *Netns) AddDefaultRoute(gw netip.Addr) {
	n.s.t.Helper()
	if err := ip("-n", n.Name, "route", "add", "default", "via", gw.String()); err != nil {
		n.s.Fatalf("namespace %s: %v", n.Name, err)
	}
}

// Link is a veth pair between two namespaces, with one address on each end.
type Link struct {
	A, B         *Netns
	IfA, IfB     string
	AddrA, AddrB netip.Prefix
}

// Connect joins a and b with a veth pair named ifA (in a) and ifB (in b),
// addresses both ends and brings them up. The pair is created directly in
// the namespaces, so the names never clash on the host.
func (s *Scenario) Connect(a *Netns, ifA string, addrA netip.Prefix, b *Netns, ifB string, addrB netip.Prefix) *Link {
	s.t.Helper()
	if err := ip("link", "add", ifA, "netns", a.Name, "type", "veth", "peer", "name", ifB, "netns", b.Name); err != nil {
		s.Fatalf("veth %s/%s: %v", a.Name, b.Name, err)
	}
	for _, e := range []struct {
		ns   *Netns
		dev  string
		addr netip.Prefix
	}{{a, ifA, addrA}, {b, ifB, addrB}} {
		if err := ip("-n", e.ns.Name, "addr", "add", e.addr.String(), "dev", e.dev); err != nil {
			s.Fatalf("veth %s: %v", e.dev, err)
		}
		if err := ip("-n", e.ns.Name, "link", "set", e.dev, "up"); err != nil {
			s.Fatalf("veth %s: %v", e.dev, err)
		}
	}
	l := &Link{A: a, B: b, IfA: ifA, IfB: ifB, AddrA: addrA, AddrB: addrB}
	s.mu.Lock()
	s.links = append(s.links, l)
	s.mu.Unlock()
	// The link is usable once a ping crosses it (DAD and carrier are quick
	// on veth, but not instant).
	if _, err := a.Run(10*time.Second, "ping", "-n", "-q", "-c", "1", "-w", "5", addrB.Addr().String()); err != nil {
		s.Fatalf("link %s-%s does not carry a ping: %v", a.Name, b.Name, err)
	}
	return l
}

// deleteNetns ends every process still in the namespace (by PID, TERM then
// KILL) and deletes it. A namespace that no longer exists is not an error.
func deleteNetns(name string) error {
	if !netnsExists(name) {
		return nil
	}
	for round := 0; round < 2; round++ {
		pids := netnsPids(name)
		if len(pids) == 0 {
			break
		}
		sig := syscall.SIGTERM
		if round == 1 {
			sig = syscall.SIGKILL
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		for i := 0; i < 30 && len(netnsPids(name)) > 0; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := ip("netns", "del", name); err != nil {
		return fmt.Errorf("interop: delete namespace %s: %w", name, err)
	}
	return nil
}

func netnsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

func netnsPids(name string) []int {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

var staleNetns = regexp.MustCompile(`^` + nsPrefix + `(\d+)-`)

// removeStaleNetns deletes namespaces left by an earlier run of this
// harness that was killed before it could clean up: those named
// pi-<pid>-... whose pid no longer runs. Namespaces of live runs, and any
// not named by this package, are left alone.
func removeStaleNetns() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		m := staleNetns.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if deleteNetns(e.Name()) == nil {
			removed = append(removed, e.Name())
		}
	}
	return removed
}

// linkPeer returns the address at the far end of the link whose end in ns
// is dev.
func (s *Scenario) linkPeer(ns *Netns, dev string) (netip.Addr, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		if l.A == ns && l.IfA == dev {
			return l.AddrB.Addr(), true
		}
		if l.B == ns && l.IfB == dev {
			return l.AddrA.Addr(), true
		}
	}
	return netip.Addr{}, false
}
