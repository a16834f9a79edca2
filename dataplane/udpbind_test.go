package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// TestUDPBindLoopback sends ESP-like datagrams (runs of equal sizes, so
// UDP GSO and GRO coalesce them where the kernel can), an IKE message with
// the non-ESP marker and a NAT-keepalive between two UDPBinds on loopback,
// and checks that every ESP datagram arrives whole and in order, the IKE
// message reaches the callback without its marker, and the keepalive is
// swallowed (RFC 3948 §2.2, §2.3).
func TestUDPBindLoopback(t *testing.T) {
	var mu sync.Mutex
	var ike [][]byte
	rx, err := NewUDPBind(0, func(msg []byte, from netip.AddrPort) {
		mu.Lock()
		ike = append(ike, append([]byte(nil), msg...))
		mu.Unlock()
	})
	if err != nil {
		t.Skipf("no UDP on loopback: %v", err)
	}
	defer rx.Close()
	tx, err := NewUDPBind(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())

	var sent [][]byte
	mk := func(seq, size int) []byte {
		p := make([]byte, size)
		binary.BigEndian.PutUint32(p, 0x1000+uint32(seq%7)) // SPI, never 0
		binary.BigEndian.PutUint32(p[4:], uint32(seq))
		for i := 8; i < size; i++ {
			p[i] = byte(seq + i)
		}
		return p
	}
	seq := 0
	for round := range 6 {
		var batch [][]byte
		for k := range 100 {
			size := 1400
			if k%37 == 36 {
				size = 200 + round // ends a GSO run
			}
			batch = append(batch, mk(seq, size))
			seq++
		}
		must(t, tx.Send(batch, to))
		sent = append(sent, batch...)
	}
	must(t, tx.SendIKE([]byte("IKE_SA_INIT"), to))
	must(t, tx.SendKeepalive(to))
	sent = append(sent, mk(seq, 64))
	must(t, tx.Send(sent[len(sent)-1:], to))

	fn := rx.ReceiveFuncs()[0]
	bufs := make([][]byte, maxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes, eps := make([]int, maxBatch), make([]netip.AddrPort, maxBatch)
	var got [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < len(sent) {
			n, err := fn(bufs, sizes, eps)
			if err != nil {
				return
			}
			for i := range n {
				if eps[i].Port() != tx.Port() {
					t.Errorf("source %v, want port %d", eps[i], tx.Port())
				}
				got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		rx.Close()
		<-done
	}
	if len(got) != len(sent) {
		t.Fatalf("received %d of %d datagrams", len(got), len(sent))
	}
	for i := range sent {
		if !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("datagram %d differs: %d octets, want %d", i, len(got[i]), len(sent[i]))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ike) != 1 || string(ike[0]) != "IKE_SA_INIT" {
		t.Fatalf("IKE callback got %q", ike)
	}
}

// A bind on a listen address sends from it: IKE moved to the NAT-T port
// and ESP in UDP must leave from the address IKE_SA_INIT used (RFC 7296
// §2.23), not from one the kernel picks by route. 127.0.0.2 is local but
// never the route's choice toward 127.0.0.1, so a wildcard bind would send
// from 127.0.0.1.
func TestUDPBindOnListenAddress(t *testing.T) {
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, tc := range []struct {
		listen []netip.Addr
		want   netip.Addr
	}{
		{[]netip.Addr{netip.MustParseAddr("127.0.0.2")}, netip.MustParseAddr("127.0.0.2")},
		{nil, netip.MustParseAddr("127.0.0.1")},
		{[]netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}, netip.MustParseAddr("127.0.0.1")},
	} {
		b, err := NewUDPBindOn(tc.listen, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SendIKE([]byte("ike"), to); err != nil {
			b.Close()
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		peer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, from, err := peer.ReadFromUDPAddrPort(buf)
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if from.Addr() != tc.want || from.Port() != b.Port() || string(buf[4:n]) != "ike" {
			t.Errorf("listen %v: datagram from %v (%q), want %v port %d", tc.listen, from, buf[:n], tc.want, b.Port())
		}
	}
	// A family missing from the listen list gets no socket.
	b, err := NewUDPBindOn([]netip.Addr{netip.MustParseAddr("127.0.0.2")}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if os.Getenv("PETREL_UDP") != "std" && len(b.ReceiveFuncs()) != 1 {
		t.Errorf("IPv4-only listen: %d sockets", len(b.ReceiveFuncs()))
	}
}
