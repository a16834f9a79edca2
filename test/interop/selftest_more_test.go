package interop

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSelfRekeyUnderPing rekeys the IKE SA and the Child SA (started by
// one side, with short lifetimes; once by the initiator, once by the
// responder) while a continuous ping runs, and checks that the ping
// survives and that every message of every generation of keys decrypts:
// the key-log chain across rekeys works whoever starts them.
func TestSelfRekeyUnderPing(t *testing.T) {
	for _, by := range []string{"gwa", "gwb"} {
		t.Run("by-"+by, func(t *testing.T) { selfRekey(t, by) })
	}
}

func selfRekey(t *testing.T, by string) {
	s := Begin(t, "self-rekey-by-"+by+"-under-ping", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	short, short2 := &ca, &cb // short lifetimes on the rekeying side only: no collisions
	if by == "gwb" {
		short, short2 = &cb, &ca
	}
	short.Extra = []string{"rekey_time = 4s", "over_time = 30s", "rand_time = 0s"}
	short.ChildExtra = []string{"rekey_time = 3s", "life_time = 30s", "rand_time = 0s"}
	short2.Extra = []string{"rekey_time = 0s"}
	short2.ChildExtra = []string{"rekey_time = 0s", "life_time = 60s"}
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(a)
	s.StartNode(b)
	capture := s.StartCapture(topo.B, "eth0", "link")

	s.Initiate(a, ca.ChildName(), 20*time.Second)
	first := s.WaitEstablished(a, "s2s", ca.ChildName(), 5*time.Second)
	r := s.RequirePing(topo.A, topo.LanA, topo.LanB, 35, 34, 200*time.Millisecond) // 7 s
	last := s.WaitEstablished(a, "s2s", ca.ChildName(), 5*time.Second)
	c0, _ := first.Child(ca.ChildName())
	c1, _ := last.Child(ca.ChildName())
	if last.SPIi == first.SPIi || c1.SPIIn == c0.SPIIn {
		s.Fatalf("no rekey in %d s: IKE SA %s_i child %s_i then IKE SA %s_i child %s_i", r.Sent/5,
			first.SPIi, c0.SPIIn, last.SPIi, c1.SPIIn)
	}
	rep := s.CheckCapture(capture, a, b)
	requireESPDecrypted(s, rep)
	rekeyer := topo.AddrA.String()
	if by == "gwb" {
		rekeyer = topo.AddrB.String()
	}
	var ikeRekeys, childRekeys int
	for _, m := range rep.IKE {
		if m.Exchange != 36 || m.Response {
			continue
		}
		if !strings.HasPrefix(m.Src, rekeyer+":") {
			s.Fatalf("frame %d: CREATE_CHILD_SA request from %s, want only %s to rekey", m.Frame, m.Src, by)
		}
		if containsInt(m.Payloads, 44) { // TSi: a Child SA; none: the IKE SA (RFC 7296 §1.3)
			childRekeys++
		} else {
			ikeRekeys++
		}
	}
	if ikeRekeys < 1 || childRekeys < 2 {
		s.Fatalf("capture: %d IKE rekeys and %d Child rekeys by %s in %d s, want at least 1 and 2", ikeRekeys, childRekeys, by, r.Sent/5)
	}
	s.Logf("%d IKE and %d Child rekeys by %s under ping, %d/%d replies, all decrypted", ikeRekeys, childRekeys, by, r.Received, r.Sent)
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestSelfPSKMismatchIsCaught proves the harness can go red: with different
// pre-shared keys the setup must fail, and the responder's log must say
// why.
func TestSelfPSKMismatchIsCaught(t *testing.T) {
	s := Begin(t, "self-psk-mismatch-caught", RoleSelfTest)
	topo := s.NewSiteToSite()
	ca, cb := siteToSiteConns(topo)
	cb.PSK = "a-different-secret"
	a := s.NewStrongSwan(topo.A, "gwa", SwanctlConf(ca))
	b := s.NewStrongSwan(topo.B, "gwb", SwanctlConf(cb))
	s.StartNode(a)
	s.StartNode(b)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Initiate(ctx, ca.ChildName()); err == nil {
		s.Fatalf("initiate succeeded although the pre-shared keys differ")
	}
	sas, err := b.ListSAs(ctx)
	if err != nil {
		s.Fatalf("%v", err)
	}
	for _, sa := range sas {
		if sa.State == "ESTABLISHED" {
			s.Fatalf("gwb established %s with a wrong key", sa.Name)
		}
	}
	log, err := os.ReadFile(b.Logs()[0])
	if err != nil {
		s.Fatalf("%v", err)
	}
	if !strings.Contains(string(log), "AUTH_FAILED") {
		s.Fatalf("gwb's log does not mention AUTH_FAILED")
	}
	if lines := s.relevantLogLines(5); !strings.Contains(lines, "AUTH_FAILED") {
		s.Fatalf("the failure report would not show AUTH_FAILED:\n%s", lines)
	}
}
