package interop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The petrel side of the interop scenarios: the binary built once per test
// run, its YAML config rendered from the same SwanConn values strongSwan's
// side uses, and a ProcessNode driven through petrel's own CLI.

var (
	petrelOnce sync.Once
	petrelBin  string
	petrelErr  error
)

// petrelBinary builds cmd/petrel once per test run into a temporary folder
// named after this process, removing folders left by earlier runs whose
// process is gone. PETREL_INTEROP_PETREL names a prebuilt binary instead.
func petrelBinary(s *Scenario) string {
	s.t.Helper()
	petrelOnce.Do(func() {
		if bin := os.Getenv("PETREL_INTEROP_PETREL"); bin != "" { // a binary built elsewhere
			petrelBin, petrelErr = filepath.Abs(bin)
			return
		}
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "petrel-interop-*"))
		for _, d := range old {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "petrel-interop-"))
			if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
				_ = os.RemoveAll(d)
			}
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("petrel-interop-%d", os.Getpid()))
		if petrelErr = os.MkdirAll(dir, 0o755); petrelErr != nil {
			return
		}
		petrelBin = filepath.Join(dir, "petrel")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		t0 := time.Now()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", petrelBin, "../../cmd/petrel").CombinedOutput()
		if err != nil {
			petrelErr = fmt.Errorf("go build ./cmd/petrel: %v\n%s", err, out)
			return
		}
		fmt.Fprintf(os.Stderr, "interop: built %s in %.1fs\n", petrelBin, time.Since(t0).Seconds())
	})
	if petrelErr != nil {
		s.Fatalf("%v", petrelErr)
	}
	return petrelBin
}

// petrelDaemon holds the daemon-level settings of one petrel node.
type petrelDaemon struct {
	Listen          string // the node's IKE address
	CookieThreshold int    // -1: petrel's default
}

// petrelID turns a strongSwan-style identity into petrel's typed form.
func petrelID(id string) string {
	switch {
	case id == "%any" || strings.Contains(id, ":"):
		return id
	case strings.Contains(id, "@"):
		return "email:" + id
	}
	return "fqdn:" + id
}

// yamlList renders a comma-separated strongSwan list as a YAML flow list.
func yamlList(v string) string {
	var parts []string
	for _, p := range strings.Split(v, ",") {
		parts = append(parts, strconv.Quote(strings.TrimSpace(p)))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// PetrelConf renders petrel's YAML config for the given connections, with
// the control socket and key logs inside the node's folder ({dir}).
func PetrelConf(d petrelDaemon, conns ...SwanConn) string {
	var b strings.Builder
	fmt.Fprintf(&b, "daemon:\n  listen: [%s]\n  control_socket: \"{dir}/petrel.sock\"\n", d.Listen)
	b.WriteString("  dataplane: userspace-tun\n  keylog_dir: \"{dir}/keylog\"\n")
	b.WriteString("  log:\n    level: debug\n")
	b.WriteString("  retransmit:\n    timeout: 1s\n    base: 1.4\n    tries: 8\n")
	if d.CookieThreshold >= 0 {
		fmt.Fprintf(&b, "  cookie_threshold: %d\n", d.CookieThreshold)
	}
	b.WriteString("connections:\n")
	for _, c := range conns {
		fmt.Fprintf(&b, "  %s:\n    local_addrs: %q\n    remote_addrs: %q\n    proposals: %s\n",
			c.Name, c.LocalAddrs, c.RemoteAddrs, yamlList(c.Proposals))
		for _, l := range c.Extra {
			fmt.Fprintf(&b, "    %s\n", l)
		}
		fmt.Fprintf(&b, "    local:\n      auth: psk\n      id: %q\n", petrelID(c.LocalID))
		fmt.Fprintf(&b, "    remote:\n      auth: psk\n      id: %q\n", petrelID(c.RemoteID))
		start := c.StartAction
		if start == "" {
			start = "none"
		}
		fmt.Fprintf(&b, "    children:\n      %s:\n        local_ts: %s\n        remote_ts: %s\n        esp_proposals: %s\n        start_action: %s\n",
			c.ChildName(), c.LocalTS, c.RemoteTS, yamlList(c.ESPProposals), start)
		for _, l := range c.ChildExtra {
			fmt.Fprintf(&b, "        %s\n", l)
		}
	}
	b.WriteString("secrets:\n")
	for i, c := range conns {
		fmt.Fprintf(&b, "  psk-%d:\n    ids: [%q, %q]\n    secret: \"0s%s\"\n", i, petrelID(c.LocalID),
			petrelID(c.RemoteID), base64.StdEncoding.EncodeToString([]byte(c.PSK)))
	}
	return b.String()
}

// NewPetrel prepares a petrel daemon node running config in ns. Initiate
// takes a child name and brings up the connection that holds it (`petrel
// up`); ListSAs reads `petrel sessions -o json`.
func (s *Scenario) NewPetrel(ns *Netns, name, config string, conns ...SwanConn) *ProcessNode {
	s.t.Helper()
	bin := petrelBinary(s)
	n := s.NewProcessNode(ns, name, bin, "daemon", "--config", "{config}")
	n.ConfigName = "petrel.yaml"
	n.Config = strings.ReplaceAll(config, "{dir}", n.Dir()) // ProcessNode expands only args and env
	n.Env = []string{"PETREL_SOCKET={dir}/petrel.sock"}
	n.IKEKeyFile, n.ESPKeyFile = "keylog/ikev2_decryption_table", "keylog/esp_sa"
	n.Ready = func(ctx context.Context, n *ProcessNode) error {
		_, err := n.Exec(ctx, bin, "sessions", "--timeout", "2s", "-o", "json")
		return err
	}
	connOf := map[string]string{}
	for _, c := range conns {
		connOf[c.ChildName()] = c.Name
	}
	n.InitiateFunc = func(ctx context.Context, n *ProcessNode, child string) error {
		conn, ok := connOf[child]
		if !ok {
			return fmt.Errorf("interop: %s: no connection holds child %s", n.Name(), child)
		}
		out, err := n.Exec(ctx, bin, "up", "--timeout", "14s", conn)
		if err != nil {
			return fmt.Errorf("interop: %s: petrel up %s: %v: %s", n.Name(), conn, err, strings.TrimSpace(out))
		}
		return nil
	}
	n.ListSAsFunc = func(ctx context.Context, n *ProcessNode) ([]IKESA, error) {
		ss, err := petrelSessions(ctx, n)
		if err != nil {
			return nil, err
		}
		var sas []IKESA
		for _, x := range ss {
			sas = append(sas, x.toIKESA())
		}
		return sas, nil
	}
	return n
}

// petrelSession is the part of `petrel sessions -o json` the scenarios read.
type petrelSession struct {
	Conn     string `json:"conn"`
	Index    int    `json:"index"`
	State    string `json:"state"`
	Role     string `json:"role"`
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	SPIi     string `json:"spi_i"`
	SPIr     string `json:"spi_r"`
	Encr     string `json:"encryption"`
	Integ    string `json:"hashing"`
	PRF      string `json:"prf"`
	DHGroup  string `json:"dh_group"`
	RemoteID string `json:"remote_id"`
	NATT     bool   `json:"nat_t"`
	Children []struct {
		Name     string   `json:"name"`
		InSPI    string   `json:"in_spi"`
		OutSPI   string   `json:"out_spi"`
		UDPEncap bool     `json:"udp_encap"`
		LocalTS  []string `json:"local_ts"`
		RemoteTS []string `json:"remote_ts"`
		BytesTx  uint64   `json:"bytes_tx"`
		BytesRx  uint64   `json:"bytes_rx"`
	} `json:"children"`
}

func petrelSessions(ctx context.Context, n *ProcessNode) ([]petrelSession, error) {
	out, err := n.Exec(ctx, n.Binary, "sessions", "--timeout", "4s", "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("interop: %s: petrel sessions: %v: %s", n.Name(), err, strings.TrimSpace(out))
	}
	var ss []petrelSession
	if err := json.Unmarshal([]byte(out), &ss); err != nil {
		return nil, fmt.Errorf("interop: %s: petrel sessions -o json: %v: %.200s", n.Name(), err, out)
	}
	return ss, nil
}

func splitHostPort(hp string) (host, port string) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return hp, ""
	}
	return strings.Trim(hp[:i], "[]"), hp[i+1:]
}

