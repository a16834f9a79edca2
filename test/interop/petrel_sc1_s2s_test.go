package interop

import (
	"os"
	"strings"
	"testing"
	"time"
)

// petrel ↔ strongSwan on the site-to-site link: petrel runs on gwa
// (192.0.2.1, protecting 10.1.0.1), strongSwan on gwb (192.0.2.2,
// protecting 10.2.0.1). Each scenario runs twice: petrel initiating and
// petrel responding.

var petrelRoles = []string{RoleInitiator, RoleResponder}

// petrelS2S is one site-to-site scenario between petrel (gwa) and
// strongSwan (gwb), started and capturing on the link.
type petrelS2S struct {
	s       *Scenario
	topo    *SiteToSite
	ca, cb  SwanConn // petrel's and strongSwan's connection
	dut     *ProcessNode
	peer    *StrongSwan
	capture *Capture
	// editConf, when a tweak sets it, rewrites petrel's YAML and
	// strongSwan's swanctl.conf after they are rendered.
	editConf func(petrel, swan string) (string, string)
}

// startPetrelS2S builds the topology and starts both daemons; tweak may
// change either connection and strongSwan's charon settings before start.
func startPetrelS2S(t *testing.T, name, role string, tweak func(x *petrelS2S)) *petrelS2S {
	return startPetrelS2SDaemon(t, name, role, petrelDaemon{CookieThreshold: -1}, tweak)
}

// startPetrelS2SDaemon is startPetrelS2S with petrel's daemon settings;
// Listen is set to gwa's address.
func startPetrelS2SDaemon(t *testing.T, name, role string, d petrelDaemon, tweak func(x *petrelS2S)) *petrelS2S {
	s := Begin(t, "petrel-"+name+"-"+role, role)
	x := &petrelS2S{s: s, topo: s.NewSiteToSite()}
	x.ca, x.cb = siteToSiteConns(x.topo)
	x.peer = s.NewStrongSwan(x.topo.B, "gwb", "")
	if tweak != nil {
		tweak(x)
	}
	d.Listen = x.topo.AddrA.String()
	pconf, sconf := PetrelConf(d, x.ca), SwanctlConf(x.cb)
	if x.editConf != nil {
		pconf, sconf = x.editConf(pconf, sconf)
	}
	x.peer.Swanctl = sconf
	x.dut = s.NewPetrel(x.topo.A, "gwa", pconf, x.ca)
	s.StartNode(x.dut)
	s.StartNode(x.peer)
	x.capture = s.StartCapture(x.topo.B, "eth0", "link")
	return x
}

// up has the initiator of the scenario's role bring up the Child SA, then
// waits for both sides to list the same IKE and Child SA, and returns
// petrel's and strongSwan's view.
func (x *petrelS2S) up(timeout time.Duration) (dut, peer IKESA) {
	x.s.t.Helper()
	if x.s.Role == RoleInitiator {
		x.s.Initiate(x.dut, x.ca.ChildName(), timeout)
	} else {
		x.s.Initiate(x.peer, x.cb.ChildName(), timeout)
	}
	return x.list()
}

// list waits until both sides list an established IKE SA with the Child
// SA, checks that they are the same SAs in the roles of the scenario, and
// returns petrel's and strongSwan's view.
func (x *petrelS2S) list() (dut, peer IKESA) {
	x.s.t.Helper()
	dut = x.s.WaitEstablished(x.dut, x.ca.Name, x.ca.ChildName(), 5*time.Second)
	peer = x.s.WaitEstablished(x.peer, x.cb.Name, x.cb.ChildName(), 5*time.Second)
	if dut.Initiator != (x.s.Role == RoleInitiator) || peer.Initiator == dut.Initiator {
		x.s.Fatalf("roles: petrel initiator=%v, strongSwan initiator=%v; petrel should be the %s", dut.Initiator, peer.Initiator, x.s.Role)
	}
	requireSameSAs(x.s, dut, x.ca.ChildName(), peer, x.cb.ChildName())
	return dut, peer
}

