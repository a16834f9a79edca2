package udp

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/ike"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		kind int
		ike  int
	}{
		{[]byte{0xff}, kindKeepalive, 0},
		{[]byte{0, 0, 0, 0, 1, 2, 3}, kindIKE, 3},
		{[]byte{0, 0, 1, 0, 0, 0, 0, 1, 9, 9}, kindESP, 0},
		{[]byte{1, 2}, kindJunk, 0},
		{nil, kindJunk, 0},
	} {
		k, m := classify(tc.b)
		if k != tc.kind || len(m) != tc.ike {
			t.Errorf("classify(%x) = %d, %d octets", tc.b, k, len(m))
		}
	}
}

// counting counts NAT-keepalives received on a socket.
type counting struct {
	PacketConn
	keepalives *atomic.Int64
}

func (c counting) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, a, err := c.PacketConn.ReadFromUDPAddrPort(b)
	if err == nil && n == 1 && b[0] == 0xff {
		c.keepalives.Add(1)
	}
	return n, a, err
}

type pairOpts struct {
	addr       netip.Addr // where B listens and A sends to
	aBind      netip.Addr // where A binds
	keepalive  time.Duration
	esp        func(src, dst netip.AddrPort, b []byte)
	keepalives *atomic.Int64
}

// upPair starts two servers and establishes one SA; it returns A, B, the
// A-side events channel.
func upPair(t *testing.T, o pairOpts) (*Server, *Server, chan ike.Event) {
	t.Helper()
	psk := &ike.PSK{Secret: []byte("k")}
	evs := make(chan ike.Event, 16)
	bcfg := ike.DefaultEndpointConfig()
	bcfg.Connections = []*ike.Connection{{Name: "in", LocalAuth: psk, RemoteAuth: psk,
		Children: []ike.ChildConfig{{Name: "c"}}}}
	b, err := New(Config{Endpoint: bcfg, IKE: []netip.AddrPort{netip.AddrPortFrom(o.addr, 0)},
		NATT: []netip.AddrPort{netip.AddrPortFrom(o.addr, 0)}, ESP: o.esp,
		Wrap: func(c PacketConn) PacketConn {
			if o.keepalives != nil {
				return counting{c, o.keepalives}
			}
			return c
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	bIKE, bNATT := b.Addrs()
	acfg := ike.DefaultEndpointConfig()
	conn := &ike.Connection{Name: "out", Remote: bIKE[0], RemoteNATTPort: bNATT[0].Port(), LocalAuth: psk, RemoteAuth: psk,
		Children: []ike.ChildConfig{{Name: "c"}}}
	acfg.Connections = []*ike.Connection{conn}
	a, err := New(Config{Endpoint: acfg, IKE: []netip.AddrPort{netip.AddrPortFrom(o.aBind, 0)},
		NATT: []netip.AddrPort{netip.AddrPortFrom(o.aBind, 0)}, Keepalive: o.keepalive,
		Output: func(_ []ike.ChildOp, e []ike.Event) {
			for _, x := range e {
				evs <- x
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	aIKE, _ := a.Addrs()
	conn.Local = netip.AddrPortFrom(o.addr, aIKE[0].Port())
	if _, err := a.Initiate("out"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-evs:
			if e.Kind == ike.EventChildUp {
				return a, b, evs
			}
			if e.Kind == ike.EventIKEDown || e.Kind == ike.EventChildFailed {
				t.Fatalf("failed: %+v", e)
			}
		case <-deadline:
			t.Fatal("no Child SA within 10 s")
		}
	}
}

// TestIPv6: IKE over IPv6 loopback.
func TestIPv6(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	c.Close()
	lo := netip.IPv6Loopback()
	upPair(t, pairOpts{addr: lo, aBind: lo})
}

// TestNATTKeepaliveAndESPDemux: A listens on the wildcard address, so the
// NAT_DETECTION_DESTINATION_IP hash B computes for 127.0.0.1 does not match
// the address A sees itself at: A believes it is behind a NAT, moves to its
// NAT-T socket and sends keepalives (RFC 3948 §4), which B's NAT-T socket
// receives and drops. An ESP-in-UDP datagram to B's NAT-T port goes to the
// ESP callback, not to IKE.
func TestNATTKeepaliveAndESPDemux(t *testing.T) {
	var keepalives atomic.Int64
	esp := make(chan []byte, 1)
	lo := netip.MustParseAddr("127.0.0.1")
	_, b, _ := upPair(t, pairOpts{addr: lo, aBind: netip.IPv4Unspecified(), keepalive: 20 * time.Millisecond,
		keepalives: &keepalives, esp: func(_, _ netip.AddrPort, p []byte) { esp <- append([]byte(nil), p...) }})
	deadline := time.Now().Add(5 * time.Second)
	for keepalives.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if keepalives.Load() < 2 {
		t.Fatalf("keepalives received: %d", keepalives.Load())
	}
	_, natt := b.Addrs()
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(natt[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pkt := []byte{0, 0, 0x12, 0x34, 0, 0, 0, 1, 0xaa, 0xbb}
	c.Write(pkt)
	select {
	case got := <-esp:
		if string(got) != string(pkt) {
			t.Fatalf("ESP callback got %x", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ESP datagram not handed to the data plane")
	}
}
