package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Petrel's role in a scenario, as shown in the summary table.
const (
	RoleSelfTest  = "none (self-test)"
	RoleInitiator = "initiator"
	RoleResponder = "responder"
)

// Scenario is one run of one topology with its nodes. It owns everything it
// creates and removes it on success, failure and interrupt; on failure it
// keeps the logs, captures and configs under results/<name>/ and prints the
// reason in one line plus the relevant log lines.
type Scenario struct {
	t     testing.TB
	Name  string
	Role  string
	Dir   string // results/<name>: configs, logs, captures
	id    string // short tag inside namespace names
	start time.Time

	mu       sync.Mutex
	cleanups []cleanup
	reason   string
	nodes    []Node
	links    []*Link
	extra    []string // more log files to search on failure
}

type cleanup struct {
	what string
	fn   func() error
}

var (
	liveMu   sync.Mutex
	live     = map[*Scenario]bool{}
	scenSeq  int
	summary  []summaryRow
	resultsD = "results"
)

type summaryRow struct {
	name, role, result string
	took               time.Duration
	reason             string
}

// Begin starts a scenario: it skips the test unless the harness is enabled
// (PETREL_INTEROP=1, root, tools present), makes a fresh results folder and
// arranges cleanup and the summary row.
func Begin(t *testing.T, name, role string) *Scenario {
	t.Helper()
	if reason, fatal := gateReason(); fatal {
		t.Fatal(reason)
	} else if reason != "" {
		t.Skip(reason)
	}
	liveMu.Lock()
	scenSeq++
	id := fmt.Sprintf("s%d", scenSeq)
	liveMu.Unlock()
	root := resultsD
	if d := os.Getenv("PETREL_INTEROP_RESULTS"); d != "" {
		root = d // a short path keeps unix socket paths (vici, control) under 108 octets wherever the checkout is
	}
	dir, err := filepath.Abs(filepath.Join(root, name))
	if err != nil {
		t.Fatalf("interop: results folder: %v", err)
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("interop: results folder: %v", err)
	}
	s := &Scenario{t: t, Name: name, Role: role, Dir: dir, id: id, start: time.Now()}
	liveMu.Lock()
	live[s] = true
	liveMu.Unlock()
	t.Cleanup(s.finish)
	return s
}

// Fatalf records the one-line reason the scenario failed and stops it.
func (s *Scenario) Fatalf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	if s.reason == "" {
		s.reason, _, _ = strings.Cut(msg, "\n") // the one-line why
	}
	s.mu.Unlock()
	s.t.Fatalf("%s: %s", s.Name, msg)
}

// Logf logs a progress line with the time since the scenario began.
func (s *Scenario) Logf(format string, args ...any) {
	s.t.Helper()
	s.t.Logf("[%5.1fs] %s", time.Since(s.start).Seconds(), fmt.Sprintf(format, args...))
}

// AddLog registers another log file to search and print on failure.
func (s *Scenario) AddLog(path string) {
	s.mu.Lock()
	s.extra = append(s.extra, path)
	s.mu.Unlock()
}

// Path returns a path inside the scenario's results folder.
func (s *Scenario) Path(elem ...string) string {
	return filepath.Join(append([]string{s.Dir}, elem...)...)
}

// defer_ registers fn to run at cleanup, last registered first.
func (s *Scenario) defer_(what string, fn func() error) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, cleanup{what, fn})
	s.mu.Unlock()
}

// runCleanups pops and runs every registered cleanup exactly once, even
// when the signal handler and t.Cleanup race.
func (s *Scenario) runCleanups() []error {
	var errs []error
	for {
		s.mu.Lock()
		if len(s.cleanups) == 0 {
			s.mu.Unlock()
			return errs
		}
		c := s.cleanups[len(s.cleanups)-1]
		s.cleanups = s.cleanups[:len(s.cleanups)-1]
		s.mu.Unlock()
		if err := c.fn(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.what, err))
		}
	}
}

func (s *Scenario) finish() {
	took := time.Since(s.start)
	for _, err := range s.runCleanups() {
		s.t.Errorf("interop: cleanup: %v", err)
	}
	liveMu.Lock()
	delete(live, s)
	liveMu.Unlock()
	row := summaryRow{name: s.Name, role: s.Role, result: "PASS", took: took}
	switch {
	case s.t.Skipped():
		row.result = "SKIP"
	case s.t.Failed():
		row.result = "FAIL"
		s.mu.Lock()
		row.reason = s.reason
		s.mu.Unlock()
		if row.reason == "" {
			row.reason = "see test log"
		}
		s.t.Logf("FAIL %s (petrel %s): %s", s.Name, s.Role, row.reason)
		s.t.Logf("relevant log lines (all files kept in %s):\n%s", s.Dir, s.relevantLogLines(12))
		if os.Getenv("CI") != "" {
			s.t.Logf("CI: full logs of the failed scenario:\n%s", s.fullLogs(300))
		}
	default:
		if os.Getenv("PETREL_INTEROP_KEEP") == "" {
			_ = os.RemoveAll(s.Dir)
		}
	}
	liveMu.Lock()
	summary = append(summary, row)
	liveMu.Unlock()
}

