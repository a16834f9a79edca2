package interop

import (
	"strings"
	"testing"
	"time"
)

// The self-test: strongSwan against strongSwan in the same topologies the
// petrel scenarios use. It must pass first, so that a red petrel scenario
// means petrel.

const (
	selfPSK       = "interop-test-psk-0123456789"
	selfProposals = "aes256gcm16-prfsha256-x25519"
)

// siteToSiteConns returns the swanctl connections of gwa and gwb.
func siteToSiteConns(t *SiteToSite) (a, b SwanConn) {
	a = SwanConn{Name: "s2s", LocalAddrs: t.AddrA.String(), RemoteAddrs: t.AddrB.String(),
		LocalID: "gwa.example", RemoteID: "gwb.example", PSK: selfPSK,
		Proposals: selfProposals, ESPProposals: "aes256gcm16",
		LocalTS: t.LanA.String() + "/32", RemoteTS: t.LanB.String() + "/32"}
	b = a
	b.LocalAddrs, b.RemoteAddrs = a.RemoteAddrs, a.LocalAddrs
	b.LocalID, b.RemoteID = a.RemoteID, a.LocalID
	b.LocalTS, b.RemoteTS = a.RemoteTS, a.LocalTS
	return a, b
}

// requireChildTraffic fails unless the Child SA named child on each side
// counted bytes both ways, i.e. the pings really went through ESP.
func requireChildTraffic(s *Scenario, sa IKESA, child string) {
	s.t.Helper()
	c, ok := sa.Child(child)
	if !ok {
		s.Fatalf("child %s not listed", child)
	}
	if c.BytesIn == 0 || c.BytesOut == 0 {
		s.Fatalf("child %s counted %d bytes in, %d out: traffic did not use the SA", child, c.BytesIn, c.BytesOut)
	}
}

func TestSelfPSKSiteToSite(t *testing.T) {
	s := Begin(t, "self-psk-site-to-site", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.B, "eth0", "link")

	s.Initiate(a, ca.ChildName(), 20*time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 20, 19, 50*time.Millisecond)
	saA := s.WaitEstablished(a, "s2s", ca.ChildName(), 5*time.Second)
	saB := s.WaitEstablished(b, "s2s", cb.ChildName(), 5*time.Second)
	if !saA.Initiator || saB.Initiator {
		s.Fatalf("roles: gwa initiator=%v, gwb initiator=%v; want gwa only", saA.Initiator, saB.Initiator)
	}
	if saA.SPIi != saB.SPIi || saA.SPIr != saB.SPIr {
		s.Fatalf("the two sides list different IKE SAs: %s_i %s_r vs %s_i %s_r", saA.SPIi, saA.SPIr, saB.SPIi, saB.SPIr)
	}
	if saA.NATLocal || saB.NATLocal {
		s.Fatalf("NAT detected on a link without NAT (nat-local gwa=%v gwb=%v)", saA.NATLocal, saB.NATLocal)
	}
	requireChildTraffic(s, saA, ca.ChildName())
	requireChildTraffic(s, saB, cb.ChildName())

	r := s.CheckCapture(capture, a, b)
	requireExchanges(s, r, 34, 35)
	requireESPDecrypted(s, r)

	// Bulk traffic after the capture ends: decoding 100,000 ESP packets
	// would cost half a minute and prove nothing more.
	ir, err := s.Iperf3(topo.A, topo.LanA, topo.B, topo.LanB, 2)
	if err != nil {
		s.Fatalf("%v", err)
	}
	if ir.ReceivedBits < 1e6 {
		s.Fatalf("iperf3 through the tunnel: %.0f bit/s received, want at least 1 Mbit/s", ir.ReceivedBits)
	}
	s.Logf("iperf3 %s -> %s: %.0f Mbit/s", topo.LanA, topo.LanB, ir.ReceivedBits/1e6)

	saA = s.WaitEstablished(a, "s2s", ca.ChildName(), 5*time.Second)
	if c, _ := saA.Child(ca.ChildName()); c.BytesOut < 1e6 {
		s.Fatalf("after iperf3, the Child SA counted only %d bytes out", c.BytesOut)
	}
}

// requireExchanges fails unless the capture holds a request and a response
// of each exchange type given.
func requireExchanges(s *Scenario, r CaptureReport, exchanges ...int) {
	s.t.Helper()
	for _, e := range exchanges {
		var req, resp bool
		for _, m := range r.IKE {
			if m.Exchange == e {
				req = req || !m.Response
				resp = resp || m.Response
			}
		}
		if !req || !resp {
			s.Fatalf("capture: %s request seen=%v, response seen=%v", exchangeName(e), req, resp)
		}
	}
}

// requireESPDecrypted fails unless the capture holds ESP and every ESP
// packet's ICV checked good with the logged keys.
func requireESPDecrypted(s *Scenario, r CaptureReport) {
	s.t.Helper()
	if len(r.ESP) == 0 {
		s.Fatalf("capture: no ESP packets")
	}
	for _, e := range r.ESP {
		if !e.ICVGood {
			s.Fatalf("capture: frame %d ESP SPI %s did not authenticate with the logged keys", e.Frame, e.SPI)
		}
	}
}

