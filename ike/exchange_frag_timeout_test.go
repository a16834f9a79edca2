package ike

import (
	"testing"
	"time"
)

// TestFragmentReassemblyTimeout: a fragmented CREATE_CHILD_SA whose last
// fragment is lost. After 30 s B drops what it holds (RFC 7383 §2.6 leaves
// the bound to us); A's retransmission resends every fragment and B
// reassembles and answers.
//
//	A: SKF{1/n} ... SKF{n-1/n}  -->   (SKF{n/n} lost)
//	   30 s: B drops the partial message
//	A: SKF{1/n} ... SKF{n/n}    -->   (retransmission)
//	                            <--   SKF{...} response
func TestFragmentReassemblyTimeout(t *testing.T) {
	ca := twoChildConn(nil)
	ca.FragmentSize = 300
	ca.Retransmit = Retransmit{Timeout: 40 * time.Second, Tries: 2}
	for i := 0; i < 30; i++ {
		ca.Children[1].LocalTS = append(ca.Children[1].LocalTS, pfx("10.3."+itoa(i)+".0/24"))
	}
	cb := mirror(ca)
	cb.FragmentSize = 300
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	spi, aout, _ := p.establish("gw")
	frags := append([]Datagram(nil), aout.Datagrams...)
	if len(frags) < 3 {
		t.Fatalf("CREATE_CHILD_SA in %d datagrams", len(frags))
	}
	bsa := p.b.ep.SA(p.a.ep.SA(spi).spiR)
	for _, f := range frags[:len(frags)-1] {
		if o := p.deliver(p.b, f); len(o.Datagrams) != 0 {
			t.Fatal("answered an incomplete message")
		}
	}
	if bsa.tm.frag == nil {
		t.Fatal("B holds nothing")
	}
	d, ok := p.b.ep.NextDeadline()
	if !ok || d != p.now.Add(30*time.Second) {
		t.Fatalf("reassembly deadline %v", d)
	}
	p.now = d
	p.tick(p.b)
	if bsa.tm.frag != nil {
		t.Fatal("fragments kept past the timeout")
	}
	p.now = t0.Add(40 * time.Second)
	again := append([]Datagram(nil), p.tick(p.a).Datagrams...)
	if len(again) != len(frags) {
		t.Fatalf("retransmitted %d of %d fragments", len(again), len(frags))
	}
	var resp []Datagram
	for _, f := range again {
		resp = append(resp, p.deliver(p.b, f).Datagrams...)
	}
	if len(resp) == 0 || len(bsa.children) != 2 {
		t.Fatalf("B: %d datagrams, %d children", len(resp), len(bsa.children))
	}
}
