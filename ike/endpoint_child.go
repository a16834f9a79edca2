package ike

import (
	"fmt"
	"time"
)

// CreateChild negotiates an additional Child SA for the named child of the
// IKE SA with local SPI spi, in a CREATE_CHILD_SA exchange (RFC 7296
// §1.3.1). The result arrives as EventChildUp or EventChildFailed.
func (ep *Endpoint) CreateChild(now time.Time, spi uint64, child string, out *Output) error {
	sa := ep.sas[spi]
	if sa == nil || sa.state != stateEstablished {
		return ErrNoSA
	}
	cfg := sa.conn.child(child)
	if cfg == nil {
		return fmt.Errorf("%w: connection %q has no child %q", ErrConfig, sa.conn.Name, child)
	}
	ep.run(sa, now, out, func() {
		sa.queue(newChildCreate(cfg))
		sa.initiate(now, out)
	})
	return nil
}

// DeleteChild deletes the Child SAs of the IKE SA with local SPI spi whose
// inbound SPIs are given, in one INFORMATIONAL exchange (RFC 7296 §1.4.1).
func (ep *Endpoint) DeleteChild(now time.Time, spi uint64, inSPIs []uint32, out *Output) error {
	sa := ep.sas[spi]
	if sa == nil || sa.state != stateEstablished {
		return ErrNoSA
	}
	for _, s := range inSPIs {
		if sa.childByInSPI(s) == nil {
			return fmt.Errorf("%w: no Child SA with inbound SPI %08x", ErrNoSA, s)
		}
	}
	ep.run(sa, now, out, func() {
		sa.queue(&childDelete{spis: append([]uint32(nil), inSPIs...), reason: "deleted"})
		sa.initiate(now, out)
	})
	return nil
}

func (c *Connection) child(name string) *ChildConfig {
	for i := range c.Children {
		if c.Children[i].Name == name {
			return &c.Children[i]
		}
	}
	return nil
}

// queueMoreChildren: the first configured child came up in IKE_AUTH; the
// initiator asks for the others in CREATE_CHILD_SA exchanges (§1.3.1).
func (sa *SA) queueMoreChildren() {
	if !sa.initiator || sa.conn == nil {
		return
	}
	for i := 1; i < len(sa.conn.Children); i++ {
		sa.queue(newChildCreate(&sa.conn.Children[i]))
	}
}

// RekeyChild rekeys the Child SA with inbound SPI inSPI (RFC 7296 §1.3.3):
// the new pair is installed before the old one is deleted.
func (ep *Endpoint) RekeyChild(now time.Time, spi uint64, inSPI uint32, out *Output) error {
	sa := ep.sas[spi]
	if sa == nil || sa.state != stateEstablished {
		return ErrNoSA
	}
	if sa.childByInSPI(inSPI) == nil {
		return fmt.Errorf("%w: no Child SA with inbound SPI %08x", ErrNoSA, inSPI)
	}
	ep.run(sa, now, out, func() {
		sa.queue(newChildRekey(inSPI))
		sa.initiate(now, out)
	})
	return nil
}

// RekeyIKE rekeys the IKE SA with local SPI spi (RFC 7296 §1.3.2): a new
// IKE SA takes its Child SAs, then the old one is deleted. The new SA's
// SPI arrives in EventIKERekeyed.
func (ep *Endpoint) RekeyIKE(now time.Time, spi uint64, out *Output) error {
	sa := ep.sas[spi]
	if sa == nil || sa.state != stateEstablished || sa.replaced != nil {
		return ErrNoSA
	}
	ep.run(sa, now, out, func() {
		sa.queue(newIKERekey())
		sa.initiate(now, out)
	})
	return nil
}
