package interop

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Helpers of the fragmentation and INITIAL_CONTACT scenarios
// (petrel_sc6_frag_ic_test.go): restarting a daemon after a SIGKILL, and
// the sizes of IKE datagrams on the wire.

// restartSwan starts a fresh charon in old's namespace with old's
// swanctl.conf, charon settings and credentials, as a restarted strongSwan
// would come up. It runs in its own folder (name), so that the killed
// charon's log, which holds the keys of the SAs it had, stays for the
// capture check (charon truncates its log at start).
func restartSwan(s *Scenario, old *StrongSwan, name string) *StrongSwan {
	s.t.Helper()
	n := s.NewStrongSwan(old.ns, name, old.Swanctl)
	n.Charon = old.Charon
	src := filepath.Join(old.dir, "swanctl")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "swanctl.conf" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(n.dir, "swanctl", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		s.Fatalf("restart %s: copy credentials: %v", old.name, err)
	}
	s.StartNode(n)
	return n
}

// restartPetrel starts a fresh petrel in old's namespace with old's
// configuration, in its own folder (name) so that the killed daemon's log
// and key log stay.
func restartPetrel(s *Scenario, old *ProcessNode, name string, conns ...SwanConn) *ProcessNode {
	s.t.Helper()
	conf := strings.ReplaceAll(old.Config, old.Dir(), "{dir}")
	n := s.NewPetrel(old.ns, name, conf, conns...)
	s.StartNode(n)
	return n
}

// ikeDatagram is the UDP view of one IKE datagram: its UDP payload length
// (non-ESP marker included on port 4500) and, for an SKF fragment, its
// Fragment Number and Total Fragments (RFC 7383 §2.5), which travel in
// the clear.
type ikeDatagram struct {
	Payload            int
	FragNum, FragTotal int
}

// ikeDatagrams reads every IKE datagram of a capture by frame number.
func ikeDatagrams(s *Scenario, pcap string) map[int]ikeDatagram {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-Y", "isakmp", "-T", "fields",
		"-e", "frame.number", "-e", "udp.length", "-e", "isakmp.frag.number", "-e", "isakmp.frag.total")
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+filepath.Join(s.Dir, "wireshark-empty"))
	out, err := cmd.Output()
	if err != nil {
		s.Fatalf("tshark on %s: %v", filepath.Base(pcap), err)
	}
	dg := map[int]ikeDatagram{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		for len(f) < 4 {
			f = append(f, "")
		}
		frame, err1 := strconv.Atoi(f[0])
		ulen, err2 := strconv.Atoi(first(strings.ReplaceAll(f[1], ",", "|")))
		if err1 != nil || err2 != nil {
			continue
		}
		num, _ := strconv.Atoi(first(strings.ReplaceAll(f[2], ",", "|")))
		total, _ := strconv.Atoi(first(strings.ReplaceAll(f[3], ",", "|")))
		dg[frame] = ikeDatagram{Payload: ulen - 8, FragNum: num, FragTotal: total}
	}
	return dg
}

// logLineHas reports whether one line of n's logs holds all of want.
func logLineHas(n Node, want ...string) bool {
	for _, l := range n.Logs() {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
	lines:
		for _, line := range strings.Split(string(b), "\n") {
			for _, w := range want {
				if !strings.Contains(line, w) {
					continue lines
				}
			}
			return true
		}
	}
	return false
}
