package ike

import (
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// info answers INFORMATIONAL requests other than an IKE delete (RFC 7296
// §1.4): an empty one is a liveness check and gets an empty response;
// D(ESP) deletes our matching Child SAs and is answered with D(ESP) naming
// our inbound SPIs of the pairs (§1.4.1). It also refuses CREATE_CHILD_SA,
// which this version does not implement yet, with NO_ADDITIONAL_SAS.
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
	for _, p := range m.payloads {
		d, ok := p.(*wire.Delete)
		if !ok || d.Protocol != wire.ProtoESP {
			continue
		}
		for _, spi := range d.SPIs {
			i := slices.IndexFunc(sa.children, func(c *ChildSA) bool { return c.OutSPI == spi })
			if i < 0 {
				continue
			}
			c := sa.children[i]
			sa.children = slices.Delete(sa.children, i, i+1)
			t.deleted = append(t.deleted, c.InSPI)
			sa.out.Ops = append(sa.out.Ops, ChildOp{Kind: OpDelete, Name: c.Name, SPIi: sa.spiI, SPIr: sa.spiR,
				InSPI: c.InSPI, OutSPI: c.OutSPI, Local: sa.local, Remote: sa.remote})
			ev := Event{Kind: EventChildDown, Child: c.Name, InSPI: c.InSPI, OutSPI: c.OutSPI, Reason: "deleted-by-peer"}
			sa.fillEvent(&ev)
			sa.out.Events = append(sa.out.Events, ev)
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
