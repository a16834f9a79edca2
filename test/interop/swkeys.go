package interop

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// charon logs, at level 4 of its IKE and CHD groups, every derived key as a
// hex dump:
//
//	01:15:34 09[IKE] <s2s|1> Sk_ei secret => 36 bytes @ 0x7f04ec00a480
//	01:15:34 09[IKE] <s2s|1>    0: F6 17 37 8E 2C 95 45 FE 1E 41 BC 2D B7 8E 4E 98  ..7.,.E..A.-..N.
//
// The IKE SA's SPIs are not in the log; they come from vici (events and
// listings), matched by the IKE SA's unique ID. Keys derived by IKE_SA_INIT
// belong to the SA in the line's <name|id>; keys of an SA made by a rekey
// are logged in the context of either SA (the old one on the initiator, the
// new one on the responder), so they go to the SA that the same job then
// reports "state change: CONNECTING => ESTABLISHED".
var (
	logLine   = regexp.MustCompile(`^\S+ (\d+)\[(\w+)\] (?:<(?:([^|>]*)\|)?(\d+)> )?(.*)$`)
	dumpHead  = regexp.MustCompile(`^(.*) => (\d+) bytes @ 0x[0-9a-f]+$`)
	dumpLine  = regexp.MustCompile(`^\s*\d+: (.*)$`)
	estab     = regexp.MustCompile(`^IKE_SA [^\[]+\[(\d+)\] state change: CONNECTING => ESTABLISHED`)
	jobStart  = regexp.MustCompile(`^(received packet|parsed |sending packet)`)
	parsedMsg = regexp.MustCompile(`^parsed \S+ (request|response) `)
	usingAlg  = regexp.MustCompile(`^\s*using (\S+) for (encryption|integrity)`)
	addingSA  = regexp.MustCompile(`^(?:adding|registering) (inbound|outbound) ESP SA`)
	saSPI     = regexp.MustCompile(`^\s*SPI 0x([0-9a-f]+), src (\S+) dst (\S+)`)
)

type swIKEKeys struct{ ei, er, ai, ar []byte }

type swChildKeys struct {
	encr, integ                  string // strongSwan algorithm names
	ei, er, ai, ar               []byte
	weInitiated                  bool // this side initiated the exchange that made it
	spiIn, spiOut                string
	srcIn, dstIn, srcOut, dstOut string
}

// keyOwner returns the unique ID of the IKE SA whose keys were dumped at
// line i by thread: the SA the same job reports established next (a
// rekey), else uid (IKE_SA_INIT).
func keyOwner(lines []string, i int, thread, uid string) string {
	for j := i + 1; j < len(lines) && j < i+400; j++ {
		m := logLine.FindStringSubmatch(lines[j])
		if m == nil || m[1] != thread {
			continue
		}
		if e := estab.FindStringSubmatch(m[5]); e != nil {
			return e[1]
		}
		if jobStart.MatchString(m[5]) {
			break
		}
	}
	return uid
}

