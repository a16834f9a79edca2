package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// Child is one Child SA as the engine negotiated it, both directions: what
// the IKE core's install operation carries, in this package's terms. The
// daemon fills it from the engine's output and calls InstallChild.
type Child struct {
	// ReqID identifies the Child SA's configuration; keep it across
	// rekeys so the new SAs replace the old ones for the same policies.
	ReqID uint32
	// IfID, when non-zero, makes the Child route-based (no policies).
	IfID uint32
	// InSPI is ours (peer -> us), OutSPI the peer's (us -> peer).
	InSPI, OutSPI uint32
	Mode          esp.Mode
	ESN           bool
	Encr          wire.EncrID
	Integ         wire.IntegID
	// EncrIn/IntegIn open inbound traffic, EncrOut/IntegOut seal outbound
	// (RFC 7296 §2.17 order resolved for this side; AEAD keys with salt).
	EncrIn, IntegIn, EncrOut, IntegOut []byte
	LocalTS, RemoteTS                  []Selector
	Local, Remote                      netip.AddrPort
	UDPEncap                           bool
	ReplayWindow                       int
}

func (c *Child) sa(dir Direction) SA {
	sa := SA{Dir: dir, ReqID: c.ReqID, IfID: c.IfID, Mode: c.Mode, Local: c.Local, Remote: c.Remote,
		Encap: c.UDPEncap, Encr: c.Encr, Integ: c.Integ, ESN: c.ESN, ReplayWindow: c.ReplayWindow,
		LocalTS: c.LocalTS, RemoteTS: c.RemoteTS}
	if dir == In {
		sa.SPI, sa.EncrKey, sa.IntegKey = c.InSPI, c.EncrIn, c.IntegIn
	} else {
		sa.SPI, sa.EncrKey, sa.IntegKey = c.OutSPI, c.EncrOut, c.IntegOut
	}
	return sa
}

// policies are the outbound policies of a policy-based Child: one per pair
// of local and remote selectors of the same address family.
func (c *Child) policies() []Policy {
	if c.IfID != 0 {
		return nil
	}
	var ps []Policy
	for _, l := range c.LocalTS {
		for _, r := range c.RemoteTS {
			if l.Start.Is4() == r.Start.Is4() {
				ps = append(ps, Policy{Local: l, Remote: r, ReqID: c.ReqID})
			}
		}
	}
	return ps
}

// InstallChild installs a Child SA in the order that loses no packet
// (RFC 7296 §2.8, make-before-break): inbound SA, outbound SA, then its
// policies (already present ones, from the SA being rekeyed, are kept).
// On failure what it installed is removed again.
func InstallChild(dp DataPlane, c *Child) error {
	if err := dp.AddSA(c.sa(In)); err != nil {
		return fmt.Errorf("dataplane: child reqid %d inbound: %w", c.ReqID, err)
	}
	if err := dp.AddSA(c.sa(Out)); err != nil {
		dp.DeleteSA(In, c.InSPI)
		return fmt.Errorf("dataplane: child reqid %d outbound: %w", c.ReqID, err)
	}
	for _, p := range c.policies() {
		if err := dp.AddPolicy(p); err != nil && !errors.Is(err, ErrExists) {
			dp.DeleteSA(Out, c.OutSPI)
			dp.DeleteSA(In, c.InSPI)
			return fmt.Errorf("dataplane: child reqid %d policy: %w", c.ReqID, err)
		}
	}
	return nil
}

// RemoveChild deletes a Child SA's two SAs (zeroing their keys) and, unless
// a successor keeps using them (rekey), its policies.
func RemoveChild(dp DataPlane, c *Child, keepPolicies bool) error {
	errs := []error{dp.DeleteSA(Out, c.OutSPI), dp.DeleteSA(In, c.InSPI)}
	if !keepPolicies {
		for _, p := range c.policies() {
			errs = append(errs, dp.DeletePolicy(p))
		}
	}
	return errors.Join(errs...)
}

// AllocSPI is AllocateSPI under the name the IKE core's SPIAllocator uses.
func (u *Userspace) AllocSPI() (uint32, error) { return u.AllocateSPI() }
