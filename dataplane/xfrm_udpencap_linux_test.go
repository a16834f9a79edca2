//go:build linux

package dataplane

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// UDP_ENCAP on the NAT-T bind's real sockets: off as opened (the userspace
// data plane must read ESP itself), ESPINUDP read back with getsockopt on
// both sockets after EnableKernelDecap. Then, over loopback, the kernel
// takes ESP-in-UDP off the socket while IKE behind the non-ESP marker
// still reaches the IKE callback (RFC 3948 §2.2); the same ESP datagrams
// sent to a bind without UDP_ENCAP (the userspace path) reach it. (On this
// machine's kernel, without esp4, nstat in a scratch namespace showed the
// kernel answering each decapsulated ESP packet with an ICMP destination
// unreachable and XfrmInNoStates staying 0: it hands the packet to an ESP
// protocol handler that is not there. With esp4 the XFRM state lookup
// would take it.)
func TestUDPBindKernelDecap(t *testing.T) {
	if os.Getenv("PETREL_UDP") == "std" {
		t.Skip("PETREL_UDP=std: StdNetBind does not expose its sockets")
	}
	var mu sync.Mutex
	var ike []string
	gotIKE := make(chan struct{}, 1)
	rx, err := NewUDPBind(0, func(msg []byte, from netip.AddrPort) {
		mu.Lock()
		ike = append(ike, string(msg))
		mu.Unlock()
		select {
		case gotIKE <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Skipf("no UDP on loopback: %v", err)
	}
	defer rx.Close()
	types, err := rx.EncapTypes()
	must(t, err)
	for i, v := range types {
		if v != 0 {
			t.Fatalf("socket %d has UDP_ENCAP %d before EnableKernelDecap", i, v)
		}
	}
	must(t, rx.EnableKernelDecap())
	types, err = rx.EncapTypes()
	must(t, err)
	t.Logf("UDP_ENCAP per socket after EnableKernelDecap: %v", types)
	if len(types) == 0 {
		t.Fatal("no sockets")
	}
	for i, v := range types {
		if v != unix.UDP_ENCAP_ESPINUDP {
			t.Fatalf("socket %d: UDP_ENCAP %d, want %d", i, v, unix.UDP_ENCAP_ESPINUDP)
		}
	}

	if mt, ok := rx.t.(*mmsgTransport); ok {
		for i, s := range mt.socks {
			var gro int
			s.rc.Control(func(fd uintptr) { gro, _ = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO) })
			if gro != 0 {
				t.Fatalf("socket %d: UDP_GRO still on with UDP_ENCAP", i)
			}
		}
	}
	plain, err := NewUDPBind(0, nil) // the userspace path: no UDP_ENCAP
	must(t, err)
	defer plain.Close()
	tx, err := NewUDPBind(0, nil)
	must(t, err)
	defer tx.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.Port())
	toPlain := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), plain.Port())
	const espCount = 20
	for i := range espCount {
		p := make([]byte, 100)
		binary.BigEndian.PutUint32(p, 0x7e570000+uint32(i)) // SPI: no state has it
		binary.BigEndian.PutUint32(p[4:], 1)
		must(t, tx.Send([][]byte{p}, to))
		must(t, tx.Send([][]byte{p}, toPlain))
	}
	must(t, tx.SendKeepalive(to))
	must(t, tx.SendIKE([]byte("IKE_AUTH"), to))

	fn := rx.ReceiveFuncs()[0]
	bufs := [][]byte{make([]byte, 2048)}
	sizes, eps := make([]int, 1), make([]netip.AddrPort, 1)
	esp := make(chan int, 1)
	go func() {
		n := 0
		for {
			k, err := fn(bufs, sizes, eps)
			if err != nil {
				esp <- n
				return
			}
			n += k
		}
	}()
	select {
	case <-gotIKE:
	case <-time.After(5 * time.Second):
		t.Error("IKE did not reach the callback on a UDP_ENCAP socket")
	}
	rx.Close()
	if n := <-esp; n != 0 {
		t.Fatalf("%d ESP datagrams reached userspace on a UDP_ENCAP socket", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ike) != 1 || ike[0] != "IKE_AUTH" {
		t.Fatalf("IKE callback got %q", ike)
	}
	// Control: the socket without UDP_ENCAP got every ESP datagram.
	pfn := plain.ReceiveFuncs()[0]
	got := 0
	deadline := time.AfterFunc(5*time.Second, func() { plain.Close() })
	defer deadline.Stop()
	for got < espCount {
		k, err := pfn(bufs, sizes, eps)
		if err != nil {
			break
		}
		got += k
	}
	if got != espCount {
		t.Fatalf("the bind without UDP_ENCAP got %d of %d ESP datagrams", got, espCount)
	}
}

// The transport without reachable sockets says so instead of pretending.
func TestUDPBindKernelDecapStd(t *testing.T) {
	st, err := newStdTransport(0)
	if err != nil {
		t.Skipf("no UDP: %v", err)
	}
	b := &UDPBind{t: st}
	defer b.Close()
	if err := b.EnableKernelDecap(); !errors.Is(err, ErrNotSupport) {
		t.Fatalf("std transport: %v", err)
	}
	if _, err := b.EncapTypes(); !errors.Is(err, ErrNotSupport) {
		t.Fatalf("std transport: %v", err)
	}
}
