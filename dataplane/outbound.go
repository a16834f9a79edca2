package dataplane

import (
	"errors"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/petrel-vpn/petrel/esp"
)

// readLoop reads packets from a device, picks their SAs and reserves their
// sequence numbers in order, then hands the batch to the crypto workers and,
// in the same order, to the device's send loop.
func (u *Userspace) readLoop(d *device) {
	defer u.wg.Done()
	defer close(d.sendQ)
	bs := min(d.tun.BatchSize(), maxBatch)
	for {
		b := u.outPool.get()
		b.dir = dirOut
		for i := range bs {
			b.io[i] = b.bufs[i][:headroom+MaxPacket]
		}
		n, err := d.tun.Read(b.io[:bs], b.sizes[:bs], headroom)
		if err != nil && n == 0 {
			u.outPool.put(b)
			if errors.Is(err, tun.ErrTooManySegments) {
				continue
			}
			u.log.Debug("dataplane: device read stopped", "err", err)
			return
		}
		b.n = n
		u.classifyOut(d, b)
		b.mu.Lock()
		d.sendQ <- b
		u.work.q <- b
	}
}

// classifyOut finds each packet's SA (RFC 4301 §5.1: SPD lookup, most
// specific policy first; or the interface's SA in route-based mode) and
// reserves its sequence number.
func (u *Userspace) classifyOut(d *device, b *batch) {
	var acquire [4]uint32
	nacq := 0
	u.mu.RLock()
	for i := range b.n {
		pkt := b.bufs[i][headroom : headroom+b.sizes[i]]
		f, off, ok := parseFlow(pkt)
		if !ok {
			d.drops.Add(1)
			continue
		}
		var sa *outSA
		if d.ifID != 0 {
			sa = u.byIfID[d.ifID]
		} else if p := u.lookupLocked(&f); p != nil && p.Action == Protect {
			if sa = u.byReqID[p.ReqID]; sa == nil && nacq < len(acquire) {
				acquire[nacq] = p.ReqID
				nacq++
			}
		}
		if sa == nil {
			d.drops.Add(1)
			continue
		}
		seq, err := sa.NextSeq()
		if err != nil {
			d.drops.Add(1)
			if sa.exhausted.CompareAndSwap(false, true) {
				go u.event(Event{Kind: SeqExhausted, Dir: Out, SPI: sa.SPI(), ReqID: sa.sa.ReqID})
			}
			continue
		}
		if seq == sa.SeqSoftLimit() { // exactly one packet gets this number
			go u.event(Event{Kind: SeqSoftLimit, Dir: Out, SPI: sa.SPI(), ReqID: sa.sa.ReqID})
		}
		sa.inflight.Add(1)
		b.osa[i], b.seq[i] = sa, seq
		if sa.sa.Mode == esp.Transport {
			// RFC 4303 §3.1.1: ESP goes after the IP header; the
			// header itself is rebuilt by the peer from the outer one.
			b.start[i], b.plen[i], b.nh[i] = headroom+off, len(pkt)-off, f.Proto
		} else {
			b.start[i], b.plen[i], b.nh[i] = headroom, len(pkt), protoIPIP
			if pkt[0]>>4 == 6 {
				b.nh[i] = protoIPv6
			}
		}
	}
	u.mu.RUnlock()
	for _, id := range acquire[:nacq] {
		u.acquire(id)
	}
}

// maxAcquired is the number of ReqIDs whose last Acquire time is kept
// before the stale ones are swept.
const maxAcquired = 256

func (u *Userspace) acquire(reqID uint32) {
	now := time.Now()
	u.mu.Lock()
	last, seen := u.acquired[reqID]
	if seen && now.Sub(last) < time.Second {
		u.mu.Unlock()
		return
	}
	if len(u.acquired) >= maxAcquired {
		// Only ReqIDs that raised one in the last second need an entry;
		// the others (trap policies that never got an SA, a ReqID
		// released while this acquire was on its way) go.
		for id, t := range u.acquired {
			if now.Sub(t) >= time.Second {
				delete(u.acquired, id)
			}
		}
	}
	u.acquired[reqID] = now
	u.mu.Unlock()
	u.event(Event{Kind: Acquire, Dir: Out, ReqID: reqID})
}

// sealBatch runs on a worker.
func sealBatch(b *batch) {
	for i := range b.n {
		sa := b.osa[i]
		if sa == nil {
			continue
		}
		hl := sa.HeaderLen()
		buf := b.bufs[i][b.start[i]-hl : b.start[i]+b.plen[i]]
		pkt, err := sa.SealSeq(buf, b.plen[i], b.nh[i], b.seq[i])
		sa.inflight.Add(-1)
		if err == nil {
			b.res[i] = pkt
		}
	}
}

// sendLoop sends sealed batches in the order they were read, grouping
// consecutive packets for the same peer into one Bind.Send.
func (u *Userspace) sendLoop(d *device) {
	defer u.wg.Done()
	for b := range d.sendQ {
		b.mu.Lock()
		k := 0
		var ep netip.AddrPort
		for i := range b.n {
			if b.res[i] == nil {
				continue
			}
			e := b.osa[i].endpoint()
			if k > 0 && e != ep {
				u.send(b.io[:k], ep)
				k = 0
			}
			ep = e
			b.io[k] = b.res[i]
			k++
		}
		if k > 0 {
			u.send(b.io[:k], ep)
		}
		b.mu.Unlock()
		u.outPool.put(b)
	}
}

func (u *Userspace) send(bufs [][]byte, ep netip.AddrPort) {
	if err := u.bind.Send(bufs, ep); err != nil {
		u.log.Debug("dataplane: send", "to", ep, "err", err)
	}
}

// endpoint is where the SA's packets go: the peer's UDP port with
// RFC 3948 encapsulation, port 0 (IP protocol 50) without.
func (o *outSA) endpoint() netip.AddrPort {
	if o.sa.Encap {
		return o.sa.Remote
	}
	return netip.AddrPortFrom(o.sa.Remote.Addr(), 0)
}
