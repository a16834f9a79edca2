package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/petrel-vpn/petrel/esp"
)

// UDPBind is the NAT-T socket pair (IPv4 and IPv6, one UDP port, normally
// 4500) shared by IKE and ESP (RFC 3948). It is built on wireguard-go's
// conn.StdNetBind, so it batches with recvmmsg/sendmmsg and uses UDP GSO and
// GRO where the kernel offers them. Received datagrams are demultiplexed by
// the non-ESP marker (RFC 3948 §2.2): IKE messages go to the IKE callback
// with the marker removed, NAT-keepalives (§2.3) are dropped, ESP goes to
// the data plane.
type UDPBind struct {
	std   conn.Bind
	fns   []conn.ReceiveFunc
	port  uint16
	onIKE func(msg []byte, from netip.AddrPort)

	mu  sync.RWMutex
	eps map[netip.AddrPort]*conn.StdNetEndpoint
}

// NewUDPBind opens the socket on port (0 picks one). onIKE, if non-nil,
// receives IKE messages (without the non-ESP marker) from a receive loop;
// msg is only valid during the call.
func NewUDPBind(port uint16, onIKE func(msg []byte, from netip.AddrPort)) (*UDPBind, error) {
	std := conn.NewStdNetBind()
	fns, actual, err := std.Open(port)
	if err != nil {
		return nil, fmt.Errorf("dataplane: UDP bind on port %d: %w", port, err)
	}
	return &UDPBind{std: std, fns: fns, port: actual, onIKE: onIKE,
		eps: map[netip.AddrPort]*conn.StdNetEndpoint{}}, nil
}

// Port is the bound UDP port.
func (b *UDPBind) Port() uint16 { return b.port }

func (b *UDPBind) endpoint(ap netip.AddrPort) *conn.StdNetEndpoint {
	b.mu.RLock()
	e := b.eps[ap]
	b.mu.RUnlock()
	if e != nil {
		return e
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e = b.eps[ap]; e == nil {
		if len(b.eps) > 4096 { // bound the cache; peers are few
			clear(b.eps)
		}
		e = &conn.StdNetEndpoint{AddrPort: ap}
		b.eps[ap] = e
	}
	return e
}

// Send implements Bind: ESP in UDP to ep (RFC 3948 §2.1). Raw ESP (port
// 0) needs a different socket.
func (b *UDPBind) Send(bufs [][]byte, ep netip.AddrPort) error {
	if ep.Port() == 0 {
		return fmt.Errorf("%w: raw ESP (IP protocol 50) on a UDP bind", ErrNotSupport)
	}
	return b.std.Send(bufs, b.endpoint(ep))
}

// SendIKE sends an IKE message on the NAT-T port, prefixed by the non-ESP
// marker (RFC 3948 §2.2, RFC 7296 §2.23).
func (b *UDPBind) SendIKE(msg []byte, to netip.AddrPort) error {
	buf := make([]byte, 4+len(msg))
	copy(buf[4:], msg)
	return b.std.Send([][]byte{buf}, b.endpoint(to))
}

// SendKeepalive sends a NAT-keepalive (RFC 3948 §2.3, §4).
func (b *UDPBind) SendKeepalive(to netip.AddrPort) error {
	return b.std.Send([][]byte{{esp.KeepaliveByte}}, b.endpoint(to))
}

// BatchSize implements Bind.
func (b *UDPBind) BatchSize() int { return b.std.BatchSize() }

// Close implements Bind.
func (b *UDPBind) Close() error { return b.std.Close() }

// ReceiveFuncs implements Bind: each wraps one socket's receive function
// with the RFC 3948 §2.2 demultiplexer.
func (b *UDPBind) ReceiveFuncs() []ReceiveFunc {
	out := make([]ReceiveFunc, len(b.fns))
	for i, fn := range b.fns {
		eps := make([]conn.Endpoint, b.std.BatchSize())
		out[i] = func(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
			for {
				n, err := fn(bufs, sizes, eps[:len(bufs)])
				if err != nil {
					if errors.Is(err, conn.ErrBindAlreadyOpen) {
						continue
					}
					return 0, err
				}
				k := b.demux(bufs[:n], sizes, eps, from)
				if k > 0 {
					return k, nil
				}
			}
		}
	}
	return out
}

// demux keeps the ESP packets of a received batch, moved to the front, and
// hands IKE messages to the callback.
func (b *UDPBind) demux(bufs [][]byte, sizes []int, eps []conn.Endpoint, from []netip.AddrPort) int {
	k := 0
	for i := range bufs {
		pkt := bufs[i][:sizes[i]]
		var src netip.AddrPort
		if e, ok := eps[i].(*conn.StdNetEndpoint); ok {
			src = e.AddrPort
		}
		switch esp.ClassifyUDP(pkt) {
		case esp.UDPESP:
			if k != i {
				sizes[k] = copy(bufs[k], pkt)
			}
			from[k] = src
			k++
		case esp.UDPIKE:
			if b.onIKE != nil {
				b.onIKE(pkt[4:], src)
			}
		}
	}
	return k
}
