package interop

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ProcessNode runs a daemon binary with a config file in a namespace and is
// driven through hooks the scenario supplies. It is how petrel plugs in:
// the scenario gives the binary, its command line and config text, and
// functions that initiate and list SAs (typically by running petrel's own
// CLI in the namespace with Exec). Nothing here knows petrel's formats.
type ProcessNode struct {
	name string
	ns   *Netns
	dir  string

	// Binary is the daemon's path (e.g. a freshly built cmd/petrel).
	Binary string
	// Args is its command line; "{dir}" becomes the node's folder and
	// "{config}" the config file's path.
	Args []string
	// ConfigName and Config: the config file written into the node's
	// folder before start (skipped when ConfigName is empty).
	ConfigName string
	Config     string
	// Env adds environment variables ("{dir}" and "{config}" expanded).
	Env []string
	// Ready returns nil once the daemon accepts commands; it is polled
	// every 50 ms until Start's context ends. Nil means "still running
	// after 300 ms".
	Ready func(ctx context.Context, n *ProcessNode) error
	// InitiateFunc and ListSAsFunc implement Node.Initiate and
	// Node.ListSAs.
	InitiateFunc func(ctx context.Context, n *ProcessNode, child string) error
	ListSAsFunc  func(ctx context.Context, n *ProcessNode) ([]IKESA, error)
	// IKEKeyFile and ESPKeyFile name key logs the daemon writes in
	// Wireshark's ikev2_decryption_table and esp_sa formats, relative to
	// the node's folder; either may be empty.
	IKEKeyFile, ESPKeyFile string

	p *proc
}

// NewProcessNode prepares (does not start) a generic daemon node.
func (s *Scenario) NewProcessNode(ns *Netns, name, binary string, args ...string) *ProcessNode {
	return &ProcessNode{name: name, ns: ns, dir: s.Path(name), Binary: binary, Args: args}
}

// Name implements Node.
func (n *ProcessNode) Name() string { return n.name }

// Netns implements Node.
func (n *ProcessNode) Netns() *Netns { return n.ns }

// Dir is the node's folder (config, logs, key logs).
func (n *ProcessNode) Dir() string { return n.dir }

// ConfigPath is where the config file is written.
func (n *ProcessNode) ConfigPath() string { return filepath.Join(n.dir, n.ConfigName) }

// Logs implements Node: the daemon's stdout and stderr.
func (n *ProcessNode) Logs() []string { return []string{filepath.Join(n.dir, "daemon.log")} }

func (n *ProcessNode) expand(a string) string {
	return strings.NewReplacer("{dir}", n.dir, "{config}", n.ConfigPath()).Replace(a)
}

// Start implements Node.
func (n *ProcessNode) Start(ctx context.Context) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("interop: %s: %w", n.name, err)
	}
	if n.ConfigName != "" {
		if err := os.WriteFile(n.ConfigPath(), []byte(n.Config), 0o600); err != nil {
			return fmt.Errorf("interop: %s: %w", n.name, err)
		}
	}
	argv := []string{n.Binary}
	for _, a := range n.Args {
		argv = append(argv, n.expand(a))
	}
	cmd := n.ns.Command(context.Background(), argv...)
	cmd.Env = os.Environ()
	for _, e := range n.Env {
		cmd.Env = append(cmd.Env, n.expand(e))
	}
	cmd.Dir = n.dir
	p, err := startProc(cmd, n.Logs()[0])
	if err != nil {
		return err
	}
	n.p = p
	if n.Ready == nil {
		select {
		case <-p.done:
		case <-time.After(300 * time.Millisecond):
		}
		if !p.running() {
			return fmt.Errorf("interop: %s exited at start: %v; last log line: %s", n.name, p.err, n.lastLogLine())
		}
		return nil
	}
	for {
		err := n.Ready(ctx, n)
		if err == nil {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("interop: %s exited at start: %v; last log line: %s", n.name, p.err, n.lastLogLine())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interop: %s not ready: %w", n.name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (n *ProcessNode) lastLogLine() string {
	data, _ := os.ReadFile(n.Logs()[0])
	return lastLine(string(data))
}

// Running reports whether the daemon process is alive.
func (n *ProcessNode) Running() bool { return n.p.running() }

// Stop implements Node.
func (n *ProcessNode) Stop() error {
	if n.p == nil {
		return nil
	}
	return n.p.stop(5 * time.Second)
}

// Kill implements Node.
func (n *ProcessNode) Kill() error {
	if n.p == nil {
		return nil
	}
	return n.p.kill()
}

// Exec runs a command (such as the daemon's own CLI) in the node's
// namespace and folder, bounded by ctx and 15 s.
func (n *ProcessNode) Exec(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	expanded := make([]string, len(argv))
	for i, a := range argv {
		expanded[i] = n.expand(a)
	}
	cmd := n.ns.Command(ctx, expanded...)
	cmd.Env = os.Environ()
	for _, e := range n.Env {
		cmd.Env = append(cmd.Env, n.expand(e))
	}
	cmd.Dir = n.dir
	return runCmd(cmd)
}

// Initiate implements Node.
func (n *ProcessNode) Initiate(ctx context.Context, child string) error {
	if n.InitiateFunc == nil {
		return fmt.Errorf("interop: %s: the scenario gave no InitiateFunc", n.name)
	}
	return n.InitiateFunc(ctx, n, child)
}

// ListSAs implements Node.
func (n *ProcessNode) ListSAs(ctx context.Context) ([]IKESA, error) {
	if n.ListSAsFunc == nil {
		return nil, fmt.Errorf("interop: %s: the scenario gave no ListSAsFunc", n.name)
	}
	return n.ListSAsFunc(ctx, n)
}

// KeyLog implements Node: the lines of the daemon's Wireshark key files.
func (n *ProcessNode) KeyLog() (KeyLog, error) {
	var kl KeyLog
	var err error
	if n.IKEKeyFile != "" {
		if kl.IKE, err = ReadUATFile(filepath.Join(n.dir, n.IKEKeyFile)); err != nil {
			return kl, err
		}
	}
	if n.ESPKeyFile != "" {
		if kl.ESP, err = ReadUATFile(filepath.Join(n.dir, n.ESPKeyFile)); err != nil {
			return kl, err
		}
	}
	return kl, nil
}

// ReadUATFile reads a Wireshark UAT file: one record per line, blank lines
// and # comments skipped.
func ReadUATFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("interop: key log: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("interop: key log %s: %w", path, err)
	}
	return lines, nil
}
