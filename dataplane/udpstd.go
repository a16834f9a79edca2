package dataplane

import (
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// stdTransport is UDPBind's socket layer on wireguard-go's StdNetBind
// (batching and offloads on every platform wireguard-go supports; it
// allocates an endpoint per received datagram).
type stdTransport struct {
	std conn.Bind
	fns []conn.ReceiveFunc
	p   uint16
	mu  sync.RWMutex
	eps map[netip.AddrPort]*conn.StdNetEndpoint
}

func newStdTransport(port uint16) (*stdTransport, error) {
	std := conn.NewStdNetBind()
	fns, actual, err := std.Open(port)
	if err != nil {
		return nil, err
	}
	return &stdTransport{std: std, fns: fns, p: actual, eps: map[netip.AddrPort]*conn.StdNetEndpoint{}}, nil
}

func (t *stdTransport) endpoint(ap netip.AddrPort) *conn.StdNetEndpoint {
	t.mu.RLock()
	e := t.eps[ap]
	t.mu.RUnlock()
	if e != nil {
		return e
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e = t.eps[ap]; e == nil {
		if len(t.eps) > 4096 { // bound the cache; peers are few
			clear(t.eps)
		}
		e = &conn.StdNetEndpoint{AddrPort: ap}
		t.eps[ap] = e
	}
	return e
}

func (t *stdTransport) send(bufs [][]byte, ep netip.AddrPort) error {
	return t.std.Send(bufs, t.endpoint(ep))
}

func (t *stdTransport) receiveFuncs() []ReceiveFunc {
	var out []ReceiveFunc
	for _, fn := range t.fns {
		eps := make([]conn.Endpoint, t.std.BatchSize())
		out = append(out, func(bufs [][]byte, sizes []int, from []netip.AddrPort) (int, error) {
			n, err := fn(bufs, sizes, eps[:len(bufs)])
			for i := range n {
				if e, ok := eps[i].(*conn.StdNetEndpoint); ok {
					from[i] = e.AddrPort
				}
			}
			return n, err
		})
	}
	return out
}

func (t *stdTransport) batchSize() int { return t.std.BatchSize() }
func (t *stdTransport) port() uint16   { return t.p }
func (t *stdTransport) close() error   { return t.std.Close() }
