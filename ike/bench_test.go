package ike

import (
	"runtime"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// benchConn: PSK, X25519, AES-GCM-256 for IKE and ESP.
func benchConn() *Connection {
	c := pskConn("gw", addrA, addrB, "benchmark-psk")
	c.Proposals = [][]wire.Transform{{gcm256, prf256, x25519}}
	c.Children[0].Proposals = [][]wire.Transform{{gcm256, tr(wire.TransformESN, 0, 0)}}
	return c
}

// BenchmarkHandshake measures IKE SA + first Child SA setups in process:
// four messages through both endpoints, both sides' CPU, per setup.
func BenchmarkHandshake(b *testing.B) {
	ca := benchConn()
	t := &testing.T{}
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	var scratch Output
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		_, req := p.initiate("gw")
		resp := p.exchange(p.b, req)
		auth := p.exchange(p.a, resp)
		authResp := p.exchange(p.b, auth)
		out := p.deliver(p.a, authResp)
		if len(out.Ops) != 1 {
			b.Fatal("no Child SA")
		}
		scratch.Reset()
		p.a.ep.Close(&scratch)
		p.b.ep.Close(&scratch)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "setups/s")
}

// TestMemoryPerSA establishes 10,000 IKE SAs with a Child SA each between
// two endpoints and reports the heap held per established IKE SA + Child
// SA, per side. Target: at most 4 KiB (strongSwan: about 19 KiB).
func TestMemoryPerSA(t *testing.T) {
	if testing.Short() {
		t.Skip("establishes 10,000 SAs")
	}
	const n = 10000
	ca := benchConn()
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	for i := 0; i < n; i++ {
		_, req := p.initiate("gw")
		resp := p.exchange(p.b, req)
		auth := p.exchange(p.a, resp)
		authResp := p.exchange(p.b, auth)
		if out := p.deliver(p.a, authResp); len(out.Ops) != 1 {
			t.Fatal("no Child SA")
		}
	}
	p.a.out.Reset()
	p.b.out.Reset()
	after := heap()
	if p.a.ep.Len() != n || p.b.ep.Len() != n {
		t.Fatalf("SAs: %d / %d", p.a.ep.Len(), p.b.ep.Len())
	}
	perSide := float64(after-before) / float64(2*n)
	t.Logf("heap per established IKE SA + Child SA, per side: %.0f bytes (%.2f KiB) at N=%d", perSide, perSide/1024, n)
	if perSide > 4096 {
		t.Errorf("%.0f bytes per SA exceeds the 4 KiB target", perSide)
	}
	runtime.KeepAlive(p)
}
