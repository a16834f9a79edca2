//go:build linux

package dataplane

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// The namespace test: two network namespaces joined by a veth pair
// (192.0.2.1 <-> 192.0.2.2), protected hosts 10.1.0.1 and 10.2.0.1 on lo,
// and in each namespace a copy of this test binary running a userspace
// data plane on a TUN device with ESP in UDP on port 4500:
//
//	ns A: 10.1.0.1 (lo) -> petrel0 (TUN) -> ESP/UDP 4500 -> veth 192.0.2.1
//	ns B: 10.2.0.1 (lo) <- petrel0 (TUN) <- ESP/UDP 4500 <- veth 192.0.2.2
//
// Root only; skipped without root, /dev/net/tun, ip or iperf3.

const nodeEnv = "PETREL_DATAPLANE_NODE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(nodeEnv); spec != "" {
		os.Exit(runNode(spec))
	}
	os.Exit(m.Run())
}

// nodeSpec is what a re-executed test binary sets up in its namespace.
type nodeSpec struct {
	Local, Remote string // outer addresses
	Inner, Peer   string // protected host and the peer's
	OutSPI, InSPI uint32
	Encr          wire.EncrID
	KeyLen        int
	Integ         wire.IntegID
	IntegLen      int
	Workers       int
	// Keys, when set, replace the static test keys (interop with keys
	// taken from strongSwan); TS, when set, replace Inner/32 and Peer/32.
	OutKey, InKey     []byte
	LocalTS, RemoteTS string
	// OutSeq continues an SA that another implementation already used.
	OutSeq uint64
	// RawESP sends plain ESP (IP protocol 50) instead of ESP in UDP.
	RawESP bool
	// IfID > 0 runs the node route-based (no policies, selectors 0/0).
	IfID uint32
}

// runNode runs a data plane until stdin closes; it prints "ready" once the
// TUN device is up.
func runNode(spec string) int {
	var s nodeSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "node:", err); return 1 }
	udp, err := NewUDPBind(esp.NATTPort, nil)
	if err != nil {
		return fail(err)
	}
	var bind Bind = udp
	if s.RawESP {
		raw, err := NewRawBind()
		if err != nil {
			return fail(err)
		}
		bind = &MultiBind{UDP: udp, Raw: raw}
	}
	dp := NewUserspace(bind, Options{Workers: s.Workers})
	defer dp.Close()
	dev, err := NewTUN("petrel0", 1400)
	if err != nil {
		return fail(err)
	}
	if err := dp.AttachDevice(dev, s.IfID); err != nil {
		return fail(err)
	}
	for _, args := range [][]string{
		{"link", "set", "petrel0", "up"},
		{"route", "add", s.Peer + "/32", "dev", "petrel0", "src", s.Inner},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("ip %v: %v: %s", args, err, out))
		}
	}
	local := netip.AddrPortFrom(netip.MustParseAddr(s.Local), esp.NATTPort)
	remote := netip.AddrPortFrom(netip.MustParseAddr(s.Remote), esp.NATTPort)
	if s.LocalTS == "" {
		s.LocalTS, s.RemoteTS = s.Inner+"/32", s.Peer+"/32"
	}
	lts, rts := []Selector{MustSelector(s.LocalTS)}, []Selector{MustSelector(s.RemoteTS)}
	for _, sa := range []SA{
		{Dir: Out, SPI: s.OutSPI, Local: local, Remote: remote, LocalTS: lts, RemoteTS: rts},
		{Dir: In, SPI: s.InSPI, Local: local, Remote: remote, LocalTS: lts, RemoteTS: rts},
	} {
		sa.ReqID, sa.IfID, sa.Encap, sa.Encr, sa.Integ = 1, s.IfID, !s.RawESP, s.Encr, s.Integ
		sa.EncrKey, sa.IntegKey = testKeys(sa.SPI, s.KeyLen), testKeys(sa.SPI+1, s.IntegLen)
		if s.OutKey != nil {
			sa.EncrKey, sa.IntegKey = s.OutKey, nil
			if sa.Dir == In {
				sa.EncrKey = s.InKey
			}
		}
		if err := dp.AddSA(sa); err != nil {
			return fail(err)
		}
	}
	dp.out[s.OutSPI].SetLastSeq(s.OutSeq)
	if s.IfID == 0 {
		if err := dp.AddPolicy(Policy{Local: lts[0], Remote: rts[0], ReqID: 1}); err != nil {
			return fail(err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs0 := ms.Mallocs
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-sig:
	}
	out, _ := dp.Counters(Out, s.OutSPI)
	in, _ := dp.Counters(In, s.InSPI)
	status, _ := os.ReadFile("/proc/self/status")
	hwm := ""
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM") {
			hwm = strings.Join(strings.Fields(l), " ")
		}
	}
	runtime.ReadMemStats(&ms)
	perPkt := float64(ms.Mallocs-mallocs0) / float64(max(1, out.Packets+in.Packets))
	fmt.Printf("%s; %.3f heap allocs per packet; out %d packets %d bytes; in %d packets %d bytes, drops replay %d auth %d policy %d\n",
		hwm, perPkt, out.Packets, out.Bytes, in.Packets, in.Bytes, in.ReplayDrops, in.AuthFailures, in.PolicyDrops)
	return 0
}

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skip("no /dev/net/tun")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netnsPair creates the two namespaces and the veth link; cleanup removes them.
func netnsPair(t *testing.T) (nsA, nsB string) {
	t.Helper()
	suffix := fmt.Sprintf("%d", os.Getpid())
	nsA, nsB = "petrel-dpa-"+suffix, "petrel-dpb-"+suffix
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", nsA).Run()
		exec.Command("ip", "netns", "del", nsB).Run()
	})
	run(t, "ip", "netns", "add", nsA)
	run(t, "ip", "netns", "add", nsB)
	run(t, "ip", "link", "add", "pdp-a", "netns", nsA, "type", "veth", "peer", "name", "pdp-b", "netns", nsB)
	for _, c := range [][]string{
		{nsA, "addr", "add", "192.0.2.1/24", "dev", "pdp-a"}, {nsA, "link", "set", "pdp-a", "up"},
		{nsA, "link", "set", "lo", "up"}, {nsA, "addr", "add", "10.1.0.1/32", "dev", "lo"},
		{nsB, "addr", "add", "192.0.2.2/24", "dev", "pdp-b"}, {nsB, "link", "set", "pdp-b", "up"},
		{nsB, "link", "set", "lo", "up"}, {nsB, "addr", "add", "10.2.0.1/32", "dev", "lo"},
	} {
		run(t, "ip", append([]string{"-n", c[0]}, c[1:]...)...)
	}
	return nsA, nsB
}

