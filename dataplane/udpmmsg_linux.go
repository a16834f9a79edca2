//go:build linux

package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgBatch is the most datagrams one recvmmsg or sendmmsg moves, and the
// most segments one UDP GSO send carries (the kernel's limit is 64).
const (
	mmsgBatch    = maxBatch
	gsoMaxSegs   = 64
	gsoMaxLen    = 65000 // a GSO send is one UDP datagram before segmentation
	socketBuffer = 7 << 20
	groMsgs      = 8
	groBuf       = 65536
)

// mmsgSocket is one UDP socket driven with recvmmsg/sendmmsg, with UDP GSO
// (UDP_SEGMENT, Linux 4.18) when the kernel takes it. Unlike wireguard-go's
// StdNetBind it parses source addresses without allocating, so receiving
// costs no heap allocation per datagram. Receive is single-goroutine (one
// receive loop per socket); sends are serialized by a mutex.
type mmsgSocket struct {
	conn *net.UDPConn
	rc   syscall.RawConn
	v6   bool

	// receive side, owned by the receive loop
	rhdr  [mmsgBatch]unix.Mmsghdr
	riov  [mmsgBatch]unix.Iovec
	rname [mmsgBatch]unix.RawSockaddrInet6
	rn    int
	rerr  syscall.Errno
	rfn   func(fd uintptr) bool

	// UDP GRO (Linux 5.0): the kernel hands over runs of same-flow
	// datagrams (often a peer's whole GSO send, untouched) as one buffer
	// plus the segment size; receive cuts them apart again.
	gro  bool
	gbuf [groMsgs][]byte
	gctl [groMsgs][32]byte
	gn   int // messages read into gbuf
	gidx int // next message to deliver
	goff int // offset inside it
	gseg [groMsgs]int
	gsrc [groMsgs]netip.AddrPort

	// send side
	smu   sync.Mutex
	shdr  [mmsgBatch]unix.Mmsghdr
	siov  [mmsgBatch]unix.Iovec
	soob  [mmsgBatch][24]byte // one UDP_SEGMENT cmsg each (CmsgSpace(2) = 24)
	sname unix.RawSockaddrInet6
	scnt  int
	sdone int
	serr  syscall.Errno
	sfn   func(fd uintptr) bool
	gso   bool
}

func newMmsgSocket(network string, addr netip.Addr, port uint16) (*mmsgSocket, error) {
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, port)))
	if err != nil {
		return nil, err
	}
	// Deep socket buffers, as wireguard-go uses: at Gbit/s a receive
	// loop that is briefly off the CPU must not mean drops.
	c.SetReadBuffer(socketBuffer)
	c.SetWriteBuffer(socketBuffer)
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &mmsgSocket{conn: c, rc: rc, v6: network == "udp6", gso: true}
	s.rfn, s.sfn = s.recvRaw, s.sendRaw
	if err := rc.Control(func(fd uintptr) {
		s.gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	}); err != nil {
		s.gro = false
	}
	if s.gro {
		mem := make([]byte, groMsgs*groBuf)
		for i := range s.gbuf {
			s.gbuf[i] = mem[i*groBuf : (i+1)*groBuf]
		}
	}
	return s, nil
}

func (s *mmsgSocket) port() uint16 { return uint16(s.conn.LocalAddr().(*net.UDPAddr).Port) }

func (s *mmsgSocket) recvRaw(fd uintptr) bool {
	n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.rhdr[0])), uintptr(s.rn), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
		return false
	}
	s.rn, s.rerr = int(n), e
	return true
}

// receive is a ReceiveFunc: up to len(bufs) datagrams per system call.
func (s *mmsgSocket) receive(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if s.gro {
		return s.receiveGRO(bufs, sizes, eps)
	}
	n := min(len(bufs), mmsgBatch)
	for i := range n {
		s.riov[i].Base = &bufs[i][0]
		s.riov[i].SetLen(len(bufs[i]))
		h := &s.rhdr[i].Hdr
		*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.rname[i])), Namelen: unix.SizeofSockaddrInet6, Iov: &s.riov[i]}
		h.SetIovlen(1)
	}
	s.rn = n
	if err := s.rc.Read(s.rfn); err != nil {
		return 0, err
	}
	if s.rerr != 0 {
		return 0, fmt.Errorf("dataplane: recvmmsg: %w", s.rerr)
	}
	for i := range s.rn {
		sizes[i] = int(s.rhdr[i].Len)
		if s.rhdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
			sizes[i] = 0 // larger than a buffer: not ESP we can open
		}
		eps[i] = sockaddrAddrPort(&s.rname[i])
	}
	return s.rn, nil
}

