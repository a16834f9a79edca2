package interop

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// More petrel ↔ strongSwan scenarios beyond the eight of the plan: other
// cipher suites (so petrel's key logs are checked in their non-AEAD and
// CTR forms too) and traffic-selector narrowing.

// TestPetrelCipherSuites sets up one IKE SA and Child SA per suite, pings
// through it, and requires the capture to decrypt with petrel's key log
// alone: encryption and integrity keys and algorithm names as Wireshark
// reads them. Suites marked with a bug skip unless PETREL_INTEROP_BUGS is
// set; the scenario itself is unchanged, so it shows the fix when run.
func TestPetrelCipherSuites(t *testing.T) {
	suites := []struct{ name, ike, esp, encr, integ, bug string }{
		{"aes256cbc-sha256", "aes256-sha256-x25519", "aes256-sha256", "AES_CBC", "HMAC_SHA2_256_128", ""},
		{"ctr-ike-cbc192-esp", "aes128ctr-sha384-ecp384", "aes192-sha384", "AES_CTR", "HMAC_SHA2_384_192", ""},
		{"aes128gcm-modp3072", "aes128gcm16-prfsha512-modp3072", "aes128gcm16", "AES_GCM_16", "", ""},
		{"aes192gcm16", "aes256gcm16-prfsha256-x25519", "aes192gcm16", "AES_GCM_16", "", ""},
	}
	for _, su := range suites {
		for _, role := range petrelRoles {
			t.Run(su.name+"/"+role, func(t *testing.T) {
				if su.bug != "" && os.Getenv("PETREL_INTEROP_BUGS") == "" {
					s := Begin(t, "petrel-suite-"+su.name+"-"+role, role)
					s.t.Skip(su.bug + " (PETREL_INTEROP_BUGS=1 runs it)")
				}
				x := startPetrelS2S(t, "suite-"+su.name, role, func(x *petrelS2S) {
					x.ca.Proposals, x.ca.ESPProposals = su.ike, su.esp
					x.cb.Proposals, x.cb.ESPProposals = su.ike, su.esp
				})
				dut, peer := x.up(20 * time.Second)
				x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 10, 9, 50*time.Millisecond)
				if !strings.HasPrefix(peer.EncrAlg, su.encr) || peer.IntegAlg != su.integ {
					x.s.Fatalf("strongSwan negotiated %s/%s, want %s/%s", peer.EncrAlg, peer.IntegAlg, su.encr, su.integ)
				}
				if dut.DHGroup != peer.DHGroup || dut.PRFAlg != peer.PRFAlg {
					x.s.Fatalf("petrel lists %s/%s, strongSwan %s/%s", dut.PRFAlg, dut.DHGroup, peer.PRFAlg, peer.DHGroup)
				}
				r := x.check()
				requireExchanges(x.s, r, 34, 35)
			})
		}
	}
}

// TestPetrelTSNarrowing: one side proposes the /24 networks, the other is
// configured for the /32 hosts inside them; the responder narrows (RFC
// 7296 §2.9) and both must install the /32 pair.
func TestPetrelTSNarrowing(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			x := startPetrelS2S(t, "ts-narrowing", role, func(x *petrelS2S) {
				wide := &x.ca // the initiator proposes the networks
				if x.s.Role == RoleResponder {
					wide = &x.cb
				}
				wide.LocalTS = strings.Replace(wide.LocalTS, ".1/32", ".0/24", 1)
				wide.RemoteTS = strings.Replace(wide.RemoteTS, ".1/32", ".0/24", 1)
			})
			dut, peer := x.up(20 * time.Second)
			x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 10, 9, 50*time.Millisecond)
			cd, _ := dut.Child(x.ca.ChildName())
			cp, _ := peer.Child(x.cb.ChildName())
			want := []string{x.topo.LanA.String() + "/32", x.topo.LanB.String() + "/32"}
			if strings.Join(cd.LocalTS, ",") != want[0] || strings.Join(cd.RemoteTS, ",") != want[1] {
				x.s.Fatalf("petrel installed %v === %v, want %s === %s", cd.LocalTS, cd.RemoteTS, want[0], want[1])
			}
			if strings.Join(cp.LocalTS, ",") != want[1] || strings.Join(cp.RemoteTS, ",") != want[0] {
				x.s.Fatalf("strongSwan installed %v === %v, want %s === %s", cp.LocalTS, cp.RemoteTS, want[1], want[0])
			}
			r := x.check()
			requireExchanges(x.s, r, 34, 35)
		})
	}
}