func TestSelfRoadWarriorNAT(t *testing.T) {
	s := Begin(t, "self-road-warrior-nat", RoleSelfTest)
	topo := s.NewRoadWarrior()
	rwConn := SwanConn{Name: "rw", LocalAddrs: "%any", RemoteAddrs: topo.AddrGW.String(),
		LocalID: "rw.example", RemoteID: "gw.example", PSK: selfPSK,
		Proposals: selfProposals, ESPProposals: "aes256gcm16",
		LocalTS: topo.LanRW.String() + "/32", RemoteTS: topo.LanGW.String() + "/32"}
	gwConn := SwanConn{Name: "rw", LocalAddrs: topo.AddrGW.String(), RemoteAddrs: "%any",
		LocalID: "gw.example", RemoteID: "rw.example", PSK: selfPSK,
		Proposals: selfProposals, ESPProposals: "aes256gcm16",
		LocalTS: topo.LanGW.String() + "/32", RemoteTS: topo.LanRW.String() + "/32"}
	rw := s.NewStrongSwan(topo.RW, "rw", SwanctlConf(rwConn))
	rw.Charon = "keep_alive = 1s" // NAT-T keepalives (RFC 3948 §2.3) within the scenario
	gw := s.NewStrongSwan(topo.GW, "gw", SwanctlConf(gwConn))
	s.StartNode(rw)
	s.StartNode(gw)
	outside := s.StartCapture(topo.GW, "eth0", "outside")

	s.Initiate(rw, rwConn.ChildName(), 20*time.Second)
	s.RequirePing(topo.RW, topo.LanRW, topo.LanGW, 20, 19, 50*time.Millisecond)
	time.Sleep(2500 * time.Millisecond) // at least two keepalive intervals, idle

	saRW := s.WaitEstablished(rw, "rw", rwConn.ChildName(), 5*time.Second)
	saGW := s.WaitEstablished(gw, "rw", gwConn.ChildName(), 5*time.Second)
	if !saRW.NATLocal {
		s.Fatalf("road warrior does not report itself behind a NAT (nat-local=no)")
	}
	if !saGW.NATRemote {
		s.Fatalf("gateway does not report the peer behind a NAT (nat-remote=no)")
	}
	if saGW.RemoteHost != topo.AddrNATOutside.String() {
		s.Fatalf("gateway sees the peer at %s, want the NAT's %s", saGW.RemoteHost, topo.AddrNATOutside)
	}
	requireChildTraffic(s, saRW, rwConn.ChildName())

	r := s.CheckCapture(outside, rw, gw)
	requireExchanges(s, r, 34, 35)
	requireESPDecrypted(s, r)
	natSrc := topo.AddrNATOutside.String() + ":"
	var from4500 int
	for _, m := range r.IKE {
		if strings.HasPrefix(m.Src, topo.AddrRW.String()) || strings.HasPrefix(m.Dst, topo.AddrRW.String()) {
			s.Fatalf("frame %d: the road warrior's private address crossed the NAT", m.Frame)
		}
		if strings.HasPrefix(m.Src, natSrc) && strings.HasSuffix(m.Dst, ":4500") {
			from4500++
		}
	}
	if from4500 == 0 {
		s.Fatalf("no IKE message from the NAT's address %s to UDP 4500 on the outside link", topo.AddrNATOutside)
	}
	for _, e := range r.ESP {
		if e.Src != "" && !strings.HasPrefix(e.Src, natSrc) && !strings.HasPrefix(e.Dst, natSrc) {
			s.Fatalf("frame %d: ESP between %s and %s, not via the NAT", e.Frame, e.Src, e.Dst)
		}
	}
	if r.Keepalives == 0 {
		s.Fatalf("no NAT-T keepalive crossed the NAT")
	}
	s.Logf("NAT-T: %d IKE messages from %s to port 4500, %d keepalives", from4500, topo.AddrNATOutside, r.Keepalives)
}

func TestSelfLossDuringSetup(t *testing.T) {
	s := Begin(t, "self-loss-5pct-setup", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	// Retransmit sooner than the default 4 s so that a lost message costs
	// about a second (retransmit_timeout * base^n).
	fast := "retransmit_timeout = 1.0\nretransmit_base = 1.4\nretransmit_tries = 8"
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	a.Charon = fast
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	b.Charon = fast
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.B, "eth0", "link")
	topo.Link.SetLoss(5)

	const rounds = 5
	for i := 0; i < rounds; i++ {
		s.Initiate(a, ca.ChildName(), 30*time.Second)
		sa := s.WaitEstablished(a, "s2s", ca.ChildName(), 5*time.Second)
		s.WaitSameSA(b, sa, 10*time.Second)
		s.RequirePing(topo.A, topo.LanA, topo.LanB, 20, 10, 50*time.Millisecond)
		if err := a.Terminate(s.ctx(20*time.Second), "s2s", true); err != nil {
			s.Fatalf("round %d: %v", i+1, err)
		}
	}
	dropped, err := topo.Link.Dropped()
	if err != nil {
		s.Fatalf("%v", err)
	}
	if dropped == 0 {
		s.Fatalf("the 5%% loss rules dropped nothing: the scenario did not test loss")
	}
	topo.Link.SetLoss(0)
	r := s.CheckCapture(capture, a, b)
	var inits int
	for _, m := range r.IKE {
		if m.Exchange == 34 && !m.Response {
			inits++
		}
	}
	if inits < rounds {
		s.Fatalf("capture: %d IKE_SA_INIT requests for %d setups", inits, rounds)
	}
	s.Logf("%d setups under 5%% loss: %d packets dropped, %d IKE messages on the wire, %d IKE_SA_INIT requests", rounds, dropped, len(r.IKE), inits)
}
