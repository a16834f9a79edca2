package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/cert"
)

// petrel sending IKE fragments (RFC 7383) and INITIAL_CONTACT (RFC 7296
// §2.4) against strongSwan 5.9.8 on the site-to-site link: petrel on gwa
// (192.0.2.1), strongSwan on gwb (192.0.2.2).

// fragSize is the fragment_size both sides get in TestPetrelSendsFragments:
// petrel's (the largest UDP payload of an IKE datagram) and charon's (the
// largest IP datagram of an IKE fragment).
const fragSize = 400

// TestPetrelSendsFragments: with ECDSA certificates and intermediates in
// CERT payloads, each IKE_AUTH message is about 1,200 octets; with
// fragment_size 400 petrel must send its IKE_AUTH (the request as
// initiator, the response as responder) as SKF fragments of at most 400
// octets of UDP payload each, every one of them decrypting with the key
// logs (with petrel's alone too). strongSwan reassembles them (both sides
// list the same SAs, pings pass). charon's fragment_size is 400 as well, so
// its IKE_AUTH travels toward petrel in fragments in the same run.
//
//	petrel initiator:
//	HDR, SKF{1/n}{IDi, CERT, CERT, CERTREQ, IDr, AUTH, SA, TSi, TSr} ... SKF{n/n}  -->
//	              <--  HDR, SKF{1/m}{IDr, CERT, CERT, AUTH, SA, TSi, TSr} ... SKF{m/m}
func TestPetrelSendsFragments(t *testing.T) {
	for _, role := range petrelRoles {
		t.Run(role, func(t *testing.T) {
			s := Begin(t, "petrel-sends-fragments-"+role, role)
			topo := s.NewSiteToSite()
			p := newCertPKI(s, cert.KeyECDSAP256, "")
			dut := p.newCertPetrel(s, topo, certSide{}, certSide{})
			conf := strings.Replace(dut.Config, "    proposals: ", fmt.Sprintf("    fragment_size: %d\n    proposals: ", fragSize), 1)
			conf = strings.Replace(conf, "  dataplane: userspace-tun\n", fmt.Sprintf("  dataplane: userspace-tun\n  keylog_dir: %q\n", dut.Dir()+"/keylog"), 1)
			if strings.Count(conf, "fragment_size:") != 1 || !strings.Contains(conf, "keylog_dir:") {
				s.Fatalf("cannot place fragment_size and keylog_dir in petrel's config:\n%s", dut.Config)
			}
			dut.Config = conf
			dut.IKEKeyFile, dut.ESPKeyFile = "keylog/ikev2_decryption_table", "keylog/esp_sa"
			peer := s.NewStrongSwan(topo.B, "gwb", certSwanConf(topo, certSide{}, certSide{}))
			peer.Charon = fmt.Sprintf("fragment_size = %d", fragSize)
			p.writeSwanCreds(s, peer)
			s.StartNode(dut)
			s.StartNode(peer)
			capture := s.StartCapture(topo.B, "eth0", "link")
			if role == RoleInitiator {
				s.Initiate(dut, "s2s-child", 20*time.Second)
			} else {
				s.Initiate(peer, "s2s-child", 20*time.Second)
			}
			s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
			peerSA := s.WaitEstablished(peer, "s2s", "s2s-child", 5*time.Second)
			dutSA := s.WaitEstablished(dut, "s2s", "s2s-child", 5*time.Second)
			if dutSA.Initiator != (role == RoleInitiator) || peerSA.Initiator == dutSA.Initiator {
				s.Fatalf("roles: petrel initiator=%v, strongSwan initiator=%v; petrel should be the %s", dutSA.Initiator, peerSA.Initiator, role)
			}
			requireSameSAs(s, dutSA, "s2s-child", peerSA, "s2s-child")

			r := s.CheckCapture(capture, peer, dut)
			requireESPDecrypted(s, r)
			kl, err := dut.KeyLog()
			if err != nil {
				s.Fatalf("petrel key log: %v", err)
			}
			alone, err := s.Analyze(capture.Path, kl)
			if err != nil {
				s.Fatalf("%v", err)
			}
			if len(alone.Problems) > 0 {
				s.Fatalf("capture with petrel's key log alone: %s", alone.Problems[0])
			}
			dg := ikeDatagrams(s, capture.Path)
			petrelAddr, swanAddr := topo.AddrA.String()+":", topo.AddrB.String()+":"
			// petrel's own IKE_AUTH message: the request when it initiates,
			// the response when it responds.
			petrelFrags := requireFragmented(s, r, dg, petrelAddr, role == RoleResponder, fragSize, "petrel")
			swanFrags := requireFragmented(s, r, dg, swanAddr, role == RoleInitiator, 0, "strongSwan")
			for _, m := range r.IKE { // every protected message petrel sent fits, not only IKE_AUTH
				if d := dg[m.Frame]; m.Encrypted && strings.HasPrefix(m.Src, petrelAddr) && d.Payload > fragSize {
					s.Fatalf("frame %d: petrel's %s %s has %d octets of UDP payload, more than fragment_size %d", m.Frame, exchangeName(m.Exchange), reqResp(m.Response), d.Payload, fragSize)
				}
			}
			// charon: "received fragment #2 of 4, reassembled fragmented IKE
			// message (1169 bytes)", on whichever fragment its threads
			// handle last.
			if n := len(petrelFrags); !logLineHas(peer, fmt.Sprintf(" of %d, reassembled fragmented IKE message", n)) {
				s.Fatalf("strongSwan's log does not say it reassembled petrel's %d fragments", n)
			}
			s.Logf("petrel's IKE_AUTH %s crossed as %d SKF fragments (UDP payloads %v, limit %d), strongSwan's as %d (%v); each side reassembled the other's",
				reqResp(role == RoleResponder), len(petrelFrags), petrelFrags, fragSize, len(swanFrags), swanFrags)
		})
	}
}

