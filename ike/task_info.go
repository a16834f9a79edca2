package ike

import "github.com/petrel-vpn/petrel/wire"

// info answers INFORMATIONAL requests other than an IKE delete (RFC 7296
// §1.4): an empty one is a liveness check and gets an empty response;
// D(ESP) deletes our matching Child SAs and is answered with D(ESP) naming
// our inbound SPIs of the pairs (§1.4.1). It also refuses the
// CREATE_CHILD_SA requests no other task takes, with NO_ADDITIONAL_SAS.
type info struct {
	deleted []uint32 // our inbound SPIs of the Child SAs removed
	refuse  bool
}

func (*info) kind() taskKind { return kindInfo }

func (t *info) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange == wire.CREATE_CHILD_SA {
		t.refuse = true
		return needMore, nil
	}
	if m.notify(wire.AUTHENTICATION_FAILED) != nil {
		// RFC 7296 §2.21.2: the initiator refused our authentication
		// after we had accepted it; the SA goes once we have answered.
		sa.state = stateDeleting
		sa.peerRefused = true
	}
	if n := m.notify(wire.INVALID_SPI); n != nil && n.Protocol == wire.ProtoESP {
		sa.staleSPI(n) // RFC 7296 §1.5: protected, so trusted
	}
	for _, p := range m.payloads {
		d, ok := p.(*wire.Delete)
		if !ok || d.Protocol != wire.ProtoESP {
			continue
		}
		for _, spi := range d.SPIs {
			// The pair may have moved to a new IKE SA (§2.18).
			h, c := sa.holderBy(func(c *ChildSA) bool { return c.OutSPI == spi })
			if c == nil {
				continue
			}
			if !c.deleting {
				// §1.4.1: a pair we are deleting ourselves is left out
				// of the response.
				t.deleted = append(t.deleted, c.InSPI)
			}
			reason := "deleted-by-peer"
			if c.rekeyed || c.peerNew != nil {
				reason = "rekeyed" // the peer's rekey of it completed (§2.8.1)
			}
			sa.removeFrom(h, c, reason)
		}
	}
	return needMore, nil
}

func (t *info) build(sa *SA, m *msgOut) (status, error) {
	if t.refuse {
		m.notify(wire.NO_ADDITIONAL_SAS, nil)
	}
	if len(t.deleted) > 0 {
		m.add(&wire.Delete{Protocol: wire.ProtoESP, SPIs: t.deleted})
	}
	return done, nil
}
