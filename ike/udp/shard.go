package udp

import (
	"time"

	"github.com/petrel-vpn/petrel/ike"
)

// input is a datagram for a shard, or a call to run on its goroutine.
type input struct {
	d    ike.Datagram
	call func(now time.Time, ep *ike.Endpoint, out *ike.Output)
}

// shard is one event loop owning one Endpoint.
type shard struct {
	s   *Server
	ep  *ike.Endpoint
	in  chan input
	out ike.Output
}

func newShard(s *Server, ep *ike.Endpoint) *shard {
	return &shard{s: s, ep: ep, in: make(chan input, 1024)}
}

// call runs f on the shard's goroutine and waits for it.
func (sh *shard) call(f func(now time.Time, ep *ike.Endpoint, out *ike.Output) (uint64, error)) (uint64, error) {
	type result struct {
		v   uint64
		err error
	}
	done := make(chan result, 1)
	in := input{call: func(now time.Time, ep *ike.Endpoint, out *ike.Output) {
		v, err := f(now, ep, out)
		done <- result{v, err}
	}}
	select {
	case sh.in <- in:
	case <-sh.s.closed:
		return 0, errClosed
	}
	select {
	case r := <-done:
		return r.v, r.err
	case <-sh.s.closed:
		return 0, errClosed
	}
}

func (sh *shard) loop() {
	defer sh.s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var keepalive <-chan time.Time
	if sh.s.cfg.Keepalive > 0 {
		t := time.NewTicker(sh.s.cfg.Keepalive)
		defer t.Stop()
		keepalive = t.C
	}
	for {
		if d, ok := sh.ep.NextDeadline(); ok {
			timer.Reset(max(time.Until(d), 0))
		} else {
			timer.Stop()
		}
		select {
		case in := <-sh.in:
			now := time.Now()
			if in.call != nil {
				in.call(now, sh.ep, &sh.out)
			} else {
				sh.ep.HandleDatagram(now, in.d.Src, in.d.Dst, in.d.Data, &sh.out)
			}
		case now := <-timer.C:
			sh.ep.Tick(now, &sh.out)
		case <-keepalive:
			sh.keepalives()
		case <-sh.s.closed:
			sh.out.Reset()
			sh.ep.Close(&sh.out)
			sh.flush()
			return
		}
		sh.flush()
	}
}

// keepalives sends a NAT-keepalive (one 0xFF octet, RFC 3948 §2.3) from
// the NAT-T socket for every SA behind a NAT.
func (sh *shard) keepalives() {
	sh.ep.Range(func(sa *ike.SA) bool {
		if sa.BehindNAT() {
			local, remote := sa.Addrs()
			if so := sh.s.socketFor(local); so != nil && so.natt {
				_, _ = so.conn.WriteToUDPAddrPort([]byte{0xff}, remote)
			}
		}
		return true
	})
}

func (sh *shard) flush() {
	for _, d := range sh.out.Datagrams {
		sh.s.send(d)
	}
	if f := sh.s.cfg.Output; f != nil && (len(sh.out.Ops) > 0 || len(sh.out.Events) > 0) {
		f(sh.out.Ops, sh.out.Events)
	}
	sh.out.Reset()
}
