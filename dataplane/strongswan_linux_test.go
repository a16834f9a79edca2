//go:build linux

package dataplane

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// strongSwan 5.9 (charon with kernel-libipsec: userspace ESP on a TUN,
// always ESP-in-UDP on 4500) as a peer in the namespaces of netnsPair.

const charonPath = "/usr/lib/ipsec/charon"

type charon struct {
	ns, dir string
	cmd     *exec.Cmd
}

func needStrongSwan(t *testing.T) {
	t.Helper()
	needRoot(t, "ip", "iperf3", "ping", "swanctl")
	if _, err := os.Stat(charonPath); err != nil {
		t.Skip("strongSwan charon not installed")
	}
}

// swanctlConf is one side's connection: PSK, AES-256-GCM for IKE and ESP.
func swanctlConf(local, remote, localID, remoteID, localTS, remoteTS string) string {
	return fmt.Sprintf(`connections {
  petrel {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    proposals = aes256gcm16-prfsha256-x25519
    local {
      auth = psk
      id = %s
    }
    remote {
      auth = psk
      id = %s
    }
    children {
      net {
        mode = tunnel
        local_ts = %s
        remote_ts = %s
        esp_proposals = aes256gcm16
        start_action = none
      }
    }
  }
}
secrets {
  ike-ab {
    id-a = a.petrel.test
    id-b = b.petrel.test
    secret = petrel-interop-test-only-psk
  }
}
`, local, remote, localID, remoteID, localTS, remoteTS)
}

// startCharon runs charon in ns with kernel-libipsec and loads conf. Child
// SA keys are logged (chd level 4) so a test can hand them to petrel.
func startCharon(t *testing.T, ns, conf string) *charon {
	t.Helper()
	dir, err := os.MkdirTemp("", "petrel-charon-")
	if err != nil {
		t.Fatal(err)
	}
	c := &charon{ns: ns, dir: dir}
	t.Cleanup(func() { c.kill(); os.RemoveAll(dir) })
	for _, sub := range []string{"run", "swanctl/x509", "swanctl/x509ca", "swanctl/private", "swanctl/pubkey",
		"swanctl/rsa", "swanctl/ecdsa", "swanctl/pkcs8", "swanctl/pkcs12", "swanctl/x509crl", "swanctl/x509ocsp",
		"swanctl/x509aa", "swanctl/x509ac", "swanctl/bliss"} {
		must(t, os.MkdirAll(filepath.Join(dir, sub), 0o700))
	}
	vici := "unix://" + filepath.Join(dir, "charon.vici")
	// Plugin order matters: kernel-libipsec before kernel-netlink, and kdf
	// for the PRF (see shared/INTEROP.md).
	ssconf := fmt.Sprintf(`charon {
  load_modular = no
  load = random nonce openssl kdf pem pkcs1 pkcs8 x509 revocation constraints pubkey kernel-libipsec kernel-netlink socket-default vici updown
  install_routes = yes
  plugins {
    vici {
      socket = %s
    }
  }
  filelog {
    main {
      path = %s
      default = 1
      chd = 4
      flush_line = yes
      append = no
    }
  }
  syslog {
    daemon {
      default = -1
    }
  }
}
swanctl {
  load = pem pkcs1 pkcs8 x509 openssl random
  socket = %s
}
`, vici, filepath.Join(dir, "charon.log"), vici)
	must(t, os.WriteFile(filepath.Join(dir, "strongswan.conf"), []byte(ssconf), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "swanctl/swanctl.conf"), []byte(conf), 0o600))
	c.cmd = exec.Command("ip", "netns", "exec", ns, "env", "STRONGSWAN_CONF="+filepath.Join(dir, "strongswan.conf"),
		"/bin/sh", "-c", fmt.Sprintf("mount -n --bind '%s' /run && exec %s", filepath.Join(dir, "run"), charonPath))
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "charon.vici")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.swanctl(t, "--load-all", "--noprompt")
	return c
}

