package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keepaliveSources counts the NAT-T keepalives (RFC 3948 §2.3) in a
// capture by source address, as tshark decodes them.
func keepaliveSources(s *Scenario, pcap string) map[string]int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "tshark", "-n", "-r", pcap, "-Y", "udpencap.nat_keepalive", "-T", "fields", "-e", "ip.src")
	cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+filepath.Join(s.Dir, "wireshark-empty"))
	out, err := cmd.Output()
	if err != nil {
		s.Fatalf("tshark keepalives on %s: %v", filepath.Base(pcap), err)
	}
	m := map[string]int{}
	for _, l := range strings.Fields(string(out)) {
		m[l]++
	}
	return m
}

// 4. Road warrior through a masquerading NAT: petrel as the client behind
// the NAT (its own 20 s NAT-keepalives must cross), and as the gateway
// (strongSwan's 1 s keepalives arrive; petrel, not behind a NAT, sends
// none). Both sides must see the NAT, IKE must move to UDP 4500 and ESP
// run in UDP from the NAT's address.
func TestPetrelRoadWarriorNAT(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			s := Begin(t, "petrel-road-warrior-nat-"+role, role)
			topo := s.NewRoadWarrior()
			rwConn := SwanConn{Name: "rw", LocalAddrs: "%any", RemoteAddrs: topo.AddrGW.String(),
				LocalID: "rw.example", RemoteID: "gw.example", PSK: selfPSK,
				Proposals: selfProposals, ESPProposals: "aes256gcm16",
				LocalTS: topo.LanRW.String() + "/32", RemoteTS: topo.LanGW.String() + "/32"}
			gwConn := SwanConn{Name: "rw", LocalAddrs: topo.AddrGW.String(), RemoteAddrs: "%any",
				LocalID: "gw.example", RemoteID: "rw.example", PSK: selfPSK,
				Proposals: selfProposals, ESPProposals: "aes256gcm16",
				LocalTS: topo.LanGW.String() + "/32", RemoteTS: topo.LanRW.String() + "/32"}
			var dut *ProcessNode
			var peer *StrongSwan
			var dutChild, peerChild string
			if role == RoleInitiator {
				c := rwConn
				c.LocalAddrs = topo.AddrRW.String()
				dut = s.NewPetrel(topo.RW, "rw", PetrelConf(petrelDaemon{Listen: c.LocalAddrs, CookieThreshold: -1}, c), c)
				peer = s.NewStrongSwan(topo.GW, "gw", SwanctlConf(gwConn))
				dutChild, peerChild = rwConn.ChildName(), gwConn.ChildName()
			} else {
				dut = s.NewPetrel(topo.GW, "gw", PetrelConf(petrelDaemon{Listen: gwConn.LocalAddrs, CookieThreshold: -1}, gwConn), gwConn)
				peer = s.NewStrongSwan(topo.RW, "rw", SwanctlConf(rwConn))
				peer.Charon = "keep_alive = 1s"
				dutChild, peerChild = gwConn.ChildName(), rwConn.ChildName()
			}
			s.StartNode(dut)
			s.StartNode(peer)
			outside := s.StartCapture(topo.GW, "eth0", "outside")
			if role == RoleInitiator {
				s.Initiate(dut, dutChild, 20*time.Second)
			} else {
				s.Initiate(peer, peerChild, 20*time.Second)
			}
			s.RequirePing(topo.RW, topo.LanRW, topo.LanGW, 20, 19, 50*time.Millisecond)
			idle := 2500 * time.Millisecond // two of strongSwan's keepalive intervals
			if role == RoleInitiator {
				idle = 21 * time.Second // petrel's fixed keepalive interval is 20 s
			}
			s.Logf("idle %s for keepalives", idle)
			time.Sleep(idle)

			saDut := s.WaitEstablished(dut, "rw", dutChild, 5*time.Second)
			saPeer := s.WaitEstablished(peer, "rw", peerChild, 5*time.Second)
			requireSameSAs(s, saDut, dutChild, saPeer, peerChild)
			requireChildTraffic(s, saDut, dutChild)
			sess, err := petrelSessions(s.ctx(10*time.Second), dut)
			if err != nil || len(sess) != 1 || !sess[0].NATT {
				s.Fatalf("petrel does not report NAT-T on its one session: %v %+v", err, sess)
			}
			if role == RoleInitiator {
				if !saPeer.NATRemote || saPeer.RemoteHost != topo.AddrNATOutside.String() {
					s.Fatalf("gateway sees the peer at %s (nat-remote=%v), want the NAT's %s", saPeer.RemoteHost, saPeer.NATRemote, topo.AddrNATOutside)
				}
				if saDut.RemotePort != "4500" {
					s.Fatalf("petrel talks to the gateway on port %s, want 4500", saDut.RemotePort)
				}
			} else {
				if !saPeer.NATLocal {
					s.Fatalf("the road warrior does not report itself behind a NAT (nat-local=no)")
				}
				if saDut.RemoteHost != topo.AddrNATOutside.String() {
					s.Fatalf("petrel sees the road warrior at %s, want the NAT's %s", saDut.RemoteHost, topo.AddrNATOutside)
				}
			}

			r := s.CheckCapture(outside, peer, dut)
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
			ka := keepaliveSources(s, outside.Path)
			if ka[topo.AddrNATOutside.String()] == 0 {
				s.Fatalf("no NAT-T keepalive from the road warrior crossed the NAT in %s idle (by source: %v)", idle, ka)
			}
			if n := ka[topo.AddrGW.String()]; n != 0 {
				s.Fatalf("the gateway, not behind a NAT, sent %d NAT-T keepalives", n)
			}
			s.Logf("NAT-T: %d IKE messages from %s to port 4500, keepalives by source %v", from4500, topo.AddrNATOutside, ka)
		})
	}
}

