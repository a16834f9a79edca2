package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// FuzzResponder feeds arbitrary datagrams to a responder that always wants
// cookies: nothing may panic and no state may be kept, since no datagram
// can carry a valid cookie it was never given.
func FuzzResponder(f *testing.F) {
	ca := pskConn("gw", addrA, addrB, "k")
	seedPair := func() *pair {
		t := &testing.T{}
		return newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	}
	p := seedPair()
	_, req := p.initiate("gw")
	f.Add(req.Data)
	resp := p.exchange(p.b, req)
	f.Add(resp.Data)
	auth := p.exchange(p.a, resp)
	f.Add(auth.Data)
	f.Add([]byte{})
	f.Add(make([]byte, wire.HeaderLen))

	cfg := DefaultEndpointConfig()
	cfg.Connections = []*Connection{mirror(ca)}
	cfg.CookieThreshold = 0
	b := newEndpoint(f, 7, cfg)
	var out Output
	f.Fuzz(func(t *testing.T, data []byte) {
		out.Reset()
		b.HandleDatagram(t0, addrA, addrB, data, &out)
		if b.Len() != 0 || b.HalfOpen() != 0 {
			t.Fatalf("state kept for unauthenticated input: %d SAs", b.Len())
		}
		for _, d := range out.Datagrams {
			if len(d.Data) > 200 {
				t.Fatalf("stateless answer of %d octets amplifies", len(d.Data))
			}
		}
	})
}

// FuzzResponderNoCookies: with cookies off, a well-formed IKE_SA_INIT may
// create a half-open SA, but never more than one per datagram, and the
// IKE_AUTH stage (fed to an SA in that state) must not panic.
func FuzzResponderNoCookies(f *testing.F) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(&testing.T{}, []*Connection{ca}, []*Connection{mirror(ca)})
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	f.Add(req.Data)
	f.Add(auth.Data)
	f.Fuzz(func(t *testing.T, data []byte) {
		var out Output
		before := p.b.ep.Len()
		p.b.ep.HandleDatagram(t0, addrA, addrB, data, &out)
		if p.b.ep.Len() > before+1 {
			t.Fatal("one datagram created several SAs")
		}
		// Expire whatever was created so the table stays small.
		p.b.ep.Tick(t0.Add(time.Hour), &out)
	})
}

// FuzzInitiator feeds arbitrary datagrams, addressed to its SPI, to an
// initiator waiting for its IKE_SA_INIT response and to one waiting for
// its IKE_AUTH response: no panic; at most one SA; and garbage that fails
// to authenticate never establishes it.
func FuzzInitiator(f *testing.F) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(&testing.T{}, []*Connection{ca}, []*Connection{mirror(ca)})
	_, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	authResp := p.exchange(p.b, auth)
	f.Add(resp.Data, false)
	f.Add(authResp.Data, true)
	f.Fuzz(func(t *testing.T, data []byte, stage2 bool) {
		q := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
		spi, req := q.initiate("gw")
		if stage2 {
			resp := q.exchange(q.b, req)
			q.exchange(q.a, resp)
		}
		// Put our SPI in so the message reaches the SA.
		if len(data) >= 8 {
			d := append([]byte(nil), data...)
			for i := 0; i < 8; i++ {
				d[i] = byte(spi >> (56 - 8*i))
			}
			data = d
		}
		var out Output
		q.a.ep.HandleDatagram(q.now, addrB, addrA, data, &out)
		if q.a.ep.Len() > 1 {
			t.Fatal("SA table grew")
		}
		if len(events(&out, EventIKEUp)) != 0 {
			t.Fatal("unauthenticated input established the SA")
		}
	})
}
