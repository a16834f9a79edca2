package ike

import (
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// IKE fragmentation (RFC 7383): sending is in SA.encode; this file holds
// the limits and the receiving side.

// The fragment size (Connection.FragmentSize) is the largest UDP payload
// an IKE message may occupy on the wire: the IKE message plus, on the NAT-T
// port, the 4-octet non-ESP marker (RFC 3948 §2.2). When the peer supports
// RFC 7383 fragmentation, a protected message that would exceed it is sent
// as SKF fragments whose datagrams each fit in it (RFC 7383 §2.5.1); when
// the peer does not, and for IKE_SA_INIT (never fragmented, §2.5.3), the
// message goes whole whatever its size. Unlike strongSwan's fragment_size,
// it counts neither the IP nor the UDP header.
//
// Without a configured size the default follows the peer's address family
// (an IPv4-mapped IPv6 address counts as IPv4).
const (
	// DefaultFragmentSizeIPv4 is the default for an IPv4 peer: 1280
	// octets of UDP payload, an IP packet of 1308.
	DefaultFragmentSizeIPv4 = 1280
	// DefaultFragmentSizeIPv6 is the default for an IPv6 peer: the IPv6
	// minimum link MTU (RFC 8200 §5) less the IPv6 and UDP headers, so
	// that no datagram needs IP fragmentation on any IPv6 path.
	DefaultFragmentSizeIPv6 = 1280 - 40 - 8
)

// nonESPMarkerLen is the length of the non-ESP marker, four zero octets
// ahead of IKE messages on the NAT-T port (RFC 3948 §2.2); the transport
// adds it (see Datagram), but it counts against the fragment size.
const nonESPMarkerLen = 4

// fragmentSize is the fragment size in force for this SA: the connection's,
// else the default for the peer's address family.
func (sa *SA) fragmentSize() int {
	if sa.conn != nil && sa.conn.FragmentSize > 0 {
		return sa.conn.FragmentSize
	}
	if sa.remote.Addr().Unmap().Is4() {
		return DefaultFragmentSizeIPv4
	}
	return DefaultFragmentSizeIPv6
}

// maxMessageLen is the largest IKE message this SA sends in one datagram
// to a peer that supports fragmentation, and the most each SKF fragment
// may encode to: the fragment size less the non-ESP marker when the SA
// sends from the NAT-T port. wire.EncodeFragments fits each fragment's
// header, SKF header, IV, padding and ICV within it.
func (sa *SA) maxMessageLen() int {
	n := sa.fragmentSize()
	if sa.local.Port() == sa.ep.nattPort(sa.local) {
		n -= nonESPMarkerLen
	}
	return n
}

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