// parseCharonKeys reads a charon log and returns the IKE key sets per
// unique ID and the Child SA keys with their SPIs.
func parseCharonKeys(path string) (map[string][]swIKEKeys, []swChildKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: key log: %w", err)
	}
	defer f.Close()
	ike := map[string][]swIKEKeys{}
	var children []swChildKeys
	// An IKE SA is processed by one thread at a time, from parsing a
	// message to deriving the keys it brings, so state is kept per IKE SA
	// (per thread for lines logged outside any IKE SA).
	type saState struct {
		lastDir  string // "request" or "response": the last message parsed
		child    *swChildKeys
		addingIn bool
	}
	states := map[string]*saState{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("interop: key log %s: %w", path, err)
	}
	for i := 0; i < len(lines); i++ {
		m := logLine.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		thread, uid, msg := m[1], m[4], m[5]
		key := "sa" + uid
		if uid == "" {
			key = "thread" + thread
		}
		ts := states[key]
		if ts == nil {
			ts = &saState{}
			states[key] = ts
		}
		if pm := parsedMsg.FindStringSubmatch(msg); pm != nil {
			ts.lastDir = pm[1]
			continue
		}
		if um := usingAlg.FindStringSubmatch(msg); um != nil && m[2] == "CHD" {
			if ts.child == nil {
				ts.child = &swChildKeys{weInitiated: ts.lastDir == "response"}
			}
			if um[2] == "encryption" {
				ts.child.encr = um[1]
			} else {
				ts.child.integ = um[1]
			}
			continue
		}
		if am := addingSA.FindStringSubmatch(msg); am != nil {
			ts.addingIn = am[1] == "inbound"
			continue
		}
		if sm := saSPI.FindStringSubmatch(msg); sm != nil && ts.child != nil {
			if ts.addingIn {
				ts.child.spiIn, ts.child.srcIn, ts.child.dstIn = sm[1], sm[2], sm[3]
			} else {
				ts.child.spiOut, ts.child.srcOut, ts.child.dstOut = sm[1], sm[2], sm[3]
			}
			if ts.child.spiIn != "" && ts.child.spiOut != "" {
				children = append(children, *ts.child)
				ts.child = nil
			}
			continue
		}
		dm := dumpHead.FindStringSubmatch(msg)
		if dm == nil {
			continue
		}
		n, _ := strconv.Atoi(dm[2])
		var data []byte
		for j := i + 1; j < len(lines) && len(data) < n; j++ {
			lm := logLine.FindStringSubmatch(lines[j])
			if lm == nil || lm[1] != thread {
				continue // another thread's line interleaved
			}
			hl := dumpLine.FindStringSubmatch(lm[5])
			if hl == nil {
				break
			}
			toks := strings.Split(hl[1], " ")
			for _, t := range toks[:min(len(toks), 16, n-len(data))] {
				b, err := hex.DecodeString(t)
				if err != nil || len(b) != 1 {
					return nil, nil, fmt.Errorf("interop: key log %s line %d: bad hex dump %q", path, j+1, lines[j])
				}
				data = append(data, b[0])
			}
			i = j
		}
		if len(data) != n {
			continue // truncated dump (log cut short by a kill)
		}
		switch label := dm[1]; label {
		case "Sk_ai secret", "Sk_ar secret", "Sk_ei secret", "Sk_er secret":
			owner := keyOwner(lines, i, thread, uid)
			sets := ike[owner]
			if label == "Sk_ai secret" || (label == "Sk_ei secret" && (len(sets) == 0 || sets[len(sets)-1].ei != nil)) {
				sets = append(sets, swIKEKeys{})
			}
			k := &sets[len(sets)-1]
			switch label {
			case "Sk_ai secret":
				k.ai = data
			case "Sk_ar secret":
				k.ar = data
			case "Sk_ei secret":
				k.ei = data
			case "Sk_er secret":
				k.er = data
			}
			ike[owner] = sets
		case "encryption initiator key", "encryption responder key", "integrity initiator key", "integrity responder key":
			if ts.child == nil {
				ts.child = &swChildKeys{weInitiated: ts.lastDir == "response"}
			}
			switch label {
			case "encryption initiator key":
				ts.child.ei = data
			case "encryption responder key":
				ts.child.er = data
			case "integrity initiator key":
				ts.child.ai = data
			case "integrity responder key":
				ts.child.ar = data
			}
		}
	}
	return ike, children, nil
}

// KeyLog implements Node: the IKE keys from charon's log matched to the
// SPIs vici reported, and the ESP keys with the SPIs charon logged.
func (w *StrongSwan) KeyLog() (KeyLog, error) {
	ike, children, err := parseCharonKeys(filepath.Join(w.dir, "charon.log"))
	if err != nil {
		return KeyLog{}, err
	}
	w.mu.Lock()
	seen := make(map[string]IKESA, len(w.seen))
	for k, v := range w.seen {
		seen[k] = v
	}
	w.mu.Unlock()
	var kl KeyLog
	for uid, sets := range ike {
		sa, ok := seen[uid]
		if !ok {
			return kl, fmt.Errorf("interop: %s: keys logged for IKE SA #%s but vici never reported its SPIs", w.name, uid)
		}
		// Several sets for one SA: a retried derivation (e.g. after
		// INVALID_KE_PAYLOAD); the last one is in use.
		line, err := ikeUATLine(sa, sets[len(sets)-1])
		if err != nil {
			return kl, fmt.Errorf("interop: %s: %w", w.name, err)
		}
		kl.IKE = append(kl.IKE, line)
	}
	for _, c := range children {
		lines, err := espUATLines(c)
		if err != nil {
			return kl, fmt.Errorf("interop: %s: %w", w.name, err)
		}
		kl.ESP = append(kl.ESP, lines...)
	}
	return kl, nil
}