// 5. COOKIE challenge (RFC 7296 §2.6): petrel as responder with
// cookie_threshold 0 demands a cookie from every initiator; strongSwan
// must return it and finish. As initiator, petrel meets strongSwan with
// cookie_threshold = 1 while a second petrel's IKE SA is held half-open
// there (petrel_sc7_cookie_test.go): strongSwan answers with N(COOKIE) and
// petrel must repeat its IKE_SA_INIT with it.
func TestPetrelCookie(t *testing.T) {
	t.Run(RoleInitiator, func(t *testing.T) {
		cookieInitiator(Begin(t, "petrel-cookie-initiator", RoleInitiator))
	})
	t.Run(RoleResponder, func(t *testing.T) {
		x := startPetrelS2SDaemon(t, "cookie", RoleResponder, petrelDaemon{CookieThreshold: 0}, func(x *petrelS2S) {
			// strongSwan ignores the first answer to its retried
			// IKE_SA_INIT and retransmits: 1 s, not 4 s.
			x.peer.Charon = "retransmit_timeout = 1.0"
		})
		x.up(20 * time.Second)
		x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 10, 9, 50*time.Millisecond)
		r := x.check()
		requireExchanges(x.s, r, 34, 35)
		inits, cookies := ikeInitCounts(r, notifyCookie)
		var returned int
		for _, m := range r.IKE {
			if m.Exchange == 34 && !m.Response && containsInt(m.Notifies, notifyCookie) {
				returned++
			}
		}
		if cookies < 1 || returned < 1 || inits < 2 {
			x.s.Fatalf("capture: %d IKE_SA_INIT requests, %d answers with a COOKIE, %d requests returning it; want >=2, >=1, >=1", inits, cookies, returned)
		}
		x.s.Logf("%d IKE_SA_INIT requests, %d COOKIE answers, %d requests returning the cookie", inits, cookies, returned)
	})
}