// TestPetrelAnswersDPD: strongSwan probes liveness every second (empty
// INFORMATIONAL requests, RFC 7296 §2.4); petrel must answer each, and
// the SA stays up. (petrel's own DPD is not built yet.)
func TestPetrelAnswersDPD(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			x := startPetrelS2S(t, "answers-dpd", role, func(x *petrelS2S) {
				// Without MOBIKE, whose address update would be the first
				// probe, only DPD talks.
				x.cb.Extra = []string{"dpd_delay = 1s", "mobike = no"}
			})
			dut0, _ := x.up(20 * time.Second)
			x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 5, 5, 50*time.Millisecond)
			time.Sleep(3500 * time.Millisecond) // idle: DPD probes only when no traffic arrives
			dut, _ := x.list()
			if dut.SPIi != dut0.SPIi {
				x.s.Fatalf("IKE SA changed from %s_i to %s_i during DPD", dut0.SPIi, dut.SPIi)
			}
			r := x.check()
			from := x.topo.AddrB.String() + ":4500"
			var probes, answers int
			for _, m := range r.IKE {
				if m.Exchange != 37 || !m.Decrypted || len(m.Payloads) != 1 || m.Payloads[0] != 46 {
					continue // an empty INFORMATIONAL has only the SK payload
				}
				if !m.Response && m.Src == from {
					probes++
				}
				if m.Response && m.Dst == from {
					answers++
				}
			}
			if probes < 2 || answers != probes {
				x.s.Fatalf("capture: %d empty INFORMATIONAL requests from strongSwan and %d answers from petrel; want at least 2, all answered", probes, answers)
			}
			x.s.Logf("petrel answered %d of %d DPD probes", answers, probes)
		})
	}
}

// TestPetrelTwoSelectors: a Child SA with two local selectors on gwa
// (10.1.0.1/32 and 10.1.0.5/32); traffic from both hosts must use it.
func TestPetrelTwoSelectors(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			second := "10.1.0.5"
			x := startPetrelS2S(t, "two-selectors", role, func(x *petrelS2S) {
				x.ca.LocalTS += "," + second + "/32"
				x.cb.RemoteTS += "," + second + "/32"
			})
			x.topo.A.AddLoopbackAddr(netip.MustParseAddr(second))
			dut, peer := x.up(20 * time.Second)
			x.s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 5, 5, 50*time.Millisecond)
			x.s.RequirePing(x.topo.A, netip.MustParseAddr(second), x.topo.LanB, 5, 5, 50*time.Millisecond)
			x.s.RequirePing(x.topo.B, x.topo.LanB, netip.MustParseAddr(second), 5, 5, 50*time.Millisecond)
			cd, _ := dut.Child(x.ca.ChildName())
			cp, _ := peer.Child(x.cb.ChildName())
			if len(cd.LocalTS) != 2 || len(cp.RemoteTS) != 2 {
				x.s.Fatalf("selectors: petrel local %v, strongSwan remote %v; want two each", cd.LocalTS, cp.RemoteTS)
			}
			r := x.check()
			requireExchanges(x.s, r, 34, 35)
		})
	}
}

// TestPetrelTwoChildren: one connection with two Child SAs (to 10.2.0.1
// and 10.2.0.7): the first comes with IKE_AUTH, the second with
// CREATE_CHILD_SA on the same IKE SA (RFC 7296 §1.3.1), whichever side
// initiates; both carry traffic.
func TestPetrelTwoChildren(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			lan2 := netip.MustParseAddr("10.2.0.7")
			x := startPetrelS2S(t, "two-children", role, func(x *petrelS2S) {
				x.editConf = func(p, sw string) (string, string) {
					const pEnd = "        start_action: none\n"
					p = strings.Replace(p, pEnd, pEnd+"      s2s-child2:\n        local_ts: "+x.topo.LanA.String()+
						"/32\n        remote_ts: "+lan2.String()+"/32\n        esp_proposals: [\"aes256gcm16\"]\n"+pEnd, 1)
					const sEnd = "\t\t\t}\n\t\t}\n\t}\n}\nsecrets"
					sw = strings.Replace(sw, sEnd, "\t\t\t}\n\t\t\ts2s-child2 {\n\t\t\t\tmode = tunnel\n\t\t\t\tlocal_ts = "+lan2.String()+
						"/32\n\t\t\t\tremote_ts = "+x.topo.LanA.String()+"/32\n\t\t\t\tesp_proposals = aes256gcm16\n\t\t\t\tstart_action = none\n"+sEnd, 1)
					return p, sw
				}
			})
			s := x.s
			x.topo.B.AddLoopbackAddr(lan2)
			if role == RoleInitiator {
				s.Initiate(x.dut, x.ca.ChildName(), 20*time.Second) // `petrel up` brings up every child
			} else {
				s.Initiate(x.peer, x.cb.ChildName(), 20*time.Second)
				s.Initiate(x.peer, "s2s-child2", 20*time.Second)
			}
			dut, peer := x.list()
			d2 := s.WaitEstablished(x.dut, x.ca.Name, "s2s-child2", 5*time.Second)
			p2 := s.WaitEstablished(x.peer, x.cb.Name, "s2s-child2", 5*time.Second)
			if d2.SPIi != dut.SPIi || p2.SPIi != peer.SPIi {
				s.Fatalf("the second Child SA is on another IKE SA (petrel %s_i vs %s_i)", d2.SPIi, dut.SPIi)
			}
			requireSameSAs(s, d2, "s2s-child2", p2, "s2s-child2")
			s.RequirePing(x.topo.A, x.topo.LanA, x.topo.LanB, 5, 5, 50*time.Millisecond)
			s.RequirePing(x.topo.A, x.topo.LanA, lan2, 5, 5, 50*time.Millisecond)
			d2 = s.WaitEstablished(x.dut, x.ca.Name, "s2s-child2", 5*time.Second)
			requireChildTraffic(s, d2, "s2s-child2")
			r := x.check()
			requireExchanges(s, r, 34, 35, 36)
		})
	}
}

