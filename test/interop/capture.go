package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Capture is a dumpcap packet capture on one interface of a namespace.
type Capture struct {
	Path string
	s    *Scenario
	p    *proc
}

// captureFilter keeps IKE, ESP-in-UDP, NAT keepalives and raw ESP, and
// the ICMP echo probes that show the capture is live.
const captureFilter = "udp port 500 or udp port 4500 or esp or icmp"

// StartCapture starts capturing dev in ns into results/<scenario>/<name>.pcap
// and returns once packets reach the file: dumpcap says "Capturing on"
// before the kernel delivers anything, so the harness pings across the
// link until the probe shows up. Stop it (or let cleanup do it) before
// reading the file.
func (s *Scenario) StartCapture(ns *Netns, dev, name string) *Capture {
	s.t.Helper()
	c := &Capture{Path: s.Path(name + ".pcap"), s: s}
	logPath := s.Path(name + ".dumpcap.log")
	cmd := ns.Command(context.Background(), "dumpcap", "-q", "-P", "-i", dev, "-f", captureFilter, "-w", c.Path)
	p, err := startProc(cmd, logPath)
	if err != nil {
		s.Fatalf("capture %s: %v", name, err)
	}
	c.p = p
	s.defer_("stop capture "+name, c.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		if strings.Contains(string(data), "Capturing on") {
			break
		}
		if !p.running() || time.Now().After(deadline) {
			s.Fatalf("capture on %s/%s did not start: %s", ns.Name, dev, strings.TrimSpace(string(data)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	peer, ok := s.linkPeer(ns, dev)
	if !ok {
		s.Fatalf("capture: %s/%s is not a link of this scenario", ns.Name, dev)
	}
	for time.Now().Before(deadline) {
		_, _ = ns.Run(2*time.Second, "ping", "-n", "-q", "-c", "1", "-W", "1", peer.String())
		if fi, err := os.Stat(c.Path); err == nil && fi.Size() > 24 { // more than the pcap file header
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Fatalf("capture on %s/%s: the probe ping never reached the file", ns.Name, dev)
	return nil
}

// Stop ends the capture and waits until the file is complete.
func (c *Capture) Stop() error {
	if c.p == nil {
		return nil
	}
	// libpcap hands packets to dumpcap in blocks retired by a timeout
	// (TPACKET_V3); what sits in an unretired block at SIGTERM is lost.
	time.Sleep(600 * time.Millisecond)
	return c.p.stop(5 * time.Second)
}

// IKEMsg is one IKE message as tshark decoded it.
type IKEMsg struct {
	Frame     int
	Src, Dst  string // ip:port
	Exchange  int    // 34 IKE_SA_INIT, 35 IKE_AUTH, 36 CREATE_CHILD_SA, 37 INFORMATIONAL
	Response  bool
	MsgID     uint32
	Payloads  []int // payload types, inner payloads after SK (46) once decrypted
	Notifies  []int // notify message types (RFC 7296 §3.10.1), decrypted ones included
	Encrypted bool  // has an SK (46) or SKF (53) payload
	Decrypted bool
}

// ESPPkt is one ESP packet (UDP-encapsulated or not).
type ESPPkt struct {
	Frame    int
	Src, Dst string
	SPI      string
	ICVGood  bool // only meaningful when ESP keys were given
	ICVBad   bool
}

// CaptureReport is tshark's view of a capture decoded with key tables.
type CaptureReport struct {
	Frames     int
	IKE        []IKEMsg
	ESP        []ESPPkt
	Keepalives int      // NAT-T keepalives (RFC 3948 §2.3)
	Problems   []string // malformed frames, expert errors, SK payloads left encrypted
}

// Analyze decodes a capture with tshark and the given key tables (IKE
// decryption table and, when present, ESP SAs) and reports every IKE
// message, ESP packet and problem. It fails only when tshark cannot run.
func (s *Scenario) Analyze(pcap string, kl KeyLog) (CaptureReport, error) {
	args := []string{"-n", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE",
		"-o", "esp.enable_authentication_check:TRUE", "-o", "esp.do_esp_sequence_analysis:FALSE"}
	for _, l := range kl.IKE {
		args = append(args, "-o", "uat:ikev2_decryption_table:"+l)
	}
	for _, l := range kl.ESP {
		args = append(args, "-o", "uat:esp_sa:"+l)
	}
	fields := []string{"frame.number", "_ws.malformed", "_ws.expert.severity", "_ws.expert.message",
		"ip.src", "udp.srcport", "ip.dst", "udp.dstport", "isakmp.exchangetype", "isakmp.flags",
		"isakmp.messageid", "isakmp.typepayload", "isakmp.enc.decrypted", "esp.spi", "esp.icv_good",
		"esp.icv_bad", "udpencap.nat_keepalive", "isakmp.notify.msgtype"}
	args = append(args, "-T", "fields", "-E", "header=n", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|")
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	empty := filepath.Join(s.Dir, "wireshark-empty") // no user preferences
	if err := os.MkdirAll(empty, 0o755); err != nil {
		return CaptureReport{}, fmt.Errorf("interop: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", args...)
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+empty)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return CaptureReport{}, fmt.Errorf("interop: tshark on %s: %w: %s", filepath.Base(pcap), err, strings.TrimSpace(stderr.String()))
	}
	return parseTsharkFields(string(out)), nil
}

// Expert severities (epan/proto.h): PI_WARN and PI_ERROR.
const (
	sevWarn  = 0x00600000
	sevError = 0x00800000
)

func parseTsharkFields(out string) CaptureReport {
	var r CaptureReport
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		for len(f) < 18 {
			f = append(f, "")
		}
		r.Frames++
		frame, _ := strconv.Atoi(f[0])
		// Problems count in frames that carry IKE; in ESP frames only the
		// ICV is judged, since heuristic dissectors of the decrypted inner
		// traffic (iperf3's random TCP payload) raise unrelated errors.
		isIKE := f[8] != ""
		if f[1] != "" && isIKE {
			r.Problems = append(r.Problems, fmt.Sprintf("frame %d: malformed IKE packet", frame))
		}
		sevs, msgs := strings.Split(f[2], "|"), strings.Split(f[3], "|")
		for i, sv := range sevs {
			n, err := strconv.ParseInt(sv, 0, 64)
			if err != nil {
				continue
			}
			msg := ""
			if i < len(msgs) {
				msg = msgs[i]
			}
			isICV := strings.Contains(msg, "Checksum") || strings.Contains(msg, "ICV")
			if (isIKE && n >= sevError) || (n >= sevWarn && isICV) {
				r.Problems = append(r.Problems, fmt.Sprintf("frame %d: expert: %s", frame, msg))
			}
		}
		src, dst := first(f[4])+":"+first(f[5]), first(f[6])+":"+first(f[7])
		if f[16] != "" {
			r.Keepalives++
		}
		if f[8] != "" {
			exch, _ := strconv.Atoi(first(f[8]))
			flags, _ := strconv.ParseUint(first(f[9]), 0, 8)
			mid, _ := strconv.ParseUint(first(f[10]), 0, 32)
			m := IKEMsg{Frame: frame, Src: src, Dst: dst, Exchange: exch, Response: flags&0x20 != 0,
				MsgID: uint32(mid), Decrypted: f[12] != ""}
			for _, p := range strings.Split(f[11], "|") {
				if n, err := strconv.Atoi(p); err == nil && n != 2 && n != 3 {
					m.Payloads = append(m.Payloads, n)
					if n == 46 || n == 53 {
						m.Encrypted = true
					}
				}
			}
			for _, n := range strings.Split(f[17], "|") {
				if v, err := strconv.Atoi(n); err == nil {
					m.Notifies = append(m.Notifies, v)
				}
			}
			if m.Encrypted && !m.Decrypted {
				r.Problems = append(r.Problems, fmt.Sprintf("frame %d: %s %s mid %d: SK payload not decrypted",
					frame, exchangeName(m.Exchange), reqResp(m.Response), m.MsgID))
			}
			r.IKE = append(r.IKE, m)
		}
		if f[13] != "" {
			r.ESP = append(r.ESP, ESPPkt{Frame: frame, Src: src, Dst: dst, SPI: first(f[13]),
				ICVGood: f[14] != "" && f[14] != "0" && f[14] != "False", ICVBad: f[15] != "" && f[15] != "0" && f[15] != "False"})
		}
	}
	return r
}

func first(s string) string {
	if i := strings.IndexByte(s, '|'); i >= 0 {
		return s[:i]
	}
	return s
}

func exchangeName(e int) string {
	switch e {
	case 34:
		return "IKE_SA_INIT"
	case 35:
		return "IKE_AUTH"
	case 36:
		return "CREATE_CHILD_SA"
	case 37:
		return "INFORMATIONAL"
	}
	return "exchange " + strconv.Itoa(e)
}

func reqResp(resp bool) string {
	if resp {
		return "response"
	}
	return "request"
}

// Summary renders the report as one line per IKE message, for the log.
func (r CaptureReport) Summary() string {
	var b strings.Builder
	for _, m := range r.IKE {
		fmt.Fprintf(&b, "frame %-4d %-21s -> %-21s %-15s %-8s mid %-3d payloads %v decrypted=%v\n", m.Frame, m.Src, m.Dst,
			exchangeName(m.Exchange), reqResp(m.Response), m.MsgID, m.Payloads, m.Decrypted)
	}
	good := 0
	for _, e := range r.ESP {
		if e.ICVGood {
			good++
		}
	}
	fmt.Fprintf(&b, "%d frames, %d IKE messages, %d ESP packets (%d with a good ICV), %d NAT keepalives, %d problems",
		r.Frames, len(r.IKE), len(r.ESP), good, r.Keepalives, len(r.Problems))
	return b.String()
}
