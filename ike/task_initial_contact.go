package ike

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// initialContact sends N(INITIAL_CONTACT) in IKE_AUTH on the first IKE SA
// to a peer, and on receipt deletes the older SAs of the same peer identity,
// which a restarted peer has forgotten (RFC 7296 §2.4). It runs after the
// auth task, so the peer's identity is known and verified when it acts.
type initialContact struct{ received bool }

func (*initialContact) kind() taskKind { return kindInitialContact }

func (t *initialContact) build(sa *SA, m *msgOut) (status, error) {
	switch {
	case m.exch == wire.IKE_SA_INIT:
		return needMore, nil
	case m.exch != wire.IKE_AUTH:
		return done, nil
	case m.response:
		if t.received && sa.state == stateEstablished {
			sa.ep.initialContact(sa)
		}
		return done, nil
	}
	if sa.reauthOf == nil && !sa.ep.hasPeer(sa) {
		m.notify(wire.INITIAL_CONTACT, nil)
	}
	return needMore, nil
}

func (t *initialContact) process(sa *SA, m *msgIn) (status, error) {
	switch {
	case m.hdr.Exchange == wire.IKE_SA_INIT:
		return needMore, nil
	case m.hdr.Exchange != wire.IKE_AUTH:
		return done, nil
	}
	t.received = m.notify(wire.INITIAL_CONTACT) != nil
	if m.hdr.IsResponse() {
		if t.received && sa.state == stateEstablished {
			sa.ep.initialContact(sa)
		}
		return done, nil
	}
	return needMore, nil
}

// hasPeer reports whether another IKE SA of sa's connection, established
// or being set up, goes to the same peer address.
func (ep *Endpoint) hasPeer(sa *SA) bool {
	for _, o := range ep.sas {
		if o != sa && o.conn == sa.conn && o.state != stateDead && o.remote.Addr() == sa.remote.Addr() {
			return true
		}
	}
	return false
}

// initialContact removes, without telling the peer, every older IKE SA
// authenticated with sa's peer identity (RFC 7296 §2.4).
func (ep *Endpoint) initialContact(sa *SA) {
	var stale []*SA
	for _, o := range ep.sas {
		// Only SAs older than this one: a delayed IKE_AUTH must not take
		// down SAs set up after it.
		if o != sa && o.state >= stateEstablished && o.peerID.Equal(sa.peerID) && o.conn == sa.conn && o.created.Before(sa.created) {
			stale = append(stale, o)
		}
	}
	out, now := sa.out, sa.now
	for _, o := range stale {
		o.info("ike: deleting SA after the peer's INITIAL_CONTACT")
		ep.run(o, now, out, func() { o.destroy(out, "initial-contact") })
	}
	sa.out, sa.now = out, now
}

// invalidSPI tells the peer that ESP arrived for an SPI we do not know
// (RFC 7296 §1.5, §3.10.1), in a protected INFORMATIONAL on the IKE SA to
// that peer: a restarted data plane, or a pair the peer did not delete.
//
//	HDR, SK {N(INVALID_SPI, SPI)}  -->
//	                               <--  HDR, SK {}
type invalidSPI struct{ spi uint32 }

func (*invalidSPI) kind() taskKind { return kindNotify }

func (t *invalidSPI) build(sa *SA, m *msgOut) (status, error) {
	m.add(&wire.Notify{NotifyType: wire.INVALID_SPI, Protocol: wire.ProtoESP, Data: spiBytes(t.spi)})
	return needMore, nil
}

func (*invalidSPI) process(*SA, *msgIn) (status, error) { return done, nil }

// UnknownESPSPI reports an ESP packet from peer for an SPI the data plane
// does not have. If an established IKE SA goes to that peer, the peer is
// told with N(INVALID_SPI) and removes its stale pair. At most one report
// per SPI and IKE SA is pending at a time; the daemon rate-limits calls.
func (ep *Endpoint) UnknownESPSPI(now time.Time, peer netip.Addr, spi uint32, out *Output) {
	for _, sa := range ep.sas {
		if sa.state != stateEstablished || sa.replaced != nil || sa.remote.Addr() != peer {
			continue
		}
		for _, q := range append(sa.tm.queued[:len(sa.tm.queued):len(sa.tm.queued)], sa.tm.active...) {
			if n, ok := q.(*invalidSPI); ok && n.spi == spi {
				return
			}
		}
		ep.run(sa, now, out, func() {
			sa.queue(&invalidSPI{spi: spi})
			sa.initiate(now, out)
		})
		return
	}
}

// staleSPI handles a protected N(INVALID_SPI): the peer no longer has the
// inbound SA of our pair with that outbound SPI; the pair goes.
func (sa *SA) staleSPI(n *wire.Notify) {
	if len(n.Data) != 4 {
		return
	}
	spi := binary.BigEndian.Uint32(n.Data)
	for _, c := range sa.children {
		if c.OutSPI == spi {
			sa.removeChild(c, "invalid-spi")
			return
		}
	}
}
