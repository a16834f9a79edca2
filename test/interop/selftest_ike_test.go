package interop

import (
	"testing"
	"time"
)

// Notify message types (RFC 7296 §3.10.1).
const (
	notifyInvalidKE = 17
	notifyCookie    = 16390 // strongSwan 5.9 demands one only while its half-open SAs reach cookie_threshold (sc7)
)

// TestSelfInvalidKERetry: gwa guesses ecp256 for its key share, gwb
// accepts only x25519 and answers INVALID_KE_PAYLOAD (RFC 7296 §1.2);
// gwa must retry with x25519 and succeed.
func TestSelfInvalidKERetry(t *testing.T) {
	s := Begin(t, "self-invalid-ke-retry", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	ca.Proposals = "aes256gcm16-prfsha256-ecp256-x25519"
	cb.Proposals = "aes256gcm16-prfsha256-x25519"
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	// strongSwan 5.9 ignores the first answer to its retried IKE_SA_INIT
	// and retransmits (after 4 s by default; 1 s here).
	a.Charon = "retransmit_timeout = 1.0"
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.B, "eth0", "link")

	s.Initiate(a, ca.ChildName(), 20*time.Second)
	sa := s.WaitEstablished(a, "s2s", ca.ChildName(), 5*time.Second)
	if sa.DHGroup != "CURVE_25519" {
		s.Fatalf("gwa settled on %s, want CURVE_25519", sa.DHGroup)
	}
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	r := s.CheckCapture(capture, a, b)
	inits, invalidKE := 0, 0
	for _, m := range r.IKE {
		if m.Exchange == 34 && !m.Response {
			inits++
		}
		if m.Exchange == 34 && m.Response && containsInt(m.Notifies, notifyInvalidKE) {
			invalidKE++
		}
	}
	if invalidKE != 1 || inits < 2 {
		s.Fatalf("capture: %d INVALID_KE_PAYLOAD answers and %d IKE_SA_INIT requests, want 1 and at least 2", invalidKE, inits)
	}
}
