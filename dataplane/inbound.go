package dataplane

import (
	"encoding/binary"
	"errors"
	"net"
	"time"

	"github.com/petrel-vpn/petrel/esp"
)

// receiveLoop runs one Bind receive function: it reads ESP packets, finds
// their SAs by SPI, and passes the batch to the workers and, in order, to
// its write loop. Packets for an unknown SPI are dropped, counted and,
// rate permitting, reported (invalidspi_limit.go).
func (u *Userspace) receiveLoop(fn ReceiveFunc) {
	defer u.wg.Done()
	q := make(chan *batch, 1024)
	u.wg.Add(1)
	go u.writeLoop(q)
	defer close(q)
	bs := min(u.bind.BatchSize(), maxBatch)
	for {
		b := u.inPool.get()
		b.dir = dirIn
		for i := range bs {
			b.io[i] = b.bufs[i][headroom:]
		}
		n, err := fn(b.io[:bs], b.sizes[:bs], b.eps[:bs])
		if err != nil && n == 0 {
			u.inPool.put(b)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			u.log.Debug("dataplane: receive", "err", err)
			time.Sleep(10 * time.Millisecond) // a transient socket error; do not spin
			continue
		}
		b.n = n
		var reps [4]unknownReport
		var nrep int
		var now time.Time
		u.mu.RLock()
		for i := range n {
			spi, ok := esp.PeekSPI(b.io[i][:b.sizes[i]])
			if !ok {
				continue
			}
			if sa := u.in[spi]; sa != nil {
				if dev := u.devices[sa.sa.IfID]; dev != nil {
					sa.inflight.Add(1)
					b.isa[i], b.dev[i] = sa, dev
				}
			} else {
				nrep = u.noteUnknownSPI(spi, b.eps[i], &now, reps[:], nrep)
			}
		}
		u.mu.RUnlock()
		for _, r := range reps[:nrep] {
			u.event(Event{Kind: UnknownSPI, Dir: In, SPI: r.spi, Peer: r.peer})
		}
		b.mu.Lock()
		q <- b
		u.work.q <- b
	}
}

// openBatch runs on a worker: RFC 4303 §3.4 processing, then the check
// that the inner packet belongs to the SA's traffic selectors (RFC 4301
// §5.2 step 4: drop and count if not).
func openBatch(b *batch) {
	for i := range b.n {
		sa := b.isa[i]
		if sa == nil {
			continue
		}
		pkt := b.bufs[i][headroom : headroom+b.sizes[i]]
		payload, nh, _, err := sa.Open(pkt)
		sa.inflight.Add(-1)
		if err != nil {
			continue
		}
		start := headroom + sa.HeaderLen()
		end := start + len(payload)
		if sa.sa.Mode == esp.Transport {
			hl := buildIPHeader(b.bufs[i][:start], &sa.sa, nh, len(payload))
			if hl < 0 {
				sa.CountPolicyDrop()
				continue
			}
			start -= hl
			if sa.sa.Encap {
				// RFC 3948 §3.1.2: behind a NAT the sender's checksum
				// covers addresses we do not see; recompute it.
				fixL4Checksum(b.bufs[i][start:end], hl)
			}
		} else if len(payload) == 0 || (payload[0]>>4 == 4) != (nh == protoIPIP) {
			sa.CountPolicyDrop() // inner version does not match Next Header
			continue
		}
		f, _, ok := parseFlow(b.bufs[i][start:end])
		if !ok || !inAny(sa.sa.RemoteTS, f.Src, f.Proto, f.SrcPort) || !inAny(sa.sa.LocalTS, f.Dst, f.Proto, f.DstPort) {
			sa.CountPolicyDrop()
			continue
		}
		b.res[i] = b.bufs[i][start-writeOffset : end]
	}
}

// buildIPHeader writes, at the end of hdr, the IP header of a transport
// mode packet (RFC 4303 §3.1.1): the outer addresses, Next Header as the
// protocol. It returns the header length, or -1.
func buildIPHeader(hdr []byte, sa *SA, proto byte, n int) int {
	src, dst := sa.Remote.Addr(), sa.Local.Addr()
	if src.Is4() {
		if n+20 > 65535 {
			return -1
		}
		h := hdr[len(hdr)-20:]
		clear(h)
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(n+20))
		h[8], h[9] = 64, proto
		s4, d4 := src.As4(), dst.As4()
		copy(h[12:16], s4[:])
		copy(h[16:20], d4[:])
		binary.BigEndian.PutUint16(h[10:], ipChecksum(h))
		return 20
	}
	if n > 65535 {
		return -1
	}
	h := hdr[len(hdr)-40:]
	clear(h)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6], h[7] = proto, 64
	s16, d16 := src.As16(), dst.As16()
	copy(h[8:24], s16[:])
	copy(h[24:40], d16[:])
	return 40
}

// fixL4Checksum recomputes the TCP or UDP checksum of an IP packet whose
// header (hl octets) was rebuilt, over the RFC 793/768/8200 §8.1
// pseudo-header. Other protocols are left alone.
func fixL4Checksum(pkt []byte, hl int) {
	proto, v6 := pkt[9], false
	if pkt[0]>>4 == 6 {
		proto, v6 = pkt[6], true
	}
	l4 := pkt[hl:]
	var off int
	switch {
	case proto == protoTCP && len(l4) >= 20:
		off = 16
	case proto == protoUDP && len(l4) >= 8:
		off = 6
	default:
		return
	}
	l4[off], l4[off+1] = 0, 0
	var sum uint32
	if v6 {
		sum = sumBytes(pkt[8:40], 0)
	} else {
		sum = sumBytes(pkt[12:20], 0)
	}
	sum += uint32(proto) + uint32(len(l4))
	sum = sumBytes(l4, sum)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	c := ^uint16(sum)
	if c == 0 && proto == protoUDP {
		c = 0xffff // RFC 768: zero means "no checksum"
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}

func sumBytes(b []byte, sum uint32) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// writeLoop writes opened batches to their devices in arrival order.
func (u *Userspace) writeLoop(q chan *batch) {
	defer u.wg.Done()
	for b := range q {
		b.mu.Lock()
		k := 0
		var dev *device
		for i := range b.n {
			if b.res[i] == nil {
				continue
			}
			if k > 0 && b.dev[i] != dev {
				u.write(dev, b.io[:k])
				k = 0
			}
			dev = b.dev[i]
			b.io[k] = b.res[i]
			k++
		}
		if k > 0 {
			u.write(dev, b.io[:k])
		}
		b.mu.Unlock()
		u.inPool.put(b)
	}
}

func (u *Userspace) write(d *device, bufs [][]byte) {
	if _, err := d.tun.Write(bufs, writeOffset); err != nil {
		u.log.Debug("dataplane: device write", "err", err)
	}
}
