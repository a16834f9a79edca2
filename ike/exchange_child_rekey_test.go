package ike

import (
	"slices"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// Exchange tests for Child SA rekeying (RFC 7296 §1.3.3, §2.8) and its
// collisions (§2.8.1, §2.25).

func establishOne(t *testing.T, seedA, seedB uint64) (*pair, *SA, *SA) {
	t.Helper()
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	p.a.record, p.b.record = true, true
	p.a.ep.rand, p.b.ep.rand = seeded(seedA), seeded(seedB)
	spi, _, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	return p, asa, p.b.ep.SA(asa.spiR)
}

// paired checks that each side has exactly one Child SA and that they are
// the two ends of one pair.
func paired(t *testing.T, asa, bsa *SA) {
	t.Helper()
	if len(asa.children) != 1 || len(bsa.children) != 1 {
		t.Fatalf("children A %d B %d", len(asa.children), len(bsa.children))
	}
	if a, b := asa.children[0], bsa.children[0]; a.InSPI != b.OutSPI || a.OutSPI != b.InSPI {
		t.Fatalf("A %08x/%08x and B %08x/%08x are not one pair", a.InSPI, a.OutSPI, b.InSPI, b.OutSPI)
	}
}

func (p *pair) rekeyChild(n *node, sa *SA, inSPI uint32) Datagram {
	p.t.Helper()
	n.out.Reset()
	if err := n.ep.RekeyChild(p.now, sa.ourSPI(), inSPI, &n.out); err != nil {
		p.t.Fatal(err)
	}
	return p.one(&n.out)
}

// TestChildRekey: A rekeys; the new pair is installed on both sides before
// either deletes the old one (make-before-break), then A deletes the old.
//
//	A: SK{N(REKEY_SA, a1), SA, Ni, TSi, TSr}  -->
//	                                          <--  SK{SA, Nr, TSi, TSr}      B installs b2
//	A installs a2, then: SK{D(ESP, a1)}       -->
//	                                          <--  SK{D(ESP, b1)}            old pair gone
func TestChildRekey(t *testing.T) {
	for _, aStarts := range []bool{true, false} {
		p, asa, bsa := establishOne(t, 1, 2)
		ini, res, isa, rsa := p.a, p.b, asa, bsa
		if !aStarts {
			ini, res, isa, rsa = p.b, p.a, bsa, asa
		}
		old := isa.children[0].InSPI
		req := p.rekeyChild(ini, isa, old)
		if n := wire.FindNotify(innerOf(t, rsa, req), wire.REKEY_SA); n == nil || len(n.SPI) != 4 {
			t.Fatal("no REKEY_SA")
		}
		rout := p.deliver(res, req)
		if len(ops(rout, OpInstall)) != 1 || len(ops(rout, OpDelete)) != 0 || len(rsa.children) != 2 {
			t.Fatal("responder must install the new pair and keep the old")
		}
		// The responder must not send on the new pair before the
		// initiator has it (§2.8): its outbound SA waits.
		nwIn := ops(rout, OpInstall)[0].InSPI
		if !ops(rout, OpInstall)[0].DeferOut {
			t.Fatal("responder's new outbound SA not deferred")
		}
		iout := p.deliver(ini, p.one(rout))
		if len(ops(iout, OpInstall)) != 1 || len(ops(iout, OpDelete)) != 0 || len(events(iout, EventChildRekeyed)) != 1 {
			t.Fatalf("initiator: %+v", iout.Events)
		}
		if ops(iout, OpInstall)[0].DeferOut {
			t.Fatal("the rekey's initiator must send on the new pair at once")
		}
		// Its Delete of the old pair goes out with the old outbound SA
		// removed: the responder may drop the pair as soon as it reads
		// the request.
		if d := ops(iout, OpDeactivate); len(d) != 1 || d[0].InSPI != old {
			t.Fatalf("initiator: deactivations %+v, want the old pair's", d)
		}
		del := p.one(iout)
		d, _ := wire.Find(innerOf(t, rsa, del), wire.PayloadD).(*wire.Delete)
		if d == nil || len(d.SPIs) != 1 || d.SPIs[0] != old {
			t.Fatalf("delete %+v", d)
		}
		rout = p.deliver(res, del)
		if len(ops(rout, OpDelete)) != 1 {
			t.Fatal("responder kept the old pair")
		}
		// Activation of the new outbound SA comes before the old pair's
		// delete, so the responder always has one to send with.
		if o := rout.Ops; len(o) != 2 || o[0].Kind != OpActivate || o[0].InSPI != nwIn || o[1].Kind != OpDelete || o[1].InSPI == nwIn {
			t.Fatalf("responder ops on the old pair's delete: %+v", o)
		}
		iout = p.deliver(ini, p.one(rout))
		if e := events(iout, EventChildDown); len(e) != 1 || e[0].InSPI != old || e[0].Reason != "rekeyed" {
			t.Fatalf("initiator: %+v", iout.Events)
		}
		paired(t, asa, bsa)
	}
}

// rekeyCollision drives both ends rekeying the same pair at once (RFC 7296
// §2.8.1) and returns which side's new pair survived.
//
//	A: SK{N(REKEY_SA, a1), SA, Ni_A, ...}  -->   <--  B: SK{N(REKEY_SA, b1), SA, Ni_B, ...}
//	A answers B:  SK{SA, Nr_A, ...}        -->   <--  B answers A: SK{SA, Nr_B, ...}
//	(each side now holds old + two new pairs; the exchange with the lowest
//	 of the four nonces made the redundant pair)
//	winner: SK{D(ESP, old)}                -->
//	loser:  SK{D(ESP, its redundant new)}  -->   each answered with its pair
func rekeyCollision(t *testing.T, seedA, seedB uint64, aFirst bool) (aWon bool) {
	p, asa, bsa := establishOne(t, seedA, seedB)
	defer checkDataPlane(t, p)
	a1, b1 := asa.children[0].InSPI, bsa.children[0].InSPI
	reqA := p.rekeyChild(p.a, asa, a1)
	reqB := p.rekeyChild(p.b, bsa, b1)
	respA := p.exchange(p.a, reqB) // A answers B's rekey
	respB := p.exchange(p.b, reqA)
	if len(asa.children) != 2 || len(bsa.children) != 2 {
		t.Fatal("responders must install the peer's new pair")
	}
	var delA, delB Datagram
	if aFirst {
		delA, delB = p.exchange(p.a, respB), p.exchange(p.b, respA)
	} else {
		delB, delA = p.exchange(p.b, respA), p.exchange(p.a, respB)
	}
	if len(asa.children) != 3 || len(bsa.children) != 3 {
		t.Fatalf("both new pairs and the old one until the deletes: A %d B %d", len(asa.children), len(bsa.children))
	}
	dA, _ := wire.Find(innerOf(t, bsa, delA), wire.PayloadD).(*wire.Delete)
	if dA == nil || len(dA.SPIs) != 1 {
		t.Fatal("A must delete one pair")
	}
	aWon = dA.SPIs[0] == a1
	p.deliver(p.a, p.exchange(p.b, delA))
	p.deliver(p.b, p.exchange(p.a, delB))
	paired(t, asa, bsa)
	if asa.children[0].InSPI == a1 || bsa.children[0].InSPI == b1 {
		t.Fatal("the old pair survived")
	}
	if asa.tm.inFlight() || bsa.tm.inFlight() || len(asa.tm.queued) != 0 || len(bsa.tm.queued) != 0 {
		t.Fatal("work left over")
	}
	return aWon
}

// TestChildRekeyCollision: both tie-break outcomes, with either side's
// response arriving first; exactly one new pair survives each time.
func TestChildRekeyCollision(t *testing.T) {
	seen := map[[2]bool]bool{}
	for seed := uint64(1); seed < 40 && len(seen) < 4; seed++ {
		for _, aFirst := range []bool{true, false} {
			seen[[2]bool{rekeyCollision(t, seed, seed+100, aFirst), aFirst}] = true
		}
	}
	if len(seen) != 4 {
		t.Fatalf("outcomes seen %v, want A and B winning with either order", seen)
	}
}

// dpModel replays one side's data-plane operations the way the node applies
// them: inbound SAs, and outbound SAs in activation order (DeferOut pairs
// wait for OpActivate); the newest active outbound SA is the one sent with.
type dpModel struct {
	in     map[uint32]bool
	out    []uint32 // active outbound SPIs, oldest first
	parked map[uint32]uint32
}

func newDPModel() *dpModel { return &dpModel{in: map[uint32]bool{}, parked: map[uint32]uint32{}} }

func (m *dpModel) apply(op ChildOp) {
	switch op.Kind {
	case OpInstall:
		m.in[op.InSPI] = true
		if op.DeferOut {
			m.parked[op.InSPI] = op.OutSPI
		} else {
			m.out = append(m.out, op.OutSPI)
		}
	case OpActivate:
		if spi, ok := m.parked[op.InSPI]; ok {
			delete(m.parked, op.InSPI)
			m.out = append(m.out, spi)
		}
	case OpDeactivate, OpDelete:
		if op.Kind == OpDelete {
			delete(m.in, op.InSPI)
		}
		delete(m.parked, op.InSPI)
		if i := slices.Index(m.out, op.OutSPI); i >= 0 {
			m.out = slices.Delete(m.out, i, i+1)
		}
	}
}

func (m *dpModel) current() (uint32, bool) {
	if len(m.out) == 0 {
		return 0, false
	}
	return m.out[len(m.out)-1], true
}

// checkDataPlane replays both sides' operations in the order the test
// delivered them and checks, at the end, that each side sends on an SA the
// other receives on, and that nothing is left parked or activated twice.
func checkDataPlane(t *testing.T, p *pair) {
	t.Helper()
	ma, mb := newDPModel(), newDPModel()
	for _, op := range p.a.log {
		ma.apply(op)
	}
	for _, op := range p.b.log {
		mb.apply(op)
	}
	for _, x := range []struct {
		name     string
		from, to *dpModel
	}{{"A", ma, mb}, {"B", mb, ma}} {
		spi, ok := x.from.current()
		if !ok || !x.to.in[spi] {
			t.Errorf("%s sends on %08x, which the peer does not receive on (peer inbound %v)", x.name, spi, x.to.in)
		}
		if len(x.from.parked) != 0 || len(x.from.out) != 1 {
			t.Errorf("%s: outbound SAs active %x, still parked %v; want one active", x.name, x.from.out, x.from.parked)
		}
	}
	// Only the surviving pair may be activated: activating the collision's
	// redundant pair would send on it until its delete.
	for _, x := range []struct {
		name string
		log  []ChildOp
		m    *dpModel
	}{{"A", p.a.log, ma}, {"B", p.b.log, mb}} {
		for _, op := range x.log {
			if op.Kind != OpActivate {
				continue
			}
			if !x.m.in[op.InSPI] {
				t.Errorf("%s activated pair %08x, which did not survive", x.name, op.InSPI)
			}
		}
	}
}