// requireFragmented fails unless every IKE_AUTH message (responses when
// response is set, else requests) sent from the address prefix from is an
// SKF fragment that decrypted, numbered 1..n of n, and, when limit > 0,
// with a UDP payload of at most limit octets; n must be at least 2. It
// returns the UDP payload sizes of the fragments of the message's first
// transmission.
func requireFragmented(s *Scenario, r CaptureReport, dg map[int]ikeDatagram, from string, response bool, limit int, who string) []int {
	s.t.Helper()
	var sizes []int
	seen := map[int]bool{}
	total := 0
	for _, m := range r.IKE {
		if m.Exchange != 35 || m.Response != response || !strings.HasPrefix(m.Src, from) {
			continue
		}
		d, ok := dg[m.Frame]
		switch {
		case !containsInt(m.Payloads, 53):
			s.Fatalf("frame %d: %s's IKE_AUTH %s travels whole (payloads %v, %d octets of UDP payload), want SKF fragments", m.Frame, who, reqResp(response), m.Payloads, d.Payload)
		case !m.Decrypted:
			s.Fatalf("frame %d: %s's SKF fragment not decrypted", m.Frame, who)
		case !ok:
			s.Fatalf("frame %d: no UDP length from tshark", m.Frame)
		case limit > 0 && d.Payload > limit:
			s.Fatalf("frame %d: %s's SKF fragment %d/%d has %d octets of UDP payload, more than fragment_size %d", m.Frame, who, d.FragNum, d.FragTotal, d.Payload, limit)
		case d.FragNum < 1 || d.FragNum > d.FragTotal || (total != 0 && d.FragTotal != total):
			s.Fatalf("frame %d: %s's SKF fragment numbered %d of %d (earlier ones said %d in all)", m.Frame, who, d.FragNum, d.FragTotal, total)
		}
		total = d.FragTotal
		if !seen[d.FragNum] { // a retransmission repeats the numbers
			seen[d.FragNum] = true
			sizes = append(sizes, d.Payload)
		}
	}
	if total < 2 || len(seen) != total {
		s.Fatalf("capture: %s's IKE_AUTH %s: %d distinct SKF fragments of a total of %d, want all of at least 2", who, reqResp(response), len(seen), total)
	}
	return sizes
}

