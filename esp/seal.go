package esp

import (
	"encoding/binary"
	"math"
	"sync/atomic"
)

// Outbound is the sending half of a Child SA. It is safe for concurrent use.
type Outbound struct {
	*transform
	seq      atomic.Uint64 // last sequence number handed out
	counters counters
}

// NewOutbound creates an outbound SA. The first packet gets sequence number 1
// (RFC 4303 §3.3.3).
func NewOutbound(c Config) (*Outbound, error) {
	t, err := newTransform(&c)
	if err != nil {
		return nil, err
	}
	return &Outbound{transform: t}, nil
}

// maxSeq is the last usable sequence number: 2^32-1, or 2^64-1 with ESN.
func (o *Outbound) maxSeq() uint64 {
	if o.esn {
		return math.MaxUint64
	}
	return math.MaxUint32
}

// SeqSoftLimit is the sequence number at which a rekey should start: seven
// eighths of the space, so that the new SA is up long before the old one
// must stop (RFC 4303 §3.3.3 forbids a wrap).
func (o *Outbound) SeqSoftLimit() uint64 { return o.maxSeq() - o.maxSeq()/8 }

// NextSeq reserves the next sequence number. Callers that encrypt in
// parallel take numbers in packet order and then call SealSeq on any core.
// Once the space is used up it returns ErrSeqExhausted, forever: the
// counter never wraps (RFC 4303 §3.3.3).
func (o *Outbound) NextSeq() (uint64, error) {
	for {
		cur := o.seq.Load()
		if cur >= o.maxSeq() {
			return 0, ErrSeqExhausted
		}
		if o.seq.CompareAndSwap(cur, cur+1) {
			return cur + 1, nil
		}
	}
}

// LastSeq is the highest sequence number handed out so far.
func (o *Outbound) LastSeq() uint64 { return o.seq.Load() }

// SetLastSeq makes the next packet use seq+1 (for tests and known answers).
func (o *Outbound) SetLastSeq(seq uint64) { o.seq.Store(seq) }

// Seal encrypts the payload buf[HeaderLen():HeaderLen()+n] in place and
// returns the ESP packet, which starts at buf[0] (see the package comment
// for the layout). nextHeader is the protocol of the payload: 4 or 41 in
// tunnel mode.
func (o *Outbound) Seal(buf []byte, n int, nextHeader byte) ([]byte, error) {
	seq, err := o.NextSeq()
	if err != nil {
		return nil, err
	}
	return o.SealSeq(buf, n, nextHeader, seq)
}

// SealSeq is Seal with a sequence number reserved by NextSeq.
func (o *Outbound) SealSeq(buf []byte, n int, nextHeader byte, seq uint64) ([]byte, error) {
	return o.seal(buf, n, nextHeader, seq, nil)
}

// seal builds the packet. A nil iv means "derive it": for AEAD transforms
// the IV is the 64-bit sequence number, which is unique per key as RFC 4106
// §3.1 and RFC 7634 §2 require; for AES-CBC it is the sequence number
// encrypted under a random per-SA key, which is unpredictable as RFC 3602
// §2.3 requires (the method of NIST SP 800-38A Appendix C).
func (o *Outbound) seal(buf []byte, n int, nextHeader byte, seq uint64, iv []byte) ([]byte, error) {
	hl := o.HeaderLen()
	pad := o.padLen(n)
	ptLen := n + pad + 2
	total := hl + ptLen + o.icvLen
	if n < 0 || cap(buf) < total {
		return nil, ErrBuffer
	}
	buf = buf[:total]
	// RFC 4303 §2.1, §2.2: SPI and the low 32 bits of the sequence number.
	binary.BigEndian.PutUint32(buf[0:4], o.spi)
	binary.BigEndian.PutUint32(buf[4:8], uint32(seq))
	// RFC 4303 §2.4: padding is 1, 2, 3, ...; then Pad Length, Next Header.
	tr := buf[hl+n : hl+ptLen]
	for i := range pad {
		tr[i] = byte(i + 1)
	}
	tr[pad] = byte(pad)
	tr[pad+1] = nextHeader
	ivField := buf[8:hl]

	s := o.scratch.Get().(*opState)
	defer o.scratch.Put(s)
	if o.aead != nil {
		if iv != nil {
			copy(ivField, iv)
		} else {
			binary.BigEndian.PutUint64(ivField, seq)
		}
		// RFC 4106 §4: nonce = salt | IV; RFC 7634 §2 likewise.
		copy(s.nonce[:4], o.salt[:])
		copy(s.nonce[4:], ivField)
		aad := o.aad(s, buf, seq)
		pt := buf[hl : hl+ptLen]
		o.aead.Seal(pt[:0], s.nonce[:], pt, aad)
	} else {
		if iv != nil {
			copy(ivField, iv)
		} else {
			clear(s.sum[:8])
			binary.BigEndian.PutUint64(s.sum[8:16], seq)
			o.ivGen.Encrypt(ivField, s.sum[:16])
		}
		s.cbcE.(ivSetter).SetIV(ivField)
		pt := buf[hl : hl+ptLen]
		s.cbcE.CryptBlocks(pt, pt)
		if o.icvLen > 0 {
			o.icv(s, buf[:hl+ptLen], seq, buf[hl+ptLen:])
		}
	}
	o.counters.add(uint64(n))
	return buf, nil
}

// aad is the AEAD associated data: SPI | Seq for 32-bit sequence numbers,
// SPI | Seq high | Seq low with ESN (RFC 4106 §5, RFC 7634 §2.1).
func (t *transform) aad(s *opState, pkt []byte, seq uint64) []byte {
	if !t.esn {
		return pkt[:8]
	}
	copy(s.aad[0:4], pkt[0:4])
	binary.BigEndian.PutUint64(s.aad[4:12], seq)
	return s.aad[:12]
}

// icv computes the truncated HMAC over the ESP header, IV and ciphertext,
// with the high 32 bits of an extended sequence number appended for the
// computation only (RFC 4303 §3.3.2.1, §2.2.1).
func (t *transform) icv(s *opState, covered []byte, seq uint64, out []byte) {
	s.mac.Reset()
	s.mac.Write(covered)
	if t.esn {
		binary.BigEndian.PutUint32(s.aad[:4], uint32(seq>>32))
		s.mac.Write(s.aad[:4])
	}
	sum := s.mac.Sum(s.sum[:0])
	copy(out, sum[:t.icvLen])
}

// Counters returns the SA's counters.
func (o *Outbound) Counters() Counters { return o.counters.snapshot() }

// Close wipes the SA's key copies. The SA must not be used afterwards.
func (o *Outbound) Close() { o.zero() }
