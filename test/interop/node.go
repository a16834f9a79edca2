package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Node is one IKE daemon in a namespace, whichever implementation it is.
// A scenario talks to its nodes only through this interface, so the same
// scenario runs strongSwan ↔ strongSwan (the self-test) and strongSwan ↔
// petrel.
type Node interface {
	// Name is the node's short name (also its folder under the results).
	Name() string
	// Netns is the namespace it runs in.
	Netns() *Netns
	// Start starts the daemon and returns once it accepts commands.
	Start(ctx context.Context) error
	// Stop ends the daemon gracefully (SIGTERM, then SIGKILL).
	Stop() error
	// Kill ends the daemon with SIGKILL, as a crash would.
	Kill() error
	// Initiate brings up the named Child SA (and its IKE SA if needed).
	Initiate(ctx context.Context, child string) error
	// ListSAs reports the IKE SAs the daemon holds, with their Child SAs.
	ListSAs(ctx context.Context) ([]IKESA, error)
	// KeyLog returns the keys of every IKE (and, where known, ESP) SA the
	// daemon has set up so far, as Wireshark UAT lines.
	KeyLog() (KeyLog, error)
	// Logs lists the daemon's log files.
	Logs() []string
}

// IKESA is an IKE SA as a node reports it.
type IKESA struct {
	Name       string
	UniqueID   string
	State      string // ESTABLISHED when up
	Initiator  bool
	SPIi, SPIr string // 16 hex digits
	LocalHost  string
	LocalPort  string
	RemoteHost string
	RemotePort string
	NATLocal   bool // this side is behind a NAT
	NATRemote  bool // the peer is behind a NAT
	EncrAlg    string
	EncrKeyLen int
	IntegAlg   string
	PRFAlg     string
	DHGroup    string
	Children   []ChildSA
}

// Child returns the Child SA named name, preferring the INSTALLED one:
// after a rekey, strongSwan lists the replaced Child SA (DELETED) for a
// few seconds more.
func (sa IKESA) Child(name string) (ChildSA, bool) {
	var found *ChildSA
	for i, c := range sa.Children {
		if c.Name != name {
			continue
		}
		if c.State == "INSTALLED" {
			return c, true
		}
		if found == nil {
			found = &sa.Children[i]
		}
	}
	if found == nil {
		return ChildSA{}, false
	}
	return *found, true
}

// ChildSA is a Child SA as a node reports it.
type ChildSA struct {
	Name          string
	State         string // INSTALLED when up
	Protocol      string
	Encap         bool // ESP in UDP
	SPIIn, SPIOut string
	LocalTS       []string
	RemoteTS      []string
	BytesIn       uint64
	BytesOut      uint64
}

// KeyLog holds key tables in Wireshark's UAT formats: one
// ikev2_decryption_table line per IKE SA and one esp_sa line per ESP SA.
type KeyLog struct {
	IKE []string
	ESP []string
}

// Add merges another key log into k. Both peers log the same SAs, so
// identical lines are kept once; two lines for the same SPIs with
// different keys mean one side's log was misread, and are an error.
func (k *KeyLog) Add(o KeyLog) error {
	var err error
	if k.IKE, err = mergeUAT(k.IKE, o.IKE, 2); err != nil {
		return err
	}
	k.ESP, err = mergeUAT(k.ESP, o.ESP, 4)
	return err
}

// mergeUAT appends the lines of add not yet in lines; the first keyCols
// comma-separated columns identify an SA.
func mergeUAT(lines, add []string, keyCols int) ([]string, error) {
	ident := func(l string) string {
		f := strings.SplitN(l, ",", keyCols+1)
		return strings.Join(f[:min(keyCols, len(f))], ",")
	}
	have := map[string]string{}
	for _, l := range lines {
		have[ident(l)] = l
	}
	for _, l := range add {
		id := ident(l)
		switch prev, ok := have[id]; {
		case !ok:
			have[id] = l
			lines = append(lines, l)
		case prev != l:
			return lines, fmt.Errorf("interop: key logs disagree about SA %s:\n  %s\n  %s", id, prev, l)
		}
	}
	return lines, nil
}

// AddNode registers a node with the scenario: its logs are searched on
// failure and it is stopped at cleanup. It does not start it.
func (s *Scenario) AddNode(n Node) Node {
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	s.mu.Unlock()
	s.defer_("stop "+n.Name(), n.Stop)
	return n
}

// StartNode registers and starts a node, failing the scenario if it does
// not come up within 20 s.
func (s *Scenario) StartNode(n Node) Node {
	s.t.Helper()
	s.AddNode(n)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := n.Start(ctx); err != nil {
		s.Fatalf("start %s: %v", n.Name(), err)
	}
	s.Logf("%s up in %s (%.2fs)", n.Name(), n.Netns().Name, time.Since(t0).Seconds())
	return n
}

// proc is a daemon process started in a namespace, ended by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProc starts cmd with stdout and stderr going to logPath. Daemons
// are built with a background context and live until stop or kill; a
// helper built with a deadline (iperf3's server) is killed when it passes.
func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	cmd.Stdout = f
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("interop: start %v: %w", cmd.Args, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL. The PID is that of
// the daemon itself: `ip netns exec` and `sh -c 'exec ...'` exec in place.
func (p *proc) stop(grace time.Duration) error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("interop: pid %d ignored SIGTERM for %s, killed", p.cmd.Process.Pid, grace)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("interop: pid %d survives SIGKILL", p.cmd.Process.Pid)
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() error {
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("interop: pid %d survives SIGKILL", p.cmd.Process.Pid)
	}
}