// 6. Identity-based selection: three connections between the same two
// addresses, told apart only by identities (gwa<i>/gwb<i>), each with its
// own PSK and protected host 10.2.0.<i>. The responder must pick each by
// the initiator's ID (a wrong pick fails authentication).
func TestPetrelIdentitySelection(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			s := Begin(t, "petrel-identity-selection-"+role, role)
			topo := s.NewSiteToSite()
			var pc, sc []SwanConn
			for i := 1; i <= 3; i++ {
				lanB := netip.AddrFrom4([4]byte{10, 2, 0, byte(i)})
				if i > 1 {
					topo.B.AddLoopbackAddr(lanB)
				}
				a := SwanConn{Name: fmt.Sprintf("id%d", i), LocalAddrs: topo.AddrA.String(), RemoteAddrs: topo.AddrB.String(),
					LocalID: fmt.Sprintf("gwa%d.example", i), RemoteID: fmt.Sprintf("gwb%d.example", i),
					PSK: fmt.Sprintf("%s-%d", selfPSK, i), Proposals: selfProposals, ESPProposals: "aes256gcm16",
					LocalTS: topo.LanA.String() + "/32", RemoteTS: lanB.String() + "/32"}
				b := a
				b.LocalAddrs, b.RemoteAddrs = a.RemoteAddrs, a.LocalAddrs
				b.LocalID, b.RemoteID = a.RemoteID, a.LocalID
				b.LocalTS, b.RemoteTS = a.RemoteTS, a.LocalTS
				pc, sc = append(pc, a), append(sc, b)
			}
			dut := s.NewPetrel(topo.A, "gwa", PetrelConf(petrelDaemon{Listen: topo.AddrA.String(), CookieThreshold: -1}, pc...), pc...)
			peer := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(sc...))
			s.StartNode(dut)
			s.StartNode(peer)
			capture := s.StartCapture(topo.B, "eth0", "link")
			for i := range pc {
				if role == RoleInitiator {
					s.Initiate(dut, pc[i].ChildName(), 20*time.Second)
				} else {
					s.Initiate(peer, sc[i].ChildName(), 20*time.Second)
				}
			}
			spis := map[string]bool{}
			for i := range pc {
				lanB := netip.MustParsePrefix(sc[i].LocalTS).Addr()
				s.RequirePing(topo.B, lanB, topo.LanA, 5, 5, 50*time.Millisecond)
				d := s.WaitEstablished(dut, pc[i].Name, pc[i].ChildName(), 5*time.Second)
				p := s.WaitEstablished(peer, sc[i].Name, sc[i].ChildName(), 5*time.Second)
				requireSameSAs(s, d, pc[i].ChildName(), p, sc[i].ChildName())
				requireChildTraffic(s, d, pc[i].ChildName())
				if c, _ := d.Child(pc[i].ChildName()); len(c.RemoteTS) != 1 || c.RemoteTS[0] != sc[i].LocalTS {
					s.Fatalf("petrel's %s carries remote TS %v, want %s", pc[i].Name, c.RemoteTS, sc[i].LocalTS)
				}
				spis[d.SPIi] = true
			}
			if len(spis) != 3 {
				s.Fatalf("%d distinct IKE SAs for three connections", len(spis))
			}
			sess, err := petrelSessions(s.ctx(10*time.Second), dut)
			if err != nil {
				s.Fatalf("%v", err)
			}
			for _, x := range sess {
				want := "gwb" + strings.TrimPrefix(x.Conn, "id") + ".example"
				if !strings.HasSuffix(x.RemoteID, want) {
					s.Fatalf("petrel's connection %s authenticated peer %q, want %s", x.Conn, x.RemoteID, want)
				}
			}
			r := s.CheckCapture(capture, peer, dut)
			requireESPDecrypted(s, r)
			if inits, _ := ikeInitCounts(r, 0); inits != 3 {
				s.Fatalf("capture: %d IKE_SA_INIT requests, want 3", inits)
			}
		})
	}
}
