package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// bigChild makes IKE_AUTH large: many traffic selectors.
func bigChild(c *Connection) {
	for i := 0; i < 40; i++ {
		c.Children[0].LocalTS = append(c.Children[0].LocalTS, pfx("10.1."+itoa(i)+".0/24"))
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestFragmentation: both sides support RFC 7383 and IKE_AUTH exceeds the
// fragment size, so it crosses as SKF fragments, delivered out of order and
// with a duplicate; the response is fragmented too.
//
//	A: HDR, SKF{1/n}, ..., SKF{n/n}  -->   (delivered n..1, fragment 2 twice)
//	                                 <--   HDR, SKF{1/m}, ..., SKF{m/m}
//
// A lost response fragment makes A retransmit all of its fragments; B
// answers the retransmission's first fragment with all of the cached
// response fragments.
func TestFragmentation(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.FragmentSize = 400
	bigChild(ca)
	cb := mirror(ca)
	cb.FragmentSize = 300
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	p.a.out.Reset()
	p.a.ep.HandleDatagram(p.now, resp.Src, resp.Dst, resp.Data, &p.a.out)
	frags := append([]Datagram(nil), p.a.out.Datagrams...)
	if len(frags) < 3 {
		t.Fatalf("IKE_AUTH request in %d datagrams, want fragments", len(frags))
	}
	for _, f := range frags {
		m, _ := outerPayloads(t, f)
		if m.Fragment() == nil || len(f.Data) > 400 {
			t.Fatalf("not an SKF fragment within 400 octets: %d octets", len(f.Data))
		}
	}
	var bout Output
	for i := len(frags) - 1; i >= 0; i-- {
		bout.Reset()
		p.b.ep.HandleDatagram(p.now, frags[i].Src, frags[i].Dst, frags[i].Data, &bout)
		if i == 1 {
			p.b.ep.HandleDatagram(p.now, frags[i].Src, frags[i].Dst, frags[i].Data, &bout)
		}
		if i > 0 && len(bout.Datagrams) != 0 {
			t.Fatalf("responder answered before the last fragment")
		}
	}
	if len(events(&bout, EventIKEUp)) != 1 || len(bout.Datagrams) < 2 {
		t.Fatalf("responder: %d datagrams, events %+v", len(bout.Datagrams), bout.Events)
	}
	respFrags := append([]Datagram(nil), bout.Datagrams...)
	// Lose the last response fragment; A retransmits everything after 4 s.
	for _, f := range respFrags[:len(respFrags)-1] {
		if out := p.deliver(p.a, f); len(out.Events) != 0 {
			t.Fatal("initiator finished with a fragment missing")
		}
	}
	p.now = p.now.Add(4 * time.Second)
	p.a.out.Reset()
	p.a.ep.Tick(p.now, &p.a.out)
	if len(p.a.out.Datagrams) != len(frags) {
		t.Fatalf("retransmitted %d of %d fragments", len(p.a.out.Datagrams), len(frags))
	}
	re := append([]Datagram(nil), p.a.out.Datagrams...)
	var answers []Datagram
	for _, f := range re {
		answers = append(answers, p.deliver(p.b, f).Datagrams...)
	}
	if len(answers) != len(respFrags) {
		t.Fatalf("retransmission answered with %d datagrams, want the %d cached fragments once", len(answers), len(respFrags))
	}
	out := p.deliver(p.a, answers[len(answers)-1])
	if len(events(out, EventIKEUp)) != 1 || len(ops(out, OpInstall)) != 1 {
		t.Fatalf("initiator: %+v", out.Events)
	}
	if p.a.ep.Stats().Reassembled != 1 || p.b.ep.Stats().Reassembled != 1 {
		t.Errorf("reassembled: A %d B %d", p.a.ep.Stats().Reassembled, p.b.ep.Stats().Reassembled)
	}
}

// TestNoFragmentationWithoutSupport: B does not advertise fragmentation, so
// A sends IKE_AUTH whole however large.
func TestNoFragmentationWithoutSupport(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.FragmentSize = 400
	bigChild(ca)
	cb := mirror(ca)
	cb.NoFragmentation = true
	p := newPair(t, []*Connection{ca}, []*Connection{cb})
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	if hasNotify(outerPayloadsOf(t, resp), wire.IKEV2_FRAGMENTATION_SUPPORTED) {
		t.Fatal("B advertised fragmentation")
	}
	auth := p.exchange(p.a, resp)
	if m, _ := outerPayloads(t, auth); m.Encrypted() == nil || len(auth.Data) <= 400 {
		t.Fatalf("want one large SK message, got %d octets", len(auth.Data))
	}
}
