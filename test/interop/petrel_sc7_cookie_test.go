package interop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The COOKIE challenge (RFC 7296 §2.6) with petrel as initiator.
// strongSwan 5.9 demands a cookie only while its count of half-open IKE
// SAs (as responder) is at least charon.cookie_threshold (receiver.c:
// `half_open >= cookie_threshold`), so a lone initiator never sees one.
// Here a second petrel ("decoy", 192.0.2.3 on gwa, netstack data plane so
// it needs no TUN, NAT-T socket on local port 4501 since petrel binds that
// one to the wildcard address) first completes an IKE_SA_INIT with
// strongSwan; its IKE_AUTH, which moves to UDP 4500 because strongSwan with
// kernel-libipsec fakes NAT detection, is dropped by nftables in gwa's
// output hook (udp sport 4501 dport 4500) and never reaches the link.
// strongSwan therefore holds one half-open IKE SA (CONNECTING, unnamed),
// and with cookie_threshold = 1 answers the real petrel's (192.0.2.1)
// IKE_SA_INIT with N(COOKIE).

const cookieDecoyAddr = "192.0.2.3"

// cookieInitiator is TestPetrelCookie's initiator row.
func cookieInitiator(s *Scenario) {
	s.t.Helper()
	topo := s.NewSiteToSite()
	topo.A.MustRun(5*time.Second, "ip", "addr", "add", cookieDecoyAddr+"/24", "dev", "eth0")
	x := &petrelS2S{s: s, topo: topo}
	x.ca, x.cb = siteToSiteConns(topo)
	da := x.ca
	da.Name, da.LocalAddrs, da.LocalID, da.PSK = "decoy", cookieDecoyAddr, "decoy.example", selfPSK+"-decoy"
	da.LocalTS = "10.1.0.3/32"
	db := da
	db.LocalAddrs, db.RemoteAddrs = da.RemoteAddrs, da.LocalAddrs
	db.LocalID, db.RemoteID = da.RemoteID, da.LocalID
	db.LocalTS, db.RemoteTS = da.RemoteTS, da.LocalTS

	x.peer = s.NewStrongSwan(topo.B, "gwb", SwanctlConf(x.cb, db))
	x.peer.Charon = "dos_protection = yes\ncookie_threshold = 1"
	x.dut = s.NewPetrel(topo.A, "gwa", PetrelConf(petrelDaemon{Listen: topo.AddrA.String(), CookieThreshold: -1}, x.ca), x.ca)
	dconf := PetrelConf(petrelDaemon{Listen: cookieDecoyAddr, CookieThreshold: -1}, da)
	if !strings.Contains(dconf, "dataplane: userspace-tun") {
		s.Fatalf("petrel config template changed: no userspace-tun data plane to replace for the decoy")
	}
	// petrel binds its NAT-T socket to the wildcard address (seen here:
	// the decoy's IKE_AUTH left from 192.0.2.1:4501, not from its listen
	// address 192.0.2.3), so the decoy takes local port 4501 and the drop
	// rule matches that port, which only the decoy uses.
	dconf = strings.Replace(dconf, "dataplane: userspace-tun", "dataplane: netstack\n  natt_port: 4501", 1)
	decoy := s.NewPetrel(topo.A, "decoy", dconf, da)
	if err := topo.A.nft(`table ip pi_cookie {
	chain out {
		type filter hook output priority filter; policy accept;
		udp sport 4501 udp dport 4500 counter drop
	}
}
`); err != nil {
		s.Fatalf("%v", err)
	}
	s.StartNode(x.dut)
	s.StartNode(decoy)
	s.StartNode(x.peer)
	x.capture = s.StartCapture(topo.B, "eth0", "link")

	// The decoy's `petrel up` cannot succeed; it runs in the background,
	// bounded, and is cancelled once the rest is checked.
	decoyDone := make(chan error, 1)
	decoyCtx, decoyCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer decoyCancel()
	go func() { decoyDone <- decoy.Initiate(decoyCtx, da.ChildName()) }()
	// Half-open on strongSwan's side: the decoy's IKE_AUTH was sent from
	// port 4501 (and dropped in gwa) and strongSwan lists the decoy's IKE
	// SA unfinished.
	var dropped int
	var half IKESA
	deadline := time.Now().Add(5 * time.Second)
	for {
		dropped = cookieDropCount(s, topo.A)
		var sas []IKESA
		sas, _ = x.peer.ListSAs(s.ctx(3 * time.Second))
		half = IKESA{}
		for _, sa := range sas {
			if sa.RemoteHost == cookieDecoyAddr { // unnamed until IKE_AUTH picks a peer config
				half = sa
			}
		}
		if dropped > 0 && half.SPIi != "" && half.State == "CONNECTING" {
			break
		}
		if time.Now().After(deadline) {
			s.Fatalf("no half-open SA for the decoy within 5 s: %d IKE_AUTH datagrams dropped in gwa, strongSwan lists %s",
				dropped, describeSAs(sas))
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Logf("strongSwan holds the decoy's IKE SA %s_i %s_r in state %s; gwa dropped %d datagram(s) from the decoy's port 4501 to UDP 4500",
		half.SPIi, half.SPIr, half.State, dropped)

	dut, peer := x.up(15 * time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	dut, peer = x.list() // with counters
	requireChildTraffic(s, dut, x.ca.ChildName())
	requireChildTraffic(s, peer, x.cb.ChildName())

	// The decoy's SA is still half-open on strongSwan's side.
	sas, err := x.peer.ListSAs(s.ctx(5 * time.Second))
	if err != nil {
		s.Fatalf("%v", err)
	}
	var still bool
	for _, sa := range sas {
		if sa.SPIi == half.SPIi && sa.RemoteHost == cookieDecoyAddr {
			if sa.State != "CONNECTING" || len(sa.Children) != 0 {
				s.Fatalf("the decoy's IKE SA on strongSwan is %s with %d Child SAs, want it half-open (CONNECTING)", sa.State, len(sa.Children))
			}
			still = true
		}
	}
	if !still {
		s.Fatalf("strongSwan no longer lists the decoy's half-open IKE SA %s_i: %s", half.SPIi, describeSAs(sas))
	}
	dsas, err := decoy.ListSAs(s.ctx(5 * time.Second))
	if err != nil {
		s.Fatalf("decoy: %v", err)
	}
	for _, sa := range dsas {
		if sa.State == "ESTABLISHED" {
			s.Fatalf("the decoy lists an established IKE SA %s_i; its IKE_AUTH should never have arrived", sa.SPIi)
		}
	}
	decoyCancel()
	if err := <-decoyDone; err == nil {
		s.Fatalf("the decoy's `petrel up` succeeded; its IKE_AUTH should never have arrived")
	}

	r := x.check()
	requireExchanges(s, r, 34, 35)
	cookieRequireWire(s, x, r, dut)
}

// cookieDropCount reads the packet counter of the decoy's drop rule.
func cookieDropCount(s *Scenario, ns *Netns) int {
	s.t.Helper()
	out := ns.MustRun(5*time.Second, "nft", "list", "table", "ip", "pi_cookie")
	m := regexp.MustCompile(`counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		s.Fatalf("no counter in the decoy's drop rule:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// ikeHeader is what cookieRequireWire needs beyond CaptureReport: the SPIs
// and the notify data of one IKE message, by frame.
type ikeHeader struct {
	SPIi, SPIr  string
	NotifyData  []string // in the order of isakmp.notify.msgtype
	NotifyTypes []int
}

func ikeHeaders(s *Scenario, pcap string) map[int]ikeHeader {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-Y", "isakmp", "-T", "fields",
		"-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number", "-e", "isakmp.ispi", "-e", "isakmp.rspi",
		"-e", "isakmp.notify.msgtype", "-e", "isakmp.notify.data")
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+filepath.Join(s.Dir, "wireshark-empty"))
	out, err := cmd.Output()
	if err != nil {
		s.Fatalf("tshark on %s: %v", filepath.Base(pcap), err)
	}
	h := map[int]ikeHeader{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "\t")
		for len(f) < 5 {
			f = append(f, "")
		}
		frame, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		x := ikeHeader{SPIi: first(f[1]), SPIr: first(f[2])}
		for _, t := range strings.Split(f[3], "|") {
			if v, err := strconv.Atoi(t); err == nil {
				x.NotifyTypes = append(x.NotifyTypes, v)
			}
		}
		if f[4] != "" {
			x.NotifyData = strings.Split(f[4], "|")
		}
		h[frame] = x
	}
	return h
}

// notifyData returns the data of the first notify of type n, if any. tshark
// emits isakmp.notify.data only for notifies with data, so the data are
// matched to types only when every notify has data or n is the only one.
func (h ikeHeader) notifyData(n int) (string, bool) {
	idx := -1
	for i, t := range h.NotifyTypes {
		if t == n {
			idx = i
			break
		}
	}
	if idx < 0 {
		return "", false
	}
	if len(h.NotifyData) == len(h.NotifyTypes) {
		return h.NotifyData[idx], true
	}
	if len(h.NotifyTypes) == 1 && len(h.NotifyData) == 1 {
		return h.NotifyData[0], true
	}
	return "", false
}

// cookieRequireWire checks the exchange on the link: exactly one
// IKE_SA_INIT answer from gwb to petrel carries N(COOKIE) and no SA
// payload; petrel then repeats its IKE_SA_INIT with the same SPIi and
// N(COOKIE) as first payload carrying the same data; the answer to that is
// a full IKE_SA_INIT response for the SA both sides list. The decoy's
// IKE_SA_INIT was answered without a cookie and its IKE_AUTH never crossed.
func cookieRequireWire(s *Scenario, x *petrelS2S, r CaptureReport, dut IKESA) {
	s.t.Helper()
	hdr := ikeHeaders(s, x.capture.Path)
	a, b, d := x.topo.AddrA.String()+":", x.topo.AddrB.String()+":", cookieDecoyAddr+":"
	var cookieResp []IKEMsg
	for _, m := range r.IKE {
		if (strings.HasPrefix(m.Src, d) && m.Exchange != 34) || strings.HasSuffix(m.Src, ":4501") {
			s.Fatalf("frame %d: %s from the decoy crossed the link; it should have been dropped in gwa", m.Frame, exchangeName(m.Exchange))
		}
		if m.Exchange == 34 && m.Response && strings.HasPrefix(m.Src, b) && strings.HasPrefix(m.Dst, a) && containsInt(m.Notifies, notifyCookie) {
			cookieResp = append(cookieResp, m)
		}
		if m.Exchange == 34 && m.Response && strings.HasPrefix(m.Dst, d) && containsInt(m.Notifies, notifyCookie) {
			s.Fatalf("frame %d: strongSwan demanded a cookie from the decoy too (no SA was half-open then)", m.Frame)
		}
	}
	if len(cookieResp) != 1 {
		s.Fatalf("capture: %d IKE_SA_INIT answers from gwb to petrel carry N(COOKIE), want exactly 1\n%s", len(cookieResp), r.Summary())
	}
	c := cookieResp[0]
	if containsInt(c.Payloads, 33) {
		s.Fatalf("frame %d: the COOKIE answer carries an SA payload (payloads %v)", c.Frame, c.Payloads)
	}
	ch := hdr[c.Frame]
	cookie, ok := ch.notifyData(notifyCookie)
	if !ok || cookie == "" {
		s.Fatalf("frame %d: no data in the COOKIE notify (types %v, data %v)", c.Frame, ch.NotifyTypes, ch.NotifyData)
	}
	// The request it answered, and the repeats after it.
	var first, retry, answer *IKEMsg
	for i := range r.IKE {
		m := &r.IKE[i]
		if m.Exchange != 34 || !strings.HasPrefix(m.Src, a) || m.Response {
			continue
		}
		if m.Frame < c.Frame && hdr[m.Frame].SPIi == ch.SPIi {
			first = m
		}
		if m.Frame > c.Frame && retry == nil {
			retry = m
		}
	}
	if first == nil {
		s.Fatalf("capture: no IKE_SA_INIT request from petrel with SPIi %s before the COOKIE answer (frame %d)", ch.SPIi, c.Frame)
	}
	if containsInt(first.Notifies, notifyCookie) {
		s.Fatalf("frame %d: petrel's first IKE_SA_INIT already carries a COOKIE", first.Frame)
	}
	if retry == nil {
		s.Fatalf("capture: petrel did not repeat its IKE_SA_INIT after the COOKIE answer (frame %d)\n%s", c.Frame, r.Summary())
	}
	rh := hdr[retry.Frame]
	if rh.SPIi != ch.SPIi {
		s.Fatalf("frame %d: the repeated IKE_SA_INIT has SPIi %s, want the first one's %s (RFC 7296 §2.6)", retry.Frame, rh.SPIi, ch.SPIi)
	}
	if len(retry.Payloads) == 0 || retry.Payloads[0] != 41 || len(retry.Notifies) == 0 || retry.Notifies[0] != notifyCookie {
		s.Fatalf("frame %d: the repeated IKE_SA_INIT starts with payloads %v, notifies %v; want N(COOKIE) first", retry.Frame, retry.Payloads, retry.Notifies)
	}
	if got, ok := rh.notifyData(notifyCookie); !ok || got != cookie {
		s.Fatalf("frame %d: the repeated IKE_SA_INIT returns cookie %q, strongSwan sent %q", retry.Frame, got, cookie)
	}
	for i := range r.IKE {
		m := &r.IKE[i]
		if m.Exchange == 34 && m.Response && m.Frame > retry.Frame && strings.HasPrefix(m.Dst, a) && hdr[m.Frame].SPIi == ch.SPIi {
			answer = m
			break
		}
	}
	if answer == nil || !containsInt(answer.Payloads, 33) || containsInt(answer.Notifies, notifyCookie) {
		s.Fatalf("capture: no full IKE_SA_INIT answer (SA payload, no COOKIE) to petrel's repeated request (frame %d)\n%s", retry.Frame, r.Summary())
	}
	want := strings.ToLower(dut.SPIi)
	if !strings.EqualFold(strings.ReplaceAll(ch.SPIi, ":", ""), want) || !strings.EqualFold(hdr[answer.Frame].SPIr, dut.SPIr) {
		s.Fatalf("the cookie exchange ran with %s_i (answer %s_r), petrel lists %s_i %s_r", ch.SPIi, hdr[answer.Frame].SPIr, dut.SPIi, dut.SPIr)
	}
	var decoyInit int
	for _, m := range r.IKE {
		if m.Exchange == 34 && m.Response && strings.HasPrefix(m.Dst, d) && containsInt(m.Payloads, 33) {
			decoyInit++
		}
	}
	if decoyInit == 0 {
		s.Fatalf("capture: no full IKE_SA_INIT answer from strongSwan to the decoy")
	}
	s.Logf("COOKIE: request frame %d, COOKIE answer frame %d (%d octets, no SA), repeat frame %d with N(COOKIE) first and SPIi %s, answer frame %d",
		first.Frame, c.Frame, len(cookie)/2, retry.Frame, ch.SPIi, answer.Frame)
}