func (c *charon) swanctl(t *testing.T, args ...string) string {
	t.Helper()
	args = append(args, "--uri", "unix://"+filepath.Join(c.dir, "charon.vici"))
	cmd := exec.Command("swanctl", args...)
	cmd.Env = append(os.Environ(), "SWANCTL_DIR="+filepath.Join(c.dir, "swanctl"),
		"STRONGSWAN_CONF="+filepath.Join(c.dir, "strongswan.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "charon.log"))
		t.Fatalf("swanctl %v: %v\n%s\ncharon log:\n%s", args, err, out, log)
	}
	return string(out)
}

// kill stops charon without letting it send a DELETE (SIGKILL), so the
// peer keeps its SAs; its TUN device and routes go with the process.
func (c *charon) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	c.cmd.Wait()
	c.cmd = nil
}

// childKeys reads the first Child SA's SPIs and keys from charon's log:
// "CHILD_SA net{1} established with SPIs ccc_i ddd_o" and the DBG4 lines
// "encryption initiator key => N bytes @ ..." followed by a hex dump.
type childKeys struct {
	in, out          uint32
	initKey, respKey []byte
}

func (c *charon) childKeys(t *testing.T) childKeys {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(c.dir, "charon.log"))
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	var k childKeys
	m := regexp.MustCompile(`established with SPIs ([0-9a-f]{8})_i ([0-9a-f]{8})_o`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no established Child SA in charon log:\n%s", log)
	}
	in, _ := strconv.ParseUint(m[1], 16, 32)
	out, _ := strconv.ParseUint(m[2], 16, 32)
	k.in, k.out = uint32(in), uint32(out)
	k.initKey = hexDump(t, log, "encryption initiator key")
	k.respKey = hexDump(t, log, "encryption responder key")
	return k
}

func hexDump(t *testing.T, log, label string) []byte {
	t.Helper()
	i := strings.Index(log, label)
	if i < 0 {
		t.Fatalf("charon log has no %q (chd level 4)", label)
	}
	lines := strings.Split(log[i:], "\n")
	m := regexp.MustCompile(`=> (\d+) bytes`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("unexpected key line %q", lines[0])
	}
	n, _ := strconv.Atoi(m[1])
	var key []byte
	for _, l := range lines[1:] {
		if len(key) >= n {
			break
		}
		// "   0: 01 02 ... 10  ................" possibly after a timestamp.
		if j := strings.Index(l, ": "); j >= 0 {
			fields := strings.Fields(l[j+2:])
			for _, f := range fields {
				if len(f) != 2 || len(key) >= n {
					break
				}
				b, err := hex.DecodeString(f)
				if err != nil {
					break
				}
				key = append(key, b...)
			}
		}
	}
	if len(key) != n {
		t.Fatalf("%s: parsed %d of %d bytes", label, len(key), n)
	}
	return key
}

// TestStrongSwanInterop: strongSwan in both namespaces negotiates a Child
// SA (IKEv2, PSK, aes256gcm16) over UDP 4500; then charon in namespace A
// is killed (no DELETE) and a petrel data plane takes over its Child SA
// with the keys from charon's log. Ping and iperf3 must then run between
// petrel (A) and strongSwan's kernel-libipsec (B) in both directions.
func TestStrongSwanInterop(t *testing.T) {
	needStrongSwan(t)
	nsA, nsB := netnsPair(t)
	a := startCharon(t, nsA, swanctlConf("192.0.2.1", "192.0.2.2", "a.petrel.test", "b.petrel.test", "10.1.0.0/24", "10.2.0.0/24"))
	startCharon(t, nsB, swanctlConf("192.0.2.2", "192.0.2.1", "b.petrel.test", "a.petrel.test", "10.2.0.0/24", "10.1.0.0/24"))
	a.swanctl(t, "--initiate", "--child", "net", "--timeout", "10")
	out := run(t, "ip", "netns", "exec", nsA, "ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", "10.1.0.1", "10.2.0.1")
	if !strings.Contains(out, "2 received") {
		t.Fatalf("strongSwan <-> strongSwan ping:\n%s", out)
	}
	keys := a.childKeys(t)
	t.Logf("strongSwan Child SA: SPIs in %08x out %08x, %d-octet keys (key|salt)", keys.in, keys.out, len(keys.initKey))
	a.kill()
	time.Sleep(200 * time.Millisecond)

	// A was the initiator: initiator->responder keys protect A's outbound.
	stop := startNode(t, nsA, nodeSpec{Local: "192.0.2.1", Remote: "192.0.2.2", Inner: "10.1.0.1", Peer: "10.2.0.1",
		LocalTS: "10.1.0.0/24", RemoteTS: "10.2.0.0/24", OutSPI: keys.out, InSPI: keys.in,
		Encr: 20, OutKey: keys.initKey, InKey: keys.respKey,
		OutSeq: 1000}) // charon used the first sequence numbers; B's window has them
	out = run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.1.0.1", "10.2.0.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("petrel <-> strongSwan ping:\n%s", out)
	}
	up := iperf3(t, nsA, nsB, 3)
	down := iperf3(t, nsA, nsB, 3, "-R")
	t.Logf("iperf3 petrel(A) -> strongSwan(B): %.0f Mbit/s; strongSwan -> petrel: %.0f Mbit/s", up, down)
	if up < 1 || down < 1 {
		t.Fatalf("no throughput %.1f / %.1f", up, down)
	}
	t.Logf("petrel node: %s", stop())
}

