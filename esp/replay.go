package esp

// ringBlocks is the number of 64-bit blocks in the replay bitmap ring; a
// power of two so that a block index is a mask away (RFC 6479 §2).
const ringBlocks = 128

// ReplayWindow is the anti-replay window of RFC 4303 §3.4.3, kept as the
// ring of bitmap blocks of RFC 6479: sliding the window clears whole blocks
// instead of shifting bits. Sequence numbers are 64-bit (ESN or not); 0 is
// never valid. The zero value is a ready window of DefaultReplayWindow
// packets. It is not safe for concurrent use; Inbound guards it.
type ReplayWindow struct {
	top  uint64 // highest sequence number accepted
	size uint64 // window size; 0 means DefaultReplayWindow
	ring [ringBlocks]uint64
}

// ReplayResult says what the window thinks of a sequence number.
type ReplayResult uint8

const (
	ReplayOK     ReplayResult = iota // new, inside or right of the window
	ReplayDup                        // seen before
	ReplayTooOld                     // left of the window
)

// SetSize sets the window size in packets, clamped to 1..MaxReplayWindow.
// Call it before the first packet.
func (w *ReplayWindow) SetSize(n int) {
	switch {
	case n <= 0:
		n = DefaultReplayWindow
	case n > MaxReplayWindow:
		n = MaxReplayWindow
	}
	w.size = uint64(n)
}

// Size is the window size in packets.
func (w *ReplayWindow) Size() int {
	if w.size == 0 {
		return DefaultReplayWindow
	}
	return int(w.size)
}

// Top is the highest sequence number accepted so far (0 before any).
func (w *ReplayWindow) Top() uint64 { return w.top }

// Check reports whether seq would be accepted, without changing the window.
// Receivers call it before the ICV check and Accept after it (RFC 4303
// §3.4.3: the window is updated only for packets that authenticate).
func (w *ReplayWindow) Check(seq uint64) ReplayResult {
	if seq == 0 {
		return ReplayTooOld
	}
	if seq > w.top {
		return ReplayOK
	}
	if w.top-seq >= uint64(w.Size()) {
		return ReplayTooOld
	}
	if w.ring[(seq>>6)&(ringBlocks-1)]&(1<<(seq&63)) != 0 {
		return ReplayDup
	}
	return ReplayOK
}

// Accept checks seq and, if it is new, records it and slides the window.
func (w *ReplayWindow) Accept(seq uint64) ReplayResult {
	if r := w.Check(seq); r != ReplayOK {
		return r
	}
	if seq > w.top {
		// RFC 6479 §2: clear the blocks the window slides over.
		cur, next := w.top>>6, seq>>6
		diff := next - cur
		if diff > ringBlocks {
			diff = ringBlocks
		}
		for i := uint64(1); i <= diff; i++ {
			w.ring[(cur+i)&(ringBlocks-1)] = 0
		}
		w.top = seq
	}
	w.ring[(seq>>6)&(ringBlocks-1)] |= 1 << (seq & 63)
	return ReplayOK
}

// inferESN reconstructs the 64-bit sequence number from its low 32 bits and
// the window (RFC 4303 Appendix A2.2).
func (w *ReplayWindow) inferESN(low uint32) uint64 {
	W := uint32(w.Size())
	tl, th := uint32(w.top), uint32(w.top>>32)
	var hi uint32
	if tl >= W-1 {
		// Case A: the window lies within one sequence number subspace.
		hi = th
		if low < tl-W+1 {
			hi = th + 1
		}
	} else {
		// Case B: the window spans two subspaces.
		hi = th
		if low >= tl-W+1 && th > 0 { // modulo 2^32
			hi = th - 1
		}
	}
	return uint64(hi)<<32 | uint64(low)
}
