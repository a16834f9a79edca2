package node

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// A route-based child's SAs carry its device's if_id and no policies, and
// the child's next SAs (here re-established; rekeyed ones the same way)
// keep it. The device is a netstack attached by if_id, so traffic only
// flows if the data plane got the if_id on the SAs too.
func TestRouteChildSAsKeepIfID(t *testing.T) {
	a, b, pa, pb := startPair(t, LoopbackOptions{})
	const ifID = 42
	if err := a.do(func(time.Time) {
		a.routes["b/net"] = &routeDev{name: "test-vti", ifID: ifID, close: func() error { return nil }}
	}); err != nil {
		t.Fatal(err)
	}
	nsA, err := a.DataPlane().AttachNetstack([]netip.Addr{netip.MustParseAddr(pa.Addr)}, 1400, ifID)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(pb.Addr)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := nsB.ListenTCP(&net.TCPAddr{IP: net.ParseIP(pb.Addr), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for range 4 { // echo, bounded
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 64)
			k, _ := c.Read(buf)
			c.Write(buf[:k])
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var spis []uint32
	for round := range 2 {
		if _, err := a.Up(ctx, "b"); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var n, pols int
		_ = a.do(func(time.Time) {
			for spi, c := range a.children {
				n++
				if c.ifID != ifID || len(c.policies) != 0 {
					t.Errorf("round %d: child %s if_id %d policies %d", round, hex32(spi), c.ifID, len(c.policies))
				}
				spis = append(spis, spi)
			}
			pols = len(a.policies)
			if got := a.routeIfName("b", "net"); got != "test-vti" {
				t.Errorf("routeIfName %q", got)
			}
		})
		if n != 1 || pols != 0 {
			t.Fatalf("round %d: %d children, %d policies on a", round, n, pols)
		}
		var bpols int
		_ = b.do(func(time.Time) { bpols = len(b.policies) })
		if bpols == 0 {
			t.Fatalf("round %d: policy-based b has no policies", round)
		}
		c, err := nsA.DialContext(ctx, "tcp", net.JoinHostPort(pb.Addr, "7"))
		if err != nil {
			t.Fatalf("round %d: dial through the if_id SA: %v", round, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("ping"))
		buf := make([]byte, 8)
		k, err := c.Read(buf)
		c.Close()
		if err != nil || string(buf[:k]) != "ping" {
			t.Fatalf("round %d: echo %q %v", round, buf[:k], err)
		}
		if round == 0 {
			if _, err := a.Down(ctx, "b"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(spis) != 2 || spis[0] == spis[1] {
		t.Fatalf("inbound SPIs %v: want two different SAs", spis)
	}
}