// check decodes the capture with both key logs (which must agree), then
// with petrel's key log alone: every SK payload petrel took part in and
// every ESP packet must decrypt with what petrel logged.
func (x *petrelS2S) check() CaptureReport {
	x.s.t.Helper()
	r := x.s.CheckCapture(x.capture, x.peer, x.dut)
	requireESPDecrypted(x.s, r)
	kl, err := x.dut.KeyLog()
	if err != nil {
		x.s.Fatalf("petrel key log: %v", err)
	}
	alone, err := x.s.Analyze(x.capture.Path, kl)
	if err != nil {
		x.s.Fatalf("%v", err)
	}
	if len(alone.Problems) > 0 {
		x.s.Fatalf("capture with petrel's key log alone (%d IKE, %d ESP lines): %s", len(kl.IKE), len(kl.ESP), alone.Problems[0])
	}
	for _, e := range alone.ESP {
		if !e.ICVGood {
			x.s.Fatalf("capture with petrel's key log alone: frame %d ESP SPI %s does not authenticate", e.Frame, e.SPI)
		}
	}
	return r
}

// ikeInitCounts counts IKE_SA_INIT requests and the responses carrying
// the notify type n.
func ikeInitCounts(r CaptureReport, n int) (requests, withNotify int) {
	for _, m := range r.IKE {
		if m.Exchange == 34 && !m.Response {
			requests++
		}
		if m.Exchange == 34 && m.Response && containsInt(m.Notifies, n) {
			withNotify++
		}
	}
	return requests, withNotify
}

// 1. PSK site-to-site: setup, 20 pings, both listings agree, the capture
// decrypts (with petrel's key log alone too), iperf3 both ways.
func TestPetrelPSKSiteToSite(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			x := startPetrelS2S(t, "psk-site-to-site", role, nil)
			s, topo := x.s, x.topo
			x.up(20 * time.Second)
			s.RequirePing(topo.A, topo.LanA, topo.LanB, 20, 19, 50*time.Millisecond)
			s.RequirePing(topo.B, topo.LanB, topo.LanA, 5, 5, 50*time.Millisecond)
			dut, peer := x.list() // listed again, with counters
			requireChildTraffic(s, dut, x.ca.ChildName())
			requireChildTraffic(s, peer, x.cb.ChildName())
			r := x.check()
			requireExchanges(s, r, 34, 35)
			s.Logf("petrel lists %s_i %s_r, %s/%s/%s, NAT-T on the link as kernel-libipsec requires",
				dut.SPIi, dut.SPIr, dut.EncrAlg, dut.PRFAlg, dut.DHGroup)

			for _, fromA := range []bool{true, false} {
				client, src, server, dst, name := topo.A, topo.LanA, topo.B, topo.LanB, "gwa->gwb"
				if !fromA {
					client, src, server, dst, name = topo.B, topo.LanB, topo.A, topo.LanA, "gwb->gwa"
				}
				ir, err := s.Iperf3(client, src, server, dst, 2)
				if err != nil {
					s.Fatalf("%s: %v", name, err)
				}
				if ir.ReceivedBits < 1e6 {
					s.Fatalf("iperf3 %s through the tunnel: %.0f bit/s received, want at least 1 Mbit/s", name, ir.ReceivedBits)
				}
				s.Logf("iperf3 %s: %.0f Mbit/s, %d retransmits", name, ir.ReceivedBits/1e6, ir.Retransmits)
			}
			dut = s.WaitEstablished(x.dut, x.ca.Name, x.ca.ChildName(), 5*time.Second)
			if c, _ := dut.Child(x.ca.ChildName()); c.BytesOut < 1e6 || c.BytesIn < 1e6 {
				s.Fatalf("after iperf3 both ways, petrel's Child SA counted %d bytes in, %d out", c.BytesIn, c.BytesOut)
			}
		})
	}
}

