package ike

import (
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// Test helpers: two endpoints, a fake clock, deterministic randomness, and
// datagrams passed by hand.

var (
	addrA = netip.MustParseAddrPort("192.0.2.1:500")
	addrB = netip.MustParseAddrPort("198.51.100.2:500")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

func pskConn(name string, local, remote netip.AddrPort, psk string) *Connection {
	p := &PSK{Secret: []byte(psk)}
	return &Connection{
		Name: name, Local: local, Remote: remote, LocalAuth: p, RemoteAuth: p,
		Children: []ChildConfig{{Name: name + "-child",
			LocalTS:  []TrafficSelector{TSFromPrefix(netip.MustParsePrefix("10.1.0.0/16"))},
			RemoteTS: []TrafficSelector{TSFromPrefix(netip.MustParsePrefix("10.2.0.0/16"))},
		}},
	}
}

// mirror returns the peer's view of a connection (swapped addresses and TS).
func mirror(c *Connection) *Connection {
	m := *c
	m.Local, m.Remote = c.Remote, c.Local
	m.LocalID, m.RemoteID = c.RemoteID, c.LocalID
	m.Children = nil
	for _, ch := range c.Children {
		ch.LocalTS, ch.RemoteTS = ch.RemoteTS, ch.LocalTS
		m.Children = append(m.Children, ch)
	}
	return &m
}

type node struct {
	ep   *Endpoint
	addr netip.AddrPort
	out  Output
	// log collects every data-plane operation delivered so far when
	// record is set, for tests that model the data plane (dpModel).
	log    []ChildOp
	record bool
}

type pair struct {
	t    *testing.T
	now  time.Time
	a, b *node
}

func newEndpoint(t testing.TB, seed uint64, cfg EndpointConfig) *Endpoint {
	t.Helper()
	cfg.Rand = seeded(seed)
	if os.Getenv("IKE_DEBUG") != "" {
		cfg.Logger = slog.Default()
	}
	ep, err := NewEndpoint(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// newPair builds initiator A and responder B. Responder cookies are off
// unless the test turns them on.
func newPair(t *testing.T, aConns, bConns []*Connection) *pair {
	ca := DefaultEndpointConfig()
	ca.Connections = aConns
	cb := DefaultEndpointConfig()
	cb.Connections = bConns
	cb.CookieThreshold = -1
	return &pair{t: t, now: t0,
		a: &node{ep: newEndpoint(t, 1, ca), addr: addrA},
		b: &node{ep: newEndpoint(t, 2, cb), addr: addrB}}
}

// initiate makes A start conn and returns the single datagram it sends.
func (p *pair) initiate(conn string) (uint64, Datagram) {
	p.t.Helper()
	p.a.out.Reset()
	spi, err := p.a.ep.Initiate(p.now, conn, &p.a.out)
	if err != nil {
		p.t.Fatal(err)
	}
	return spi, p.one(&p.a.out)
}

func (p *pair) one(o *Output) Datagram {
	p.t.Helper()
	if len(o.Datagrams) != 1 {
		p.t.Fatalf("want 1 datagram, got %d", len(o.Datagrams))
	}
	return o.Datagrams[0]
}

// deliver hands d to n and returns n's output (valid until the next call).
func (p *pair) deliver(n *node, d Datagram) *Output {
	p.t.Helper()
	n.out.Reset()
	n.ep.HandleDatagram(p.now, d.Src, d.Dst, d.Data, &n.out)
	if n.record {
		n.log = append(n.log, n.out.Ops...)
	}
	return &n.out
}

// exchange delivers d to n and requires exactly one datagram back.
func (p *pair) exchange(n *node, d Datagram) Datagram {
	p.t.Helper()
	return p.one(p.deliver(n, d))
}

// payloadTypes lists the outer and (if decryptable by ep's SA) inner
// payloads of a datagram, for asserting on what crossed the wire.
func outerPayloads(t *testing.T, d Datagram) (*wire.Message, []wire.Payload) {
	t.Helper()
	m, err := wire.Parse(d.Data)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m, m.Payloads
}

func hasNotify(ps []wire.Payload, n wire.NotifyType) bool { return wire.FindNotify(ps, n) != nil }

func events(o *Output, k EventKind) []Event {
	var out []Event
	for _, e := range o.Events {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func ops(o *Output, k ChildOpKind) []ChildOp {
	var out []ChildOp
	for _, e := range o.Ops {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// innerOf decrypts a protected datagram with the SA that sent or will
// receive it, to assert on inner payloads.
func innerOf(t *testing.T, sa *SA, d Datagram) []wire.Payload {
	t.Helper()
	m, err := wire.Parse(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(sa.prot); err != nil {
		t.Fatalf("open: %v", err)
	}
	return m.Inner
}