// receiveGRO reads up to groMsgs coalesced messages into the socket's own
// 64 KiB buffers and copies their segments into bufs, carrying what does
// not fit over to the next call.
func (s *mmsgSocket) receiveGRO(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	if s.gidx >= s.gn {
		for i := range groMsgs {
			s.riov[i].Base = &s.gbuf[i][0]
			s.riov[i].SetLen(len(s.gbuf[i]))
			h := &s.rhdr[i].Hdr
			*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.rname[i])), Namelen: unix.SizeofSockaddrInet6,
				Iov: &s.riov[i], Control: &s.gctl[i][0]}
			h.SetIovlen(1)
			h.SetControllen(len(s.gctl[i]))
		}
		s.rn = groMsgs
		if err := s.rc.Read(s.rfn); err != nil {
			return 0, err
		}
		if s.rerr != 0 {
			return 0, fmt.Errorf("dataplane: recvmmsg: %w", s.rerr)
		}
		s.gn, s.gidx, s.goff = s.rn, 0, 0
		for i := range s.gn {
			s.gsrc[i] = sockaddrAddrPort(&s.rname[i])
			s.gseg[i] = groSize(s.gctl[i][:s.rhdr[i].Hdr.Controllen])
			if s.rhdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
				s.rhdr[i].Len = 0 // cannot happen with 64 KiB buffers; drop
			}
		}
	}
	n := 0
	for n < len(bufs) && s.gidx < s.gn {
		total := int(s.rhdr[s.gidx].Len)
		seg := s.gseg[s.gidx]
		if seg <= 0 {
			seg = total
		}
		if s.goff < total {
			end := min(s.goff+seg, total)
			sizes[n] = copy(bufs[n], s.gbuf[s.gidx][s.goff:end])
			eps[n] = s.gsrc[s.gidx]
			n++
			s.goff = end
		}
		if s.goff >= total {
			s.gidx++
			s.goff = 0
		}
	}
	return n, nil
}

// groSize finds the UDP_GRO control message and returns its segment size.
func groSize(ctl []byte) int {
	for len(ctl) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(cm.Len)
		if l < unix.SizeofCmsghdr || l > len(ctl) {
			return 0
		}
		if cm.Level == unix.SOL_UDP && cm.Type == unix.UDP_GRO && l >= unix.CmsgLen(2) {
			return int(binary.NativeEndian.Uint16(ctl[unix.CmsgLen(0):]))
		}
		ctl = ctl[min(len(ctl), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0
}

// sockaddrAddrPort reads a sockaddr_in or sockaddr_in6 without allocating.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}

func (s *mmsgSocket) sendRaw(fd uintptr) bool {
	for s.sdone < s.scnt {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.shdr[s.sdone])), uintptr(s.scnt-s.sdone), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EWOULDBLOCK {
			return false
		}
		if e != 0 {
			s.serr = e
			return true
		}
		s.sdone += int(n)
	}
	return true
}

// send transmits bufs to ep. Runs of equal-sized packets (the last of a
// run may be shorter) go as one GSO datagram each: the kernel cuts them
// back into the original packets, one segmentation instead of a trip
// through the stack per packet.
func (s *mmsgSocket) send(bufs [][]byte, ep netip.AddrPort) error {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.sname = unix.RawSockaddrInet6{}
	namelen := uint32(unix.SizeofSockaddrInet4)
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.sname.Port))[:], ep.Port())
	if s.v6 {
		s.sname.Family, s.sname.Addr, namelen = unix.AF_INET6, ep.Addr().As16(), unix.SizeofSockaddrInet6
	} else {
		if !ep.Addr().Unmap().Is4() {
			return fmt.Errorf("dataplane: IPv6 destination %v on an IPv4 socket", ep)
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.sname))
		sa4.Family, sa4.Addr = unix.AF_INET, ep.Addr().Unmap().As4()
	}
	for len(bufs) > 0 {
		s.scnt, s.sdone, s.serr = 0, 0, 0
		iov := 0
		for len(bufs) > 0 && s.scnt < mmsgBatch && iov < mmsgBatch {
			segs, total, size := 0, 0, len(bufs[0])
			for segs < len(bufs) && iov+segs < mmsgBatch {
				l := len(bufs[segs])
				if l == 0 || (segs > 0 && (!s.gso || segs == gsoMaxSegs || l > size || total+l > gsoMaxLen)) {
					break
				}
				s.siov[iov+segs].Base = &bufs[segs][0]
				s.siov[iov+segs].SetLen(l)
				segs++
				total += l
				if l < size {
					break // a shorter segment ends a GSO datagram
				}
			}
			if segs == 0 { // an empty packet: skip it
				bufs = bufs[1:]
				continue
			}
			h := &s.shdr[s.scnt].Hdr
			*h = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.sname)), Namelen: namelen, Iov: &s.siov[iov]}
			h.SetIovlen(segs)
			if segs > 1 {
				// RFC-less kernel API: cmsg SOL_UDP/UDP_SEGMENT, u16 size.
				oob := s.soob[s.scnt][:]
				cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
				cm.Level, cm.Type = unix.SOL_UDP, unix.UDP_SEGMENT
				cm.SetLen(unix.CmsgLen(2))
				binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(size))
				h.Control = &oob[0]
				h.SetControllen(unix.CmsgSpace(2))
			}
			iov += segs
			s.scnt++
			bufs = bufs[segs:]
		}
		if err := s.rc.Write(s.sfn); err != nil {
			return err
		}
		if s.serr != 0 {
			if s.gso && (s.serr == unix.EIO || s.serr == unix.EINVAL || s.serr == unix.EOPNOTSUPP) {
				s.gso = false // no UDP GSO here: fall back for good
				continue
			}
			return fmt.Errorf("dataplane: sendmmsg: %w", s.serr)
		}
	}
	return nil
}

