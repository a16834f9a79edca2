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
// listings), matched by the IKE SA's unique ID in <name|id>. Keys of an
// IKE SA created by a rekey are logged under the old SA's ID, so the n-th
// key set under an ID belongs to the n-th SA of its rekey chain.
var (
	logLine   = regexp.MustCompile(`^\S+ (\d+)\[(\w+)\] (?:<([^|>]*)\|(\d+)> )?(.*)$`)
	dumpHead  = regexp.MustCompile(`^(.*) => (\d+) bytes @ 0x[0-9a-f]+$`)
	dumpLine  = regexp.MustCompile(`^\s*\d+: (.*)$`)
	parsedMsg = regexp.MustCompile(`^parsed \S+ (request|response) `)
	usingAlg  = regexp.MustCompile(`^\s*using (\S+) for (encryption|integrity)`)
	addingSA  = regexp.MustCompile(`^adding (inbound|outbound) ESP SA`)
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

// parseCharonKeys reads a charon log and returns the IKE key sets per
// unique ID, in order, and the Child SA keys with their SPIs.
func parseCharonKeys(path string) (map[string][]swIKEKeys, []swChildKeys, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("interop: key log: %w", err)
	}
	defer f.Close()
	ike := map[string][]swIKEKeys{}
	var children []swChildKeys
	type threadState struct {
		lastDir  string // "request" or "response": the last message this thread parsed
		child    *swChildKeys
		addingIn bool
	}
	threads := map[string]*threadState{}
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
		ts := threads[thread]
		if ts == nil {
			ts = &threadState{}
			threads[thread] = ts
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
			sets := ike[uid]
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
			ike[uid] = sets
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
	rekeyed := make(map[string]string, len(w.rekeyed))
	for k, v := range w.rekeyed {
		rekeyed[k] = v
	}
	w.mu.Unlock()
	var kl KeyLog
	for uid, sets := range ike {
		id := uid
		for _, k := range sets {
			sa, ok := seen[id]
			if !ok {
				return kl, fmt.Errorf("interop: %s: keys logged for IKE SA #%s but vici never reported its SPIs", w.name, id)
			}
			line, err := ikeUATLine(sa, k)
			if err != nil {
				return kl, fmt.Errorf("interop: %s: %w", w.name, err)
			}
			kl.IKE = append(kl.IKE, line)
			id = rekeyed[id]
		}
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