// 2. Three ORed IKE proposals and three ORed ESP proposals on the
// initiator; only the third of each matches the responder's one.
func TestPetrelThirdProposal(t *testing.T) {
	const (
		ike3 = "aes128-sha256-x25519,aes256-sha384-x25519,aes256gcm16-prfsha256-x25519"
		esp3 = "aes128-sha256,aes256-sha384,aes256gcm16"
	)
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			x := startPetrelS2S(t, "third-proposal", role, func(x *petrelS2S) {
				ini, resp := &x.ca, &x.cb
				if x.s.Role == RoleResponder {
					ini, resp = resp, ini
				}
				ini.Proposals, ini.ESPProposals = ike3, esp3
				resp.Proposals, resp.ESPProposals = "aes256gcm16-prfsha256-x25519", "aes256gcm16"
			})
			dut, peer := x.up(20 * time.Second)
			x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 10, 9, 50*time.Millisecond)
			for _, sa := range []IKESA{dut, peer} {
				if !strings.Contains(sa.EncrAlg, "GCM") || !strings.Contains(sa.PRFAlg, "256") || sa.DHGroup != "CURVE_25519" {
					x.s.Fatalf("negotiated %s/%s/%s, want the third proposal AES-GCM-16/PRF-SHA256/CURVE_25519", sa.EncrAlg, sa.PRFAlg, sa.DHGroup)
				}
			}
			if peer.EncrKeyLen != 256 {
				x.s.Fatalf("strongSwan lists a %d-bit key, want 256", peer.EncrKeyLen)
			}
			if x.s.Role == RoleInitiator { // petrel offered three of each: strongSwan's log lists what it received
				requireReceivedProposals(x.s, x.peer, "IKE:", 3)
				requireReceivedProposals(x.s, x.peer, "ESP:", 3)
			}
			r := x.check()
			requireExchanges(x.s, r, 34, 35)
			if inits, _ := ikeInitCounts(r, 0); inits != 1 {
				x.s.Fatalf("capture: %d IKE_SA_INIT requests, want 1 (no retry needed)", inits)
			}
		})
	}
}

// 3. INVALID_KE_PAYLOAD (RFC 7296 §1.2): the initiator guesses a group the
// responder does not accept and must retry with the one it names.
func TestPetrelInvalidKERetry(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			want := "CURVE_25519"
			x := startPetrelS2S(t, "invalid-ke-retry", role, func(x *petrelS2S) {
				if x.s.Role == RoleInitiator {
					// petrel prefers x25519, strongSwan takes only ecp256.
					x.ca.Proposals = "aes256gcm16-prfsha256-x25519-ecp256"
					x.cb.Proposals = "aes256gcm16-prfsha256-ecp256"
					want = "ECP_256"
				} else {
					// strongSwan guesses ecp256, petrel takes only x25519.
					x.cb.Proposals = "aes256gcm16-prfsha256-ecp256-x25519"
					x.ca.Proposals = "aes256gcm16-prfsha256-x25519"
					// strongSwan ignores the first answer to its retried
					// IKE_SA_INIT and retransmits: 1 s, not 4 s.
					x.peer.Charon = "retransmit_timeout = 1.0"
				}
			})
			dut, peer := x.up(20 * time.Second)
			if peer.DHGroup != want || dut.DHGroup != peer.DHGroup {
				x.s.Fatalf("key exchange: petrel lists %s, strongSwan %s; want %s", dut.DHGroup, peer.DHGroup, want)
			}
			x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 10, 9, 50*time.Millisecond)
			r := x.check()
			inits, invalidKE := ikeInitCounts(r, notifyInvalidKE)
			if invalidKE != 1 || inits < 2 {
				x.s.Fatalf("capture: %d INVALID_KE_PAYLOAD answers and %d IKE_SA_INIT requests, want 1 and at least 2", invalidKE, inits)
			}
		})
	}
}

// requireReceivedProposals fails unless charon's log has a "received
// proposals:" line with n proposals of the given kind ("IKE:" or "ESP:").
func requireReceivedProposals(s *Scenario, w *StrongSwan, kind string, n int) {
	s.t.Helper()
	data, err := os.ReadFile(w.Logs()[0])
	if err != nil {
		s.Fatalf("%v", err)
	}
	var seen []string
	for _, l := range strings.Split(string(data), "\n") {
		if _, props, ok := strings.Cut(l, "received proposals: "); ok && strings.HasPrefix(props, kind) {
			if strings.Count(props, kind) == n {
				return
			}
			seen = append(seen, props)
		}
	}
	s.Fatalf("strongSwan did not receive %d %s proposals; it received %q", n, kind, seen)
}
