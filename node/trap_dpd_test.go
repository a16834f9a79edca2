package node

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/dataplane"
)

// dpdRig is a loopback pair whose a runs liveness checks every 300 ms
// with a short retransmission schedule (a peer is dead a second after it
// stops answering) and dpd_action as given; both sides have netstacks, b
// a UDP echo on port 7. The nodes close with a short wait: b may still
// hold an SA a forgot, whose delete a never answers.
type dpdRig struct {
	a, b   *Node
	pa, pb LoopbackPeer
	nsA    *netstack.Net
	events <-chan Event // a's
	freeB  func()
	noSA   bool // waitDead skips the check that a has no IKE SA
}

func newDPDRig(t *testing.T, action string, setup func(a *Node)) *dpdRig {
	t.Helper()
	pa, pb, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pa.Config.Daemon.Retransmit = config.Retransmit{Timeout: 200 * time.Millisecond, Base: 1, Tries: 4}
	if action != "" { // else no liveness checks
		pa.Config.Connections[0].DPDDelay = 300 * time.Millisecond
		pa.Config.Connections[0].Children[0].DPDAction = action
	}
	r := &dpdRig{pa: pa, pb: pb}
	if r.b, err = New(Options{Config: pb.Config, Logger: testLogger(t).With("node", "b")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeShort(r.b) })
	if r.a, err = New(Options{Config: pa.Config, Logger: testLogger(t).With("node", "a")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeShort(r.a) })
	ifID := uint32(0)
	if setup != nil {
		setup(r.a)
		_ = r.a.do(func(time.Time) {
			if rd := r.a.routeChild("b", "net"); rd != nil {
				ifID = rd.ifID
			}
		})
	}
	nsA, err := r.a.DataPlane().AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400, ifID)
	if err != nil {
		t.Fatal(err)
	}
	r.nsA = nsA
	nsB, err := r.b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	echo, err := nsB.ListenUDPAddrPort(netip.AddrPortFrom(netip.MustParseAddr(pb.Addr), 7))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 1500)
		for { // ends when the test closes the socket
			k, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:k], from)
		}
	}()
	events, stop := r.a.Subscribe()
	t.Cleanup(stop)
	r.events = events
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if !r.echo(t, 3*time.Second) {
		t.Fatal("no echo through the first SA")
	}
	return r
}

func closeShort(n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	n.Close(ctx)
}

// echo sends numbered datagrams from a's inner address to b's echo until
// one comes back or d passes.
func (r *dpdRig) echo(t *testing.T, d time.Duration) bool {
	t.Helper()
	c, err := r.nsA.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(netip.MustParseAddr(r.pb.Addr), 7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if k, err := c.Read(buf); err == nil && string(buf[:k]) == "ping" {
			return true
		}
	}
	return false
}

// silenceB blocks b's loop, so that b answers no IKE message (its data
// plane still runs): a hung peer, from a's side. freeB lets it go.
func (r *dpdRig) silenceB(t *testing.T) {
	t.Helper()
	release := make(chan struct{})
	var once sync.Once
	r.freeB = func() { once.Do(func() { close(release) }) }
	t.Cleanup(r.freeB) // before the nodes close
	r.b.in <- input{call: func(time.Time) { <-release }}
}

// waitDead waits for a's peer-dead and ike-down events, checks the action
// the core reported and, unless a restarts at once, that a has no IKE SA.
func (r *dpdRig) waitDead(t *testing.T, action string) {
	t.Helper()
	if e := waitEvent(t, r.events, "peer-dead"); e.Reason != action || e.Conn != "b" {
		t.Fatalf("peer-dead %+v, want action %s", e, action)
	}
	if e := waitEvent(t, r.events, "ike-down"); e.Reason != "dead-peer" {
		t.Fatalf("ike-down %+v", e)
	}
	if r.noSA {
		return
	}
	if s, _ := r.a.Sessions(); len(s) != 0 {
		t.Fatalf("a keeps %d IKE SAs after the peer died", len(s))
	}
}

// trapState is what a holds for the child: DPD trap, policies, and the
// policy a's data plane finds for the child's traffic.
func (r *dpdRig) trapState() (dpd bool, policies int, found bool) {
	_ = r.a.do(func(time.Time) {
		_, dpd = r.a.dpdTraps[connChild{"b", "net"}]
		policies = len(r.a.policies)
	})
	_, found = r.a.DataPlane().LookupPolicy(dataplane.Flow{Src: netip.MustParseAddr(r.pa.Addr),
		Dst: netip.MustParseAddr(r.pb.Addr), Proto: 17, DstPort: 7})
	return
}