// TestPetrelInitialContact: INITIAL_CONTACT (RFC 7296 §2.4) after a
// restart by SIGKILL, which leaves the other side with SAs nobody answers
// for.
//
//	responder: strongSwan restarts, petrel drops the stale SAs.
//	initiator: petrel restarts, strongSwan drops the stale SAs.
//
//	(restarted side) HDR, SK{IDi, N(INITIAL_CONTACT), IDr, AUTH, SA, TSi, TSr}  -->
//	                            <--  HDR, SK{IDr, AUTH, SA, TSi, TSr}
//	the other side deletes its older SAs with that peer, without a DELETE
//
// strongSwan 5.9.8 (ike_auth.c, build_i) puts N(INITIAL_CONTACT) in its
// IKE_AUTH request unless the connection's unique policy is "never" or it
// already holds an IKE SA between the same identities (has_contact); after
// a restart it holds none, so the default unique = no is enough (charon's
// log: "generating IKE_AUTH request 1 [ IDi N(INIT_CONTACT) IDr AUTH ...]").
// Older releases skipped it for unique = no as well; this one does not.
// Receiving one, even with unique = no, it destroys the older duplicates
// of the new IKE SA (check_uniqueness with force_replace: "destroying
// duplicate IKE_SA for peer ..., received INITIAL_CONTACT").
func TestPetrelInitialContact(t *testing.T) {
	t.Run(RoleResponder, func(t *testing.T) { initialContactSwanRestart(t) })
	t.Run(RoleInitiator, func(t *testing.T) { initialContactPetrelRestart(t) })
}

// initialContactSwanRestart: strongSwan initiates, is killed with SIGKILL
// (petrel keeps the SAs: its DPD is 300 s away), restarts with the same
// configuration and initiates again with N(INITIAL_CONTACT); petrel must
// end with only the new IKE SA and its one Child SA.
func initialContactSwanRestart(t *testing.T) {
	x := startPetrelS2S(t, "initial-contact-swan-restart", RoleResponder, func(x *petrelS2S) {
		x.ca.Extra = []string{"dpd_delay: 300s"}
	})
	s, topo := x.s, x.topo
	dut0, peer0 := x.up(20 * time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 5, 5, 50*time.Millisecond)
	old := x.peer
	if err := old.Kill(); err != nil {
		s.Fatalf("%v", err)
	}
	// petrel still holds the SAs strongSwan forgot.
	if sas, err := x.dut.ListSAs(s.ctx(10 * time.Second)); err != nil || len(sas) != 1 || sas[0].SPIi != dut0.SPIi {
		s.Fatalf("after strongSwan's SIGKILL petrel should still list IKE SA %s_i only: %v %s", dut0.SPIi, err, describeSPIs(sas))
	}
	x.peer = restartSwan(s, old, "gwb-restarted")
	s.Initiate(x.peer, x.cb.ChildName(), 20*time.Second)
	peer := s.WaitEstablished(x.peer, x.cb.Name, x.cb.ChildName(), 5*time.Second)
	if peer.SPIi == peer0.SPIi {
		s.Fatalf("the restarted strongSwan lists the old IKE SA %s_i", peer0.SPIi)
	}
	dut := waitOnlySA(s, x.dut, peer, x.ca.ChildName(), 5*time.Second)
	x.list() // both listings agree, roles as expected
	c0, _ := dut0.Child(x.ca.ChildName())
	if c, _ := dut.Child(x.ca.ChildName()); c.SPIIn == c0.SPIIn {
		s.Fatalf("petrel still lists the stale Child SA %s", c0.SPIIn)
	}
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	if !logLineHas(x.dut, "deleting SA after the peer's INITIAL_CONTACT", "spi_i="+dut0.SPIi) {
		s.Fatalf("petrel's log has no line saying it deleted IKE SA %s_i after the peer's INITIAL_CONTACT", dut0.SPIi)
	}
	r := s.CheckCapture(x.capture, old, x.peer, x.dut)
	requireESPDecrypted(s, r)
	requireInitialContact(s, r, topo.AddrB.String()+":", peer.SPIi, "strongSwan")
	s.Logf("petrel dropped IKE SA %s_i and kept only the new %s_i %s_r with one Child SA", dut0.SPIi, dut.SPIi, dut.SPIr)
}

