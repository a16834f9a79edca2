package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// PingResult is what one bounded ping run saw.
type PingResult struct {
	Sent, Received int
	Output         string
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// Ping sends count echo requests from src to dst inside ns, interval apart,
// and gives up after deadline in all (ping -w): it is bounded in count and
// time. An error means ping could not run, not that replies were lost.
func (n *Netns) Ping(src, dst netip.Addr, count int, interval, deadline time.Duration) (PingResult, error) {
	secs := max(1, int(deadline.Seconds()+0.5))
	out, _ := n.Run(deadline+5*time.Second, "ping", "-n", "-q", "-c", strconv.Itoa(count),
		"-i", fmt.Sprintf("%.2f", interval.Seconds()), "-W", "1", "-w", strconv.Itoa(secs),
		"-I", src.String(), dst.String())
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return PingResult{Output: out}, fmt.Errorf("interop: ping %s->%s in %s: no statistics: %s", src, dst, n.Name, out)
	}
	r := PingResult{Output: out}
	r.Sent, _ = strconv.Atoi(m[1])
	r.Received, _ = strconv.Atoi(m[2])
	return r, nil
}

// IperfResult is the outcome of one bounded iperf3 TCP run.
type IperfResult struct {
	SentBits, ReceivedBits float64 // per second
	Retransmits            int
}

// Iperf3 runs an iperf3 server on dst in server (one test, -1) and a TCP
// client from src in client for secs seconds, both killed after a hard
// bound, and returns the client's JSON summary.
func (s *Scenario) Iperf3(client *Netns, src netip.Addr, server *Netns, dst netip.Addr, secs int) (IperfResult, error) {
	bound := time.Duration(secs+15) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	srv := server.Command(ctx, "iperf3", "-s", "-1", "-B", dst.String(), "-p", "5201")
	s.AddLog(filepath.Join(s.Dir, "iperf3-server.log"))
	p, err := startProc(srv, filepath.Join(s.Dir, "iperf3-server.log"))
	if err != nil {
		return IperfResult{}, err
	}
	defer p.stop(2 * time.Second)
	var out string
	for try := 0; try < 20; try++ { // the server needs a moment to listen
		out, err = runCmd(client.Command(ctx, "iperf3", "-c", dst.String(), "-B", src.String(), "-p", "5201",
			"-t", strconv.Itoa(secs), "-J", "--connect-timeout", "3000"))
		if err == nil {
			err = iperfJSONError(out) // with -J, iperf3 3.12 exits 0 even when it could not connect
		}
		if err == nil || ctx.Err() != nil || !p.running() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return IperfResult{}, fmt.Errorf("interop: iperf3 %s->%s: %w", src, dst, err)
	}
	var j struct {
		End struct {
			SumSent struct {
				BitsPerSecond float64 `json:"bits_per_second"`
				Retransmits   int     `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return IperfResult{}, fmt.Errorf("interop: iperf3 JSON: %w", err)
	}
	return IperfResult{SentBits: j.End.SumSent.BitsPerSecond, ReceivedBits: j.End.SumReceived.BitsPerSecond,
		Retransmits: j.End.SumSent.Retransmits}, nil
}

// iperfJSONError returns the "error" iperf3 reported in its JSON output,
// or nil.
func iperfJSONError(out string) error {
	var j struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(out), &j) == nil && j.Error != "" {
		return fmt.Errorf("iperf3: %s", j.Error)
	}
	return nil
}