// TestCompareStrongSwan is the throughput comparison: on one veth pair, in
// one run, iperf3 TCP through petrel <-> petrel (userspace ESP on TUN) and
// through strongSwan <-> strongSwan (kernel-libipsec), both AES-256-GCM in
// UDP 4500, and prints both and their ratio. It is a benchmark, so it
// asserts nothing about speed. Run it with
//
//	PETREL_BENCH=1 [PETREL_BENCH_SECS=10] go test ./dataplane -run TestCompareStrongSwan -v
func TestCompareStrongSwan(t *testing.T) {
	if os.Getenv("PETREL_BENCH") == "" {
		t.Skip("set PETREL_BENCH=1 to run the petrel vs strongSwan throughput comparison")
	}
	needStrongSwan(t)
	secs := 5
	fmt.Sscan(os.Getenv("PETREL_BENCH_SECS"), &secs)
	nsA, nsB := netnsPair(t)

	a := nodeSpec{Local: "192.0.2.1", Remote: "192.0.2.2", Inner: "10.1.0.1", Peer: "10.2.0.1",
		OutSPI: 0xa0000001, InSPI: 0xb0000001, Encr: 20, KeyLen: 36}
	b := nodeSpec{Local: "192.0.2.2", Remote: "192.0.2.1", Inner: "10.2.0.1", Peer: "10.1.0.1",
		OutSPI: 0xb0000001, InSPI: 0xa0000001, Encr: 20, KeyLen: 36}
	stopA, stopB := startNode(t, nsA, a), startNode(t, nsB, b)
	petrel := iperf3(t, nsA, nsB, secs)
	stopA()
	stopB()

	ca := startCharon(t, nsA, swanctlConf("192.0.2.1", "192.0.2.2", "a.petrel.test", "b.petrel.test", "10.1.0.1/32", "10.2.0.1/32"))
	cb := startCharon(t, nsB, swanctlConf("192.0.2.2", "192.0.2.1", "b.petrel.test", "a.petrel.test", "10.2.0.1/32", "10.1.0.1/32"))
	ca.swanctl(t, "--initiate", "--child", "net", "--timeout", "10")
	strongswan := iperf3(t, nsA, nsB, secs)
	ca.kill()
	cb.kill()

	fmt.Printf("iperf3 TCP %d s, AES-256-GCM ESP in UDP 4500, one veth pair, %d CPUs\n", secs, numCPU())
	fmt.Printf("  petrel     <-> petrel     (userspace ESP, TUN):   %8.0f Mbit/s\n", petrel)
	fmt.Printf("  strongSwan <-> strongSwan (kernel-libipsec, TUN): %8.0f Mbit/s\n", strongswan)
	fmt.Printf("  ratio petrel / strongSwan: %.2fx\n", petrel/strongswan)
}

func numCPU() int {
	out, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(out), "processor\t:")
}