// toIKESA maps petrel's listing onto the harness's IKESA. petrel lists only
// installed Child SAs; it reports NAT-T as one flag (no local/remote
// split), so NATLocal and NATRemote stay false and scenarios read NATT.
func (p petrelSession) toIKESA() IKESA {
	sa := IKESA{Name: p.Conn, UniqueID: strconv.Itoa(p.Index), State: strings.ToUpper(p.State),
		Initiator: p.Role == "initiator", SPIi: strings.ToLower(p.SPIi), SPIr: strings.ToLower(p.SPIr),
		EncrAlg: p.Encr, IntegAlg: p.Integ, PRFAlg: p.PRF, DHGroup: p.DHGroup}
	sa.LocalHost, sa.LocalPort = splitHostPort(p.Local)
	sa.RemoteHost, sa.RemotePort = splitHostPort(p.Remote)
	for _, c := range p.Children {
		sa.Children = append(sa.Children, ChildSA{Name: c.Name, State: "INSTALLED", Protocol: "ESP",
			Encap: c.UDPEncap, SPIIn: strings.ToLower(c.InSPI), SPIOut: strings.ToLower(c.OutSPI),
			LocalTS: c.LocalTS, RemoteTS: c.RemoteTS, BytesIn: c.BytesRx, BytesOut: c.BytesTx})
	}
	return sa
}

// requireSameSAs fails unless the two listings describe the same IKE SA
// and the same Child SA child: equal IKE SPIs, and each side's inbound SPI
// the other's outbound one.
func requireSameSAs(s *Scenario, a IKESA, childA string, b IKESA, childB string) {
	s.t.Helper()
	if a.SPIi != b.SPIi || a.SPIr != b.SPIr {
		s.Fatalf("the two sides list different IKE SAs: %s_i %s_r vs %s_i %s_r", a.SPIi, a.SPIr, b.SPIi, b.SPIr)
	}
	ca, ok1 := a.Child(childA)
	cb, ok2 := b.Child(childB)
	if !ok1 || !ok2 {
		s.Fatalf("child SA missing: %s listed=%v, %s listed=%v", childA, ok1, childB, ok2)
	}
	if ca.SPIIn != cb.SPIOut || ca.SPIOut != cb.SPIIn {
		s.Fatalf("Child SA SPIs do not match: in %s out %s vs in %s out %s", ca.SPIIn, ca.SPIOut, cb.SPIIn, cb.SPIOut)
	}
	if !ca.Encap || !cb.Encap {
		s.Fatalf("Child SA not in UDP (kernel-libipsec needs ESP in UDP 4500): encap %v / %v", ca.Encap, cb.Encap)
	}
}
