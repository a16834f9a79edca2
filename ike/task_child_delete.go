package ike

import (
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// childDelete deletes one or more Child SAs of this IKE SA with an
// INFORMATIONAL exchange (RFC 7296 §1.4.1):
//
//	Initiator: HDR, SK {D(ESP, our inbound SPIs)}  -->
//	Responder:                                     <--  HDR, SK {D(ESP, its inbound SPIs)}
//
// Each pair is marked deleting while the request is in flight. When both
// ends delete the same pair at once, each deletes it while answering the
// other's request and leaves it out of its response (§1.4.1); this task then
// finds the pair gone and has nothing left to do. The responder half lives
// in task_info.go.
type childDelete struct {
	spis   []uint32 // our inbound SPIs to delete
	reason string   // for the child-down events
}

func (*childDelete) kind() taskKind { return kindChildDelete }

func (t *childDelete) build(sa *SA, m *msgOut) (status, error) {
	var live []uint32
	for _, spi := range t.spis {
		if c := sa.childByInSPI(spi); c != nil {
			c.deleting = true
			live = append(live, spi)
			sa.out.Ops = append(sa.out.Ops, ChildOp{Kind: OpDeactivate, Name: c.Name, SPIi: sa.spiI, SPIr: sa.spiR,
				InSPI: c.InSPI, OutSPI: c.OutSPI, Local: sa.local, Remote: sa.remote})
		}
	}
	t.spis = live
	if len(live) > 0 {
		m.add(&wire.Delete{Protocol: wire.ProtoESP, SPIs: live})
	}
	return needMore, nil
}

func (t *childDelete) process(sa *SA, m *msgIn) (status, error) {
	for _, spi := range t.spis {
		h, c := sa.holder(spi) // the pair may have moved in an IKE rekey
		sa.removeFrom(h, c, t.reason)
	}
	return done, nil
}

func (sa *SA) childByInSPI(spi uint32) *ChildSA {
	for _, c := range sa.children {
		if c.InSPI == spi {
			return c
		}
	}
	return nil
}

// removeChild takes a pair out of the data plane and the SA, with its
// child-down event. A nil c is ignored.
func (sa *SA) removeChild(c *ChildSA, reason string) {
	i := slices.Index(sa.children, c)
	if c == nil || i < 0 {
		return
	}
	sa.children = slices.Delete(sa.children, i, i+1)
	sa.activateSuccessor(c)
	sa.out.Ops = append(sa.out.Ops, ChildOp{Kind: OpDelete, Name: c.Name, SPIi: sa.spiI, SPIr: sa.spiR,
		InSPI: c.InSPI, OutSPI: c.OutSPI, Local: sa.local, Remote: sa.remote})
	ev := Event{Kind: EventChildDown, Child: c.Name, InSPI: c.InSPI, OutSPI: c.OutSPI, Reason: reason}
	sa.fillEvent(&ev)
	sa.out.Events = append(sa.out.Events, ev)
}
