package interop

import (
	"testing"
	"time"
)

// TestSelfFragmentation forces IKE fragmentation (RFC 7383) with a tiny
// fragment size on both sides and checks that every SKF fragment on the
// wire decrypts and the exchange completes.
func TestSelfFragmentation(t *testing.T) {
	s := Begin(t, "self-fragmentation", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	ca.Extra = []string{"fragmentation = force"}
	cb.Extra = []string{"fragmentation = yes"}
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	a.Charon = "fragment_size = 180"
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	b.Charon = "fragment_size = 180"
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.B, "eth0", "link")

	s.Initiate(a, ca.ChildName(), 20*time.Second)
	s.RequirePing(topo.A, topo.LanA, topo.LanB, 10, 9, 50*time.Millisecond)
	r := s.CheckCapture(capture, a, b)
	var frags, fragsDecrypted int
	for _, m := range r.IKE {
		if containsInt(m.Payloads, 53) {
			frags++
			if m.Decrypted {
				fragsDecrypted++
			}
		}
	}
	if frags < 2 {
		s.Fatalf("capture: %d SKF fragments, want IKE_AUTH split into several", frags)
	}
	s.Logf("%d SKF fragments on the wire, %d decrypted", frags, fragsDecrypted)
}