// mmsgTransport is the pair of sockets (IPv4, IPv6) on one port.
type mmsgTransport struct {
	socks []*mmsgSocket
	p     uint16
}

func newMmsgTransport(at familyAddrs, port uint16) (*mmsgTransport, error) {
	t := &mmsgTransport{p: port}
	if at.v4.IsValid() {
		s4, err := newMmsgSocket("udp4", at.v4, port)
		if err != nil {
			return nil, err
		}
		t.socks, t.p = append(t.socks, s4), s4.port()
	}
	if at.v6.IsValid() {
		s6, err := newMmsgSocket("udp6", at.v6, t.p)
		switch {
		case err == nil:
			t.socks = append(t.socks, s6)
		case len(t.socks) == 0 || !at.v6.IsUnspecified():
			// IPv6 was asked for by address, or is all there is.
			for _, s := range t.socks {
				s.conn.Close()
			}
			return nil, err
		}
	}
	if len(t.socks) == 0 {
		return nil, errors.New("no address to bind")
	}
	return t, nil
}

func (t *mmsgTransport) send(bufs [][]byte, ep netip.AddrPort) error {
	if ep.Addr().Unmap().Is4() != t.socks[0].v6 || len(t.socks) == 1 {
		return t.socks[0].send(bufs, ep)
	}
	return t.socks[1].send(bufs, ep)
}

func (t *mmsgTransport) receiveFuncs() []ReceiveFunc {
	var fns []ReceiveFunc
	for _, s := range t.socks {
		fns = append(fns, s.receive)
	}
	return fns
}

func (t *mmsgTransport) batchSize() int { return mmsgBatch }
func (t *mmsgTransport) port() uint16   { return t.p }
func (t *mmsgTransport) close() error {
	var errs []error
	for _, s := range t.socks {
		errs = append(errs, s.conn.Close())
	}
	return errors.Join(errs...)
}

// setUDPEncap sets UDP_ENCAP_ESPINUDP on both sockets (UDPBind.EnableKernelDecap).
// It also turns UDP GRO off on them. Only IKE reaches userspace then, so
// userspace loses nothing; for the kernel, recent Linux installs an ESP GRO
// handler (xfrm4/6_gro_udp_encap_rcv) on an ESPINUDP socket only while
// UDP_GRO is on, and on kernels without that handler plain UDP GRO on the
// socket could coalesce ESP datagrams ahead of the per-packet
// decapsulation. Off, every kernel takes the per-packet path (the cost:
// no ESP GRO on the newest ones; not measured here, this machine has no
// in-kernel ESP). The receive loop copes with datagrams that carry no GRO
// segment size, so this is safe while it runs.
func (t *mmsgTransport) setUDPEncap() error {
	for _, s := range t.socks {
		if err := EnableUDPDecap(s.rc); err != nil {
			return err
		}
		if s.gro {
			s.rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 0) })
		}
	}
	return nil
}

func (t *mmsgTransport) udpEncap() ([]int, error) {
	var out []int
	for _, s := range t.socks {
		var v int
		var gerr error
		if err := s.rc.Control(func(fd uintptr) {
			v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_ENCAP)
		}); err != nil {
			return nil, err
		}
		if gerr != nil {
			return nil, fmt.Errorf("dataplane: getsockopt UDP_ENCAP: %w", gerr)
		}
		out = append(out, v)
	}
	return out, nil
}

// newUDPTransport uses the allocation-free recvmmsg/sendmmsg sockets;
// PETREL_UDP=std selects wireguard-go's StdNetBind instead (for comparison).
func newUDPTransport(at familyAddrs, port uint16) (udpTransport, error) {
	if os.Getenv("PETREL_UDP") == "std" {
		return newStdTransport(port)
	}
	return newMmsgTransport(at, port)
}
