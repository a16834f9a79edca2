package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestHarnessGenericNode runs charon through ProcessNode, exactly the way a
// petrel node will run: a binary with a config file in its own namespace,
// started, driven and listed through hooks the scenario supplies. It is the
// template for petrel scenarios (see README.md) and proves the generic path
// works before petrel exists: setup, ping, the capture decrypted with the
// strongSwan peer's key log alone, then kill -9 and cleanup.
func TestHarnessGenericNode(t *testing.T) {
	s := Begin(t, "harness-generic-node", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)

	// The node under test: here charon again, as a stand-in for
	// `petrel daemon --config {config}`.
	render := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca)) // only renders its strongswan.conf
	dut := s.NewProcessNode(topo.A, "gwa", "/bin/sh", "-c",
		fmt.Sprintf("mount -n --bind {dir}/varrun /run && exec %s", charonPath))
	dut.ConfigName = "strongswan.conf"
	dut.Config = render.strongswanConf()
	dut.Env = []string{"STRONGSWAN_CONF={config}", "SWANCTL_DIR={dir}/swanctl"}
	swanctl := func(ctx context.Context, n *ProcessNode, args ...string) (string, error) {
		return n.Exec(ctx, append([]string{swanctlPath, args[0], "--uri", "unix://{dir}/charon.vici"}, args[1:]...)...)
	}
	dut.Ready = func(ctx context.Context, n *ProcessNode) error {
		if _, err := os.Stat(filepath.Join(n.Dir(), "charon.vici")); err != nil {
			return err
		}
		_, err := swanctl(ctx, n, "--load-all", "--noprompt")
		return err
	}
	dut.InitiateFunc = func(ctx context.Context, n *ProcessNode, child string) error {
		_, err := swanctl(ctx, n, "--initiate", "--child", child, "--timeout", "15")
		return err
	}
	dut.ListSAsFunc = func(ctx context.Context, n *ProcessNode) ([]IKESA, error) {
		return ListSAsVici(ctx, filepath.Join(n.Dir(), "charon.vici"))
	}
	for _, d := range []string{"varrun", "swanctl"} {
		if err := os.MkdirAll(filepath.Join(dut.Dir(), d), 0o700); err != nil {
			s.Fatalf("%v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dut.Dir(), "swanctl", "swanctl.conf"), []byte(SwanctlConf(ca)), 0o600); err != nil {
		s.Fatalf("%v", err)
	}

	peer := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(dut)
	s.StartNode(peer)
	capture := s.StartCapture(topo.B, "eth0", "link")

	s.Initiate(dut, ca.ChildName(), 20*time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 20, 19, 50*time.Millisecond)
	sa := s.WaitEstablished(dut, "s2s", ca.ChildName(), 5*time.Second)
	s.WaitEstablished(peer, "s2s", cb.ChildName(), 5*time.Second)
	requireChildTraffic(s, sa, ca.ChildName())
	r := s.CheckCapture(capture, peer) // the strongSwan side's keys alone
	requireExchanges(s, r, 34, 35)
	requireESPDecrypted(s, r)

	pid := dut.p.cmd.Process.Pid
	if err := dut.Kill(); err != nil {
		s.Fatalf("%v", err)
	}
	if dut.Running() || syscall.Kill(pid, 0) == nil {
		s.Fatalf("pid %d still alive after kill -9", pid)
	}
	if pids := netnsPids(topo.A.Name); len(pids) != 0 {
		s.Fatalf("processes left in %s after kill -9: %v", topo.A.Name, pids)
	}
}
