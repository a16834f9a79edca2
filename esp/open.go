package esp

import (
	"crypto/subtle"
	"encoding/binary"
	"sync"
)

// Inbound is the receiving half of a Child SA. It is safe for concurrent
// use: the crypto runs unlocked, only the replay window takes a lock.
type Inbound struct {
	*transform
	mu       sync.Mutex
	window   ReplayWindow // guarded by mu
	counters counters
}

// NewInbound creates an inbound SA.
func NewInbound(c Config) (*Inbound, error) {
	t, err := newTransform(&c)
	if err != nil {
		return nil, err
	}
	in := &Inbound{transform: t}
	in.window.SetSize(c.ReplayWindow)
	return in, nil
}

// PeekSPI returns the SPI of an ESP packet (RFC 4303 §2.1), so a receiver
// can find the SA to open it with.
func PeekSPI(pkt []byte) (uint32, bool) {
	if len(pkt) < 8 {
		return 0, false
	}
	return binary.BigEndian.Uint32(pkt), true
}

// Open authenticates and decrypts the ESP packet pkt in place and returns
// its payload (a sub-slice of pkt), the Next Header value and the full
// sequence number. Processing follows RFC 4303 §3.4: replay pre-check,
// ICV check, decryption, window update, then the padding and Next Header
// checks. A packet that fails before the ICV is verified changes nothing in
// the SA but the matching drop counter. On error pkt's contents are
// undefined.
func (in *Inbound) Open(pkt []byte) (payload []byte, nextHeader byte, seq uint64, err error) {
	hl := in.HeaderLen()
	ctLen := len(pkt) - hl - in.icvLen
	if ctLen < 2 || ctLen%in.align != 0 {
		in.counters.invalid.Add(1)
		return nil, 0, 0, ErrShort
	}
	if binary.BigEndian.Uint32(pkt) != in.spi {
		in.counters.invalid.Add(1)
		return nil, 0, 0, ErrSPI
	}
	low := binary.BigEndian.Uint32(pkt[4:8])
	in.mu.Lock()
	seq = uint64(low)
	if in.esn {
		seq = in.window.inferESN(low)
	}
	r := in.window.Check(seq)
	in.mu.Unlock()
	if r != ReplayOK {
		in.counters.replay.Add(1)
		return nil, 0, seq, replayErr(r)
	}

	s := in.scratch.Get().(*opState)
	defer in.scratch.Put(s)
	ct := pkt[hl : hl+ctLen]
	if in.aead != nil {
		copy(s.nonce[:4], in.salt[:])
		copy(s.nonce[4:], pkt[8:hl])
		if _, err := in.aead.Open(ct[:0], s.nonce[:], pkt[hl:], in.aad(s, pkt, seq)); err != nil {
			in.counters.auth.Add(1)
			return nil, 0, seq, ErrAuth
		}
	} else {
		if in.icvLen > 0 {
			var want [32]byte
			in.icv(s, pkt[:hl+ctLen], seq, want[:in.icvLen])
			if subtle.ConstantTimeCompare(want[:in.icvLen], pkt[hl+ctLen:]) != 1 {
				in.counters.auth.Add(1)
				return nil, 0, seq, ErrAuth
			}
		}
		s.cbcD.(ivSetter).SetIV(pkt[8:hl])
		s.cbcD.CryptBlocks(ct, ct)
	}

	in.mu.Lock()
	r = in.window.Accept(seq)
	in.mu.Unlock()
	if r != ReplayOK { // a copy was accepted while this one was decrypting
		in.counters.replay.Add(1)
		return nil, 0, seq, replayErr(r)
	}

	// RFC 4303 §2.4: Pad Length and Next Header end the plaintext; the
	// padding must read 1, 2, 3, ...
	pad := int(ct[ctLen-2])
	nextHeader = ct[ctLen-1]
	if pad+2 > ctLen {
		in.counters.invalid.Add(1)
		return nil, 0, seq, ErrPadding
	}
	n := ctLen - 2 - pad
	for i, b := range ct[n : n+pad] {
		if b != byte(i+1) {
			in.counters.invalid.Add(1)
			return nil, 0, seq, ErrPadding
		}
	}
	switch {
	case nextHeader == 59: // RFC 4303 §2.6: dummy packet, discard silently
		return nil, nextHeader, seq, ErrDummy
	case in.mode == Tunnel && nextHeader != 4 && nextHeader != 41:
		in.counters.invalid.Add(1)
		return nil, nextHeader, seq, ErrNextHeader
	}
	in.counters.add(uint64(n))
	return ct[:n], nextHeader, seq, nil
}

func replayErr(r ReplayResult) error {
	if r == ReplayDup {
		return ErrReplay
	}
	return ErrTooOld
}

// CountPolicyDrop charges a packet that opened but whose inner addresses lie
// outside the SA's traffic selectors (RFC 4301 §5.2, step 4).
func (in *Inbound) CountPolicyDrop() { in.counters.policy.Add(1) }

// ReplayWindowSize is the configured window size in packets.
func (in *Inbound) ReplayWindowSize() int { return in.window.Size() }

// HighestSeq is the highest authenticated sequence number received.
func (in *Inbound) HighestSeq() uint64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.window.Top()
}

// Counters returns the SA's counters.
func (in *Inbound) Counters() Counters { return in.counters.snapshot() }

// Close wipes the SA's key copies. The SA must not be used afterwards.
func (in *Inbound) Close() { in.zero() }