// TestPetrelTSUnacceptable: the responder's selectors do not cover what
// the initiator proposes; the IKE_AUTH answer must carry TS_UNACCEPTABLE
// (RFC 7296 §2.9) and the initiator must report the failure without a
// Child SA.
func TestPetrelTSUnacceptable(t *testing.T) {
	const tsUnacceptable = 38
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			x := startPetrelS2S(t, "ts-unacceptable", role, func(x *petrelS2S) {
				if x.s.Role == RoleInitiator {
					x.ca.RemoteTS = "10.9.0.1/32" // strongSwan protects 10.2.0.1 only
				} else {
					x.cb.RemoteTS = "10.9.0.1/32" // petrel protects 10.1.0.1 only
				}
			})
			s := x.s
			ctx := s.ctx(20 * time.Second)
			var err error
			if role == RoleInitiator {
				err = x.dut.Initiate(ctx, x.ca.ChildName())
			} else {
				err = x.peer.Initiate(ctx, x.cb.ChildName())
			}
			if err == nil {
				s.Fatalf("initiate succeeded although the selectors do not match")
			}
			if role == RoleInitiator && !strings.Contains(err.Error(), "TS_UNACCEPTABLE") {
				s.Fatalf("petrel up does not name TS_UNACCEPTABLE: %v", err)
			}
			s.Logf("initiator reports: %v", err)
			for _, n := range []Node{x.dut, x.peer} {
				sas, err := n.ListSAs(ctx)
				if err != nil {
					s.Fatalf("%v", err)
				}
				for _, sa := range sas {
					if len(sa.Children) != 0 {
						s.Fatalf("%s lists a Child SA: %s", n.Name(), describeSAs(sas))
					}
				}
			}
			r := s.CheckCapture(x.capture, x.peer, x.dut)
			var answers int
			for _, m := range r.IKE {
				if m.Exchange == 35 && m.Response && m.Decrypted && containsInt(m.Notifies, tsUnacceptable) {
					answers++
				}
			}
			if answers != 1 {
				s.Fatalf("capture: %d IKE_AUTH answers with TS_UNACCEPTABLE, want 1", answers)
			}
		})
	}
}

// TestPetrelDPDAfterKill: petrel's liveness check (RFC 7296 §2.4,
// dpd_delay 1 s, retransmits 1 s x 1.4, 2 tries) must notice a strongSwan
// killed with SIGKILL and drop the SA; the probes are empty INFORMATIONAL
// requests from petrel.
func TestPetrelDPDAfterKill(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			x := startPetrelS2S(t, "dpd-after-kill-9", role, func(x *petrelS2S) {
				x.ca.Extra = []string{"dpd_delay: 1s"}
				x.cb.Extra = []string{"mobike = no"}
				x.editConf = func(p, sw string) (string, string) {
					return strings.Replace(p, "    tries: 8\n", "    tries: 2\n", 1), sw
				}
			})
			s := x.s
			x.up(20 * time.Second)
			if err := x.peer.Kill(); err != nil {
				s.Fatalf("%v", err)
			}
			took := waitGone(s, x.dut, x.ca.Name, 15*time.Second)
			r := s.CheckCapture(x.capture, x.dut)
			from := x.topo.AddrA.String() + ":4500"
			var probes int
			for _, m := range r.IKE {
				if m.Exchange == 37 && !m.Response && m.Src == from && m.Decrypted && len(m.Payloads) == 1 && m.Payloads[0] == 46 {
					probes++
				}
			}
			if probes < 2 {
				s.Fatalf("capture: %d empty INFORMATIONAL requests from petrel, want the probe and its retransmissions", probes)
			}
			s.Logf("petrel dropped the SA %.1f s after strongSwan was killed, after %d unanswered DPD probes", took.Seconds(), probes)
		})
	}
}