// startNode re-executes the test binary as a data plane inside ns.
func startNode(t *testing.T, ns string, s nodeSpec) (stop func() string) {
	t.Helper()
	spec, _ := json.Marshal(s)
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	cmd.Env = append(os.Environ(), nodeEnv+"="+string(spec))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	ready := make(chan bool, 1)
	go func() { ready <- lines.Scan() && lines.Text() == "ready" }()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("node in %s did not start", ns)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("node in %s: no ready line in 10 s", ns)
	}
	stopped := false
	stop = func() string {
		if stopped {
			return ""
		}
		stopped = true
		stdin.Close()
		var rest strings.Builder
		for lines.Scan() {
			rest.WriteString(lines.Text())
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		return rest.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// iperf3 runs a client in nsA against a server in nsB for secs seconds and
// returns the receiver's Mbit/s.
func iperf3(t *testing.T, nsA, nsB string, secs int, extra ...string) float64 {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", nsB, "iperf3", "-s", "-1", "-B", "10.2.0.1")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	args := append([]string{"netns", "exec", nsA, "iperf3", "-c", "10.2.0.1", "-B", "10.1.0.1",
		"-t", fmt.Sprint(secs), "-J"}, extra...)
	out := run(t, "ip", args...)
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("iperf3 output: %v", err)
	}
	return res.End.SumReceived.BitsPerSecond / 1e6
}

func TestTUNNamespaces(t *testing.T) {
	base := nodeSpec{Encr: wire.EncrAES_GCM_16, KeyLen: 36}
	tunNamespaces(t, base, "aes256gcm16, UDP 4500")
}

// TestTUNNamespacesRawESP is the same with plain ESP (IP protocol 50) and
// AES-CBC with HMAC-SHA-256.
func TestTUNNamespacesRawESP(t *testing.T) {
	base := nodeSpec{Encr: wire.EncrAES_CBC, KeyLen: 32, Integ: wire.IntegHMAC_SHA2_256_128, IntegLen: 32, RawESP: true}
	tunNamespaces(t, base, "aes256-sha256, raw ESP")
}

// TestTUNNamespacesRouteBased runs the tunnel route-based (like a VTI):
// no policies, 0.0.0.0/0 selectors, whatever is routed to petrel0 is sealed.
func TestTUNNamespacesRouteBased(t *testing.T) {
	base := nodeSpec{Encr: wire.EncrCHACHA20_POLY1305, KeyLen: 36, IfID: 7, LocalTS: "0.0.0.0/0", RemoteTS: "0.0.0.0/0"}
	tunNamespaces(t, base, "chacha20poly1305, route-based")
}

func tunNamespaces(t *testing.T, base nodeSpec, what string) {
	needRoot(t, "ip", "iperf3", "ping")
	nsA, nsB := netnsPair(t)
	// PETREL_DP_WORKERS sets the crypto workers per node (default GOMAXPROCS),
	// to compare serial and parallel crypto.
	fmt.Sscan(os.Getenv("PETREL_DP_WORKERS"), &base.Workers)
	a, b := base, base
	a.Local, a.Remote, a.Inner, a.Peer = "192.0.2.1", "192.0.2.2", "10.1.0.1", "10.2.0.1"
	b.Local, b.Remote, b.Inner, b.Peer = "192.0.2.2", "192.0.2.1", "10.2.0.1", "10.1.0.1"
	a.OutSPI, a.InSPI, b.OutSPI, b.InSPI = 0xa0000001, 0xb0000001, 0xb0000001, 0xa0000001
	stopA := startNode(t, nsA, a)
	stopB := startNode(t, nsB, b)
	out := run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.1.0.1", "10.2.0.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping through the tunnel:\n%s", out)
	}
	mbit := iperf3(t, nsA, nsB, 3)
	t.Logf("iperf3 TCP A->B through petrel ESP (%s, TUN): %.0f Mbit/s", what, mbit)
	mbitR := iperf3(t, nsA, nsB, 3, "-R")
	t.Logf("iperf3 TCP B->A (-R): %.0f Mbit/s", mbitR)
	if mbit < 1 || mbitR < 1 {
		t.Fatalf("no throughput: %.1f / %.1f Mbit/s", mbit, mbitR)
	}
	t.Logf("node A: %s", stopA())
	t.Logf("node B: %s", stopB())
}