// netnsNAT builds A - R - B: A (192.0.2.1) behind a NAT router R that maps
// A's UDP source to 198.51.100.254:40000-40999 towards B (198.51.100.2),
// so IKE detects NAT (RFC 7296 §2.23) and ESP must cross the mapping.
func netnsNAT(t *testing.T) (nsA, nsR, nsB string) {
	t.Helper()
	suffix := fmt.Sprint(os.Getpid())
	nsA, nsR, nsB = "petrel-na-"+suffix, "petrel-nr-"+suffix, "petrel-nb-"+suffix
	t.Cleanup(func() {
		for _, ns := range []string{nsA, nsR, nsB} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{nsA, nsR, nsB} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", "pn-a", "netns", nsA, "type", "veth", "peer", "name", "pn-ra", "netns", nsR)
	run(t, "ip", "link", "add", "pn-rb", "netns", nsR, "type", "veth", "peer", "name", "pn-b", "netns", nsB)
	for _, c := range [][]string{
		{nsA, "addr", "add", "192.0.2.1/24", "dev", "pn-a"}, {nsA, "link", "set", "pn-a", "up"},
		{nsA, "route", "add", "default", "via", "192.0.2.254"}, {nsA, "addr", "add", "10.1.0.1/32", "dev", "lo"},
		{nsR, "addr", "add", "192.0.2.254/24", "dev", "pn-ra"}, {nsR, "link", "set", "pn-ra", "up"},
		{nsR, "addr", "add", "198.51.100.254/24", "dev", "pn-rb"}, {nsR, "link", "set", "pn-rb", "up"},
		{nsB, "addr", "add", "198.51.100.2/24", "dev", "pn-b"}, {nsB, "link", "set", "pn-b", "up"},
		{nsB, "addr", "add", "10.2.0.1/32", "dev", "lo"},
	} {
		run(t, "ip", append([]string{"-n", c[0]}, c[1:]...)...)
	}
	run(t, "ip", "netns", "exec", nsR, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	rules := `table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    oifname "pn-rb" ip saddr 192.0.2.0/24 meta l4proto udp snat to 198.51.100.254:40000-40999
    oifname "pn-rb" ip saddr 192.0.2.0/24 masquerade
  }
}
`
	cmd := exec.Command("ip", "netns", "exec", nsR, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}
	return nsA, nsR, nsB
}

// TestStrongSwanInteropNAT is TestStrongSwanInterop with A behind a NAT
// that rewrites its UDP port: ESP in UDP from petrel must cross the
// mapping strongSwan learned during IKE, and B's replies come back in.
func TestStrongSwanInteropNAT(t *testing.T) {
	needStrongSwan(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	nsA, _, nsB := netnsNAT(t)
	a := startCharon(t, nsA, swanctlConf("192.0.2.1", "198.51.100.2", "a.petrel.test", "b.petrel.test", "10.1.0.0/24", "10.2.0.0/24"))
	b := startCharon(t, nsB, swanctlConf("198.51.100.2", "%any", "b.petrel.test", "a.petrel.test", "10.2.0.0/24", "10.1.0.0/24"))
	a.swanctl(t, "--initiate", "--child", "net", "--timeout", "10")
	sas := b.swanctl(t, "--list-sas")
	m := regexp.MustCompile(`remote .* @ 198\.51\.100\.254\[(\d+)\]`).FindStringSubmatch(sas)
	if m == nil || m[1] == "4500" || !strings.Contains(sas, "TUNNEL-in-UDP") {
		t.Fatalf("strongSwan B did not see A behind a port-rewriting NAT:\n%s", sas)
	}
	t.Logf("strongSwan B sees A at 198.51.100.254:%s", m[1])
	keys := a.childKeys(t)
	a.kill()
	time.Sleep(200 * time.Millisecond)
	stop := startNode(t, nsA, nodeSpec{Local: "192.0.2.1", Remote: "198.51.100.2", Inner: "10.1.0.1", Peer: "10.2.0.1",
		LocalTS: "10.1.0.0/24", RemoteTS: "10.2.0.0/24", OutSPI: keys.out, InSPI: keys.in,
		Encr: 20, OutKey: keys.initKey, InKey: keys.respKey, OutSeq: 1000})
	out := run(t, "ip", "netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", "10.1.0.1", "10.2.0.1")
	if !strings.Contains(out, "3 received") {
		t.Fatalf("petrel behind NAT <-> strongSwan ping:\n%s\nB:\n%s", out, b.swanctl(t, "--list-sas"))
	}
	up := iperf3(t, nsA, nsB, 3)
	down := iperf3(t, nsA, nsB, 3, "-R")
	t.Logf("through NAT: petrel -> strongSwan %.0f Mbit/s, strongSwan -> petrel %.0f Mbit/s", up, down)
	if up < 1 || down < 1 {
		t.Fatalf("no throughput %.1f / %.1f", up, down)
	}
	t.Logf("petrel node: %s", stop())
}
