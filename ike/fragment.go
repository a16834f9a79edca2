package ike

import (
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// IKE fragmentation (RFC 7383): sending is in SA.encode; this file holds
// the limits and the receiving side.

// DefaultFragmentSize is the largest IKE message sent unfragmented to a
// peer that supports RFC 7383 fragmentation, like strongSwan's 1280-octet
// default less the IP, UDP and non-ESP marker overhead.
const DefaultFragmentSize = 1280 - 40 - 8 - 4

// Reassembly bounds per IKE SA (RFC 7383 §2.6 leaves them to us).
const (
	maxFragments     = 32
	maxFragmentBytes = 64 << 10
	// fragmentTimeout bounds how long fragments of an incomplete message
	// are held; the sender retransmits them all anyway (RFC 7383 §2.6.1).
	fragmentTimeout = 30 * time.Second
)

// fragDeadline is when held fragments are dropped; zero if none.
func (sa *SA) fragDeadline() time.Time {
	if sa.tm.frag == nil {
		return time.Time{}
	}
	return sa.tm.fragAt.Add(fragmentTimeout)
}

// expireFragments drops incomplete messages held too long.
func (sa *SA) expireFragments(now time.Time) {
	if d := sa.fragDeadline(); !d.IsZero() && !now.Before(d) {
		sa.tm.frag = nil
		sa.ep.stats.DroppedMalformed++
	}
}

// reassemble verifies one SKF fragment and adds it; it returns the whole
// message once the last fragment is in.
func (sa *SA) reassemble(m *wire.Message) (*wire.Message, bool) {
	st := &sa.ep.stats
	if sa.prot == nil || m.Header.Exchange == wire.IKE_SA_INIT {
		st.DroppedMalformed++
		return nil, false
	}
	plain, err := m.OpenFragment(sa.prot)
	if err != nil {
		st.DroppedICV++
		return nil, false
	}
	tm := &sa.tm
	if tm.frag == nil {
		tm.frag = wire.NewReassembler(maxFragments, maxFragmentBytes)
		tm.fragAt = sa.now
	}
	full, err := tm.frag.Add(m, plain)
	if err != nil {
		st.DroppedMalformed++
		return nil, false
	}
	if full == nil {
		return nil, false
	}
	if tm.frag.Pending() == 0 {
		tm.frag = nil
	}
	st.Reassembled++
	return full, true
}