// relevantLines matches log lines that usually say why IKE failed.
var relevantLines = regexp.MustCompile(`(?i)error|fail|unable|invalid|NO_PROPOSAL|AUTH_FAILED|AUTHENTICATION_FAILED|mismatch|TS_UNACCEPTABLE|retransmit|giving up|timed out|unacceptable|no matching|no shared|no IKE config|no private key|not found|denied|killed|signal`)

// expectedNoise matches lines that look relevant but are expected: the
// kernel-netlink IPsec feature fails once kernel-libipsec took its place.
var expectedNoise = regexp.MustCompile(`kernel-ipsec feature|feature .*KERNEL_IPSEC.* failed to load|dpd_timeout|failed to load - \w+_plugin_create not found`)

// relevantLogLines returns, for each log file of the scenario's nodes, the
// last max lines matching relevantLines, or the file's last lines when none
// match.
func (s *Scenario) relevantLogLines(max int) string {
	s.mu.Lock()
	var files []string
	for _, n := range s.nodes {
		files = append(files, n.Logs()...)
	}
	files = append(files, s.extra...)
	s.mu.Unlock()
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(strings.TrimSpace(string(data))) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		var hits []string
		for _, l := range lines {
			if relevantLines.MatchString(l) && !expectedNoise.MatchString(l) {
				hits = append(hits, l)
			}
		}
		if len(hits) == 0 {
			hits = lines
		}
		if len(hits) > max {
			hits = hits[len(hits)-max:]
		}
		fmt.Fprintf(&b, "--- %s\n", f)
		for _, l := range hits {
			fmt.Fprintf(&b, "    %s\n", l)
		}
	}
	return b.String()
}

// fullLogs returns the last max lines of every log file of the scenario.
func (s *Scenario) fullLogs(max int) string {
	s.mu.Lock()
	var files []string
	for _, n := range s.nodes {
		files = append(files, n.Logs()...)
	}
	files = append(files, s.extra...)
	s.mu.Unlock()
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > max {
			fmt.Fprintf(&b, "--- %s (last %d of %d lines)\n", f, max, len(lines))
			lines = lines[len(lines)-max:]
		} else {
			fmt.Fprintf(&b, "--- %s\n", f)
		}
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

// cleanupAll runs the cleanups of every live scenario, which fail with
// why as their reason (the signal path).
func cleanupAll(why string) {
	liveMu.Lock()
	var ss []*Scenario
	for s := range live {
		ss = append(ss, s)
	}
	liveMu.Unlock()
	for _, s := range ss {
		s.mu.Lock()
		if s.reason == "" {
			s.reason = why
		}
		s.mu.Unlock()
	}
	for _, s := range ss {
		for _, err := range s.runCleanups() {
			fmt.Fprintf(os.Stderr, "interop: cleanup %s: %v\n", s.Name, err)
		}
	}
}

// summaryTable renders the scenario table printed at the end of the run,
// as a Markdown table (every line starts with "|", which is also what
// scripts/test.sh lets through its filter).
func summaryTable() string {
	liveMu.Lock()
	rows := append([]summaryRow(nil), summary...)
	liveMu.Unlock()
	if len(rows) == 0 {
		return ""
	}
	w := len("scenario")
	for _, r := range rows {
		w = max(w, len(r.name))
	}
	var b strings.Builder
	line := func(name, role, result, took, why string) {
		fmt.Fprintf(&b, "| %-*s | %-16s | %-6s | %7s | %s\n", w, name, role, result, took, why)
	}
	line("scenario", "petrel role", "result", "time", "why |")
	fmt.Fprintf(&b, "|%s|%s|%s|%s|---|\n", strings.Repeat("-", w+2), strings.Repeat("-", 18), strings.Repeat("-", 8), strings.Repeat("-", 9))
	var total time.Duration
	for _, r := range rows {
		total += r.took
		line(r.name, r.role, r.result, fmt.Sprintf("%.1fs", r.took.Seconds()), r.reason+" |")
	}
	line("total", "", "", fmt.Sprintf("%.1fs", total.Seconds()), " |")
	return b.String()
}

// ctx returns a context bounded by d, cancelled at cleanup.
func (s *Scenario) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	s.defer_("cancel context", func() error { cancel(); return nil })
	return ctx
}