// dpd_action: trap. a's peer stops answering; a declares it dead, keeps
// no IKE SA but a trap policy; a's next packet towards b's network raises
// an Acquire, a initiates again, and the packets that follow pass. Once
// the child is up, the DPD trap is gone and only the SA's policy is left.
func TestDPDTrapReinitiatesOnTraffic(t *testing.T) {
	r := newDPDRig(t, "trap", nil)
	r.silenceB(t)
	r.waitDead(t, "trap")
	if dpd, pols, found := r.trapState(); !dpd || pols != 1 || !found {
		t.Fatalf("after peer-dead: dpd trap %v, %d policies, data plane policy %v", dpd, pols, found)
	}
	if st := r.a.Stats(); st.PeerDead != 1 || st.IKEUp != 1 {
		t.Fatalf("stats %+v", st)
	}
	r.freeB()
	// Nothing starts without traffic.
	time.Sleep(300 * time.Millisecond)
	if s, _ := r.a.Sessions(); len(s) != 0 {
		t.Fatalf("a initiated without traffic: %+v", s)
	}
	if !r.echo(t, 10*time.Second) {
		t.Fatal("no echo after the trap sprang")
	}
	if e := waitEvent(t, r.events, "ike-up"); e.Conn != "b" || !e.Initiator {
		t.Fatalf("ike-up %+v", e)
	}
	s, _ := r.a.Sessions()
	if len(s) != 1 || s[0].Role != "initiator" || len(s[0].Children) != 1 || s[0].Children[0].PacketsRx == 0 {
		t.Fatalf("sessions after the trap: %+v", s)
	}
	var refs int
	_ = r.a.do(func(time.Time) {
		for _, p := range r.a.policies {
			refs += p.refs
		}
	})
	if dpd, pols, found := r.trapState(); dpd || pols != 1 || refs != 1 || !found {
		t.Fatalf("after child-up: dpd trap %v, %d policies (%d refs), data plane policy %v", dpd, pols, refs, found)
	}
	// Taking the connection down leaves nothing behind.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := r.a.Down(ctx, "b"); n != 1 || err != nil {
		t.Fatalf("Down: %d %v", n, err)
	}
	if dpd, pols, found := r.trapState(); dpd || pols != 0 || found {
		t.Fatalf("after Down: dpd trap %v, %d policies, data plane policy %v", dpd, pols, found)
	}
}

// dpd_action: clear. The peer is declared dead and the child removed with
// its policies; traffic afterwards initiates nothing.
func TestDPDClearDoesNotReinitiate(t *testing.T) {
	r := newDPDRig(t, "clear", nil)
	r.silenceB(t)
	r.waitDead(t, "clear")
	r.freeB()
	if dpd, pols, found := r.trapState(); dpd || pols != 0 || found {
		t.Fatalf("after peer-dead: dpd trap %v, %d policies, data plane policy %v", dpd, pols, found)
	}
	if r.echo(t, 1500*time.Millisecond) {
		t.Fatal("echo passed without an SA")
	}
	if s, _ := r.a.Sessions(); len(s) != 0 {
		t.Fatalf("a initiated: %+v", s)
	}
	if st := r.a.Stats(); st.IKEUp != 1 {
		t.Fatalf("a set up %d IKE SAs, want the first only", st.IKEUp)
	}
}

// Down after a DPD trap removes the trap (Down reports no error: the
// connection had no SA, but there was something to take down), so
// traffic initiates nothing; Reload of the changed connection does the
// same.
func TestDPDTrapReleasedByDownAndReload(t *testing.T) {
	r := newDPDRig(t, "trap", nil)
	r.silenceB(t)
	r.waitDead(t, "trap")
	r.freeB()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := r.a.Down(ctx, "b"); n != 0 || err != nil {
		t.Fatalf("Down of a trapped connection: %d %v", n, err)
	}
	if dpd, pols, found := r.trapState(); dpd || pols != 0 || found {
		t.Fatalf("after Down: dpd trap %v, %d policies, data plane policy %v", dpd, pols, found)
	}
	if _, err := r.a.Down(ctx, "b"); !errors.Is(err, ErrNoSA) {
		t.Fatalf("second Down: %v", err)
	}
	if r.echo(t, time.Second) {
		t.Fatal("echo passed without an SA")
	}
	if st := r.a.Stats(); st.IKEUp != 1 {
		t.Fatalf("a set up %d IKE SAs after Down", st.IKEUp)
	}

	// Again, released by a reload that changes the connection.
	if _, err := r.a.Up(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	r.silenceB(t)
	r.waitDead(t, "trap")
	r.freeB()
	if dpd, _, _ := r.trapState(); !dpd {
		t.Fatal("no DPD trap the second time")
	}
	cfg, err := config.Load(r.pa.File)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Daemon.Retransmit = r.pa.Config.Daemon.Retransmit
	cfg.Connections[0].DPDDelay = 0 // changed
	cfg.Connections[0].Children[0].DPDAction = "trap"
	if res, err := r.a.Reload(cfg); err != nil || len(res.Changed) != 1 {
		t.Fatalf("reload: %+v %v", res, err)
	}
	if dpd, pols, found := r.trapState(); dpd || pols != 0 || found {
		t.Fatalf("after reload: dpd trap %v, %d policies, data plane policy %v", dpd, pols, found)
	}
}

// A route-based child has no policies to trap and its device raises no
// Acquire: dpd_action trap restarts the connection at once instead.
func TestDPDTrapRouteBasedRestarts(t *testing.T) {
	r := newDPDRig(t, "trap", func(a *Node) {
		_ = a.do(func(time.Time) {
			a.routes["b/net"] = &routeDev{name: "test-vti", ifID: 43, close: func() error { return nil }}
		})
	})
	r.silenceB(t)
	r.noSA = true // a restarts at once
	r.waitDead(t, "trap")
	r.freeB()
	if e := waitEvent(t, r.events, "ike-up"); e.Conn != "b" || !e.Initiator {
		t.Fatalf("ike-up %+v", e)
	}
	if dpd, pols, _ := r.trapState(); dpd || pols != 0 {
		t.Fatalf("route-based: dpd trap %v, %d policies", dpd, pols)
	}
	if !r.echo(t, 5*time.Second) {
		t.Fatal("no echo after the restart")
	}
}
