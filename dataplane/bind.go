package dataplane

import (
	"net"
	"net/netip"
	"sync"
)

// Bind is the transport the userspace data plane sends ESP packets through
// and receives them from: the daemon's UDP 4500 socket (RFC 3948, shared
// with IKE), a raw IP protocol 50 socket, or an in-memory link in tests.
// It is batch-oriented like wireguard-go's conn.Bind.
//
// Packets are bare ESP (SPI first): a Bind adds and strips UDP headers,
// and keeps IKE and NAT-keepalives (RFC 3948 §2.2, §2.3) to itself.
type Bind interface {
	// Send transmits each of bufs as one ESP packet to ep. A non-zero
	// ep.Port() means ESP in UDP to that port.
	Send(bufs [][]byte, ep netip.AddrPort) error
	// ReceiveFuncs are the receive loops the data plane runs, one
	// goroutine each. A ReceiveFunc blocks until at least one packet
	// arrives and returns net.ErrClosed once the Bind is closed.
	ReceiveFuncs() []ReceiveFunc
	// BatchSize is the most packets one Send or ReceiveFunc call handles.
	BatchSize() int
	Close() error
}

// ReceiveFunc fills bufs[i][:sizes[i]] with received ESP packets and eps[i]
// with their sources, and returns how many it filled.
type ReceiveFunc func(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error)

// MemBind is an in-memory Bind: two of them made by NewMemBindPair are
// joined like two hosts on a link, for tests and the demo. Packets are
// copied; a full queue drops (as a real link would), and Drop, if set,
// is asked about each packet for loss tests.
type MemBind struct {
	self  netip.AddrPort
	peer  *MemBind
	queue chan memPacket
	done  chan struct{}
	once  sync.Once
	pool  sync.Pool
	// Drop, if non-nil, is called for every packet sent; true drops it.
	Drop func(pkt []byte) bool
	// Tap, if non-nil, sees a copy of every packet sent (for captures).
	Tap func(pkt []byte, from, to netip.AddrPort)
}

type memPacket struct {
	buf  *[]byte
	from netip.AddrPort
}

const memBatch = 64

// NewMemBindPair returns two joined binds with the given addresses.
func NewMemBindPair(a, b netip.AddrPort) (*MemBind, *MemBind) {
	x := &MemBind{self: a, queue: make(chan memPacket, 1024), done: make(chan struct{})}
	y := &MemBind{self: b, queue: make(chan memPacket, 1024), done: make(chan struct{})}
	x.peer, y.peer = y, x
	return x, y
}

// Send copies bufs to the peer; the destination must be the peer's address.
func (m *MemBind) Send(bufs [][]byte, ep netip.AddrPort) error {
	select {
	case <-m.done:
		return net.ErrClosed
	default:
	}
	if ep.Addr() != m.peer.self.Addr() {
		return &net.OpError{Op: "send", Net: "mem", Err: net.UnknownNetworkError(ep.String())}
	}
	for _, b := range bufs {
		if m.Drop != nil && m.Drop(b) {
			continue
		}
		if m.Tap != nil {
			m.Tap(b, m.self, ep)
		}
		p, _ := m.peer.pool.Get().(*[]byte)
		if p == nil {
			p = new([]byte)
		}
		*p = append((*p)[:0], b...)
		select {
		case m.peer.queue <- memPacket{p, m.self}:
		case <-m.peer.done:
			return net.ErrClosed
		default: // queue full: dropped like a real link
			m.peer.pool.Put(p)
		}
	}
	return nil
}

// ReceiveFuncs returns the bind's single receive loop.
func (m *MemBind) ReceiveFuncs() []ReceiveFunc { return []ReceiveFunc{m.receive} }

func (m *MemBind) receive(bufs [][]byte, sizes []int, eps []netip.AddrPort) (int, error) {
	var p memPacket
	select {
	case p = <-m.queue:
	case <-m.done:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n], *p.buf)
		eps[n] = p.from
		m.pool.Put(p.buf)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case p = <-m.queue:
		default:
			return n, nil
		}
	}
}

// BatchSize is the most packets a receive call returns.
func (m *MemBind) BatchSize() int { return memBatch }

// Close stops the receive loop.
func (m *MemBind) Close() error {
	m.once.Do(func() { close(m.done) })
	return nil
}