// initialContactPetrelRestart: petrel initiates, is killed with SIGKILL
// (strongSwan runs no DPD), restarts with the same configuration and
// initiates again with N(INITIAL_CONTACT); strongSwan must end with only
// the new IKE SA.
func initialContactPetrelRestart(t *testing.T) {
	x := startPetrelS2S(t, "initial-contact-petrel-restart", RoleInitiator, nil)
	s, topo := x.s, x.topo
	dut0, peer0 := x.up(20 * time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 5, 5, 50*time.Millisecond)
	old := x.dut
	if err := old.Kill(); err != nil {
		s.Fatalf("%v", err)
	}
	if sas, err := x.peer.ListSAs(s.ctx(10 * time.Second)); err != nil || len(sas) != 1 || sas[0].SPIi != peer0.SPIi {
		s.Fatalf("after petrel's SIGKILL strongSwan should still list IKE SA %s_i only: %v %s", peer0.SPIi, err, describeSPIs(sas))
	}
	x.dut = restartPetrel(s, old, "gwa-restarted", x.ca)
	s.Initiate(x.dut, x.ca.ChildName(), 20*time.Second)
	dut := s.WaitEstablished(x.dut, x.ca.Name, x.ca.ChildName(), 5*time.Second)
	if dut.SPIi == dut0.SPIi {
		s.Fatalf("the restarted petrel lists the old IKE SA %s_i", dut0.SPIi)
	}
	peer := waitOnlySA(s, x.peer, dut, x.cb.ChildName(), 5*time.Second)
	x.list()
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	if !logLineHas(x.peer, "destroying duplicate IKE_SA", "received INITIAL_CONTACT") {
		s.Fatalf("strongSwan's log does not say it destroyed the duplicate IKE SA on INITIAL_CONTACT")
	}
	r := s.CheckCapture(x.capture, x.peer, old, x.dut)
	requireESPDecrypted(s, r)
	requireInitialContact(s, r, topo.AddrA.String()+":", dut.SPIi, "petrel")
	s.Logf("strongSwan dropped IKE SA %s_i and kept only the new %s_i %s_r", peer0.SPIi, peer.SPIi, peer.SPIr)
}

// waitOnlySA polls n until it lists exactly one IKE SA, established, with
// the SPIs of want and exactly one Child SA, named child and installed.
func waitOnlySA(s *Scenario, n Node, want IKESA, child string, timeout time.Duration) IKESA {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last []IKESA // the last listing that came back
	var lastErr error
	for time.Now().Before(deadline) {
		sas, err := n.ListSAs(s.ctx(5 * time.Second))
		if err != nil { // govici can trip over events a short listing left behind: poll again
			lastErr = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		last = sas
		if len(sas) == 1 && sas[0].SPIi == want.SPIi && sas[0].SPIr == want.SPIr &&
			sas[0].State == "ESTABLISHED" && len(sas[0].Children) == 1 &&
			sas[0].Children[0].Name == child && sas[0].Children[0].State == "INSTALLED" {
			return sas[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Fatalf("%s should list only IKE SA %s_i %s_r with one Child SA %s after %s; its last listing: %s (last listing error: %v)",
		n.Name(), want.SPIi, want.SPIr, child, timeout, describeSPIs(last), lastErr)
	return IKESA{}
}

// describeSPIs is describeSAs with the SPIs.
func describeSPIs(sas []IKESA) string {
	if len(sas) == 0 {
		return "no SAs"
	}
	var parts []string
	for _, sa := range sas {
		p := fmt.Sprintf("%s %s %s_i %s_r", sa.Name, sa.State, sa.SPIi, sa.SPIr)
		for _, c := range sa.Children {
			p += fmt.Sprintf(" [%s %s in %s out %s]", c.Name, c.State, c.SPIIn, c.SPIOut)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; ")
}

// requireInitialContact fails unless the last IKE_AUTH request sent from
// the address prefix from decrypted and carries N(INITIAL_CONTACT).
func requireInitialContact(s *Scenario, r CaptureReport, from, spiI, who string) {
	s.t.Helper()
	var last *IKEMsg
	var n int
	for i, m := range r.IKE {
		if m.Exchange == 35 && !m.Response && strings.HasPrefix(m.Src, from) {
			last = &r.IKE[i]
			n++
		}
	}
	switch {
	case last == nil:
		s.Fatalf("capture: no IKE_AUTH request from %s", who)
	case !last.Decrypted:
		s.Fatalf("frame %d: %s's IKE_AUTH request not decrypted", last.Frame, who)
	case !containsInt(last.Notifies, notifyInitialContact):
		s.Fatalf("frame %d: %s's IKE_AUTH request for IKE SA %s_i carries notifies %v, no INITIAL_CONTACT (%d)", last.Frame, who, spiI, last.Notifies, notifyInitialContact)
	}
	s.Logf("frame %d: %s's IKE_AUTH request (the %d. from it) carries N(INITIAL_CONTACT)", last.Frame, who, n)
}

// notifyInitialContact is INITIAL_CONTACT's notify type (RFC 7296 §3.10.1).
const notifyInitialContact = 16384
