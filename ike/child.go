package ike

import (
	"encoding/binary"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// Helpers shared by the Child SA tasks: traffic selector conversion, Child
// SA key material and the install operation.

func toWireTS(list []TrafficSelector, responder bool) *wire.TS {
	ts := &wire.TS{Responder: responder, Selectors: make([]wire.TrafficSelector, len(list))}
	for i, t := range list {
		ts.Selectors[i] = wire.TrafficSelector{IPProtocol: t.Proto, StartPort: t.StartPort, EndPort: t.EndPort, Start: t.Start, End: t.End}
	}
	return ts
}

func fromWireTS(ts *wire.TS) []TrafficSelector {
	if ts == nil {
		return nil
	}
	out := make([]TrafficSelector, 0, len(ts.Selectors))
	for _, s := range ts.Selectors {
		out = append(out, TrafficSelector{Proto: s.IPProtocol, StartPort: s.StartPort, EndPort: s.EndPort, Start: s.Start, End: s.End})
	}
	return out
}

// defaultTS is the traffic selector of a child that configures none: the
// IKE address itself (strongSwan's "dynamic").
func defaultTS(list []TrafficSelector, addr TrafficSelector) []TrafficSelector {
	if len(list) > 0 {
		return list
	}
	return []TrafficSelector{addr}
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

// childNotifyErrors are the error notifications that concern only the
// Child SA of an IKE_AUTH or CREATE_CHILD_SA exchange (RFC 7296 §1.2,
// §3.10.1): the IKE SA survives them.
var childNotifyErrors = []wire.NotifyType{
	wire.NO_PROPOSAL_CHOSEN, wire.TS_UNACCEPTABLE, wire.SINGLE_PAIR_REQUIRED, wire.INTERNAL_ADDRESS_FAILURE,
	wire.FAILED_CP_REQUIRED, wire.INVALID_SELECTORS, wire.NO_ADDITIONAL_SAS, wire.TEMPORARY_FAILURE,
}

// installChild installs the first Child SA, keyed from IKE_SA_INIT's
// nonces (RFC 7296 §2.17), whose exchange initiator is the IKE initiator.
func (sa *SA) installChild(cfg *ChildConfig, ts []wire.Transform, inSPI, outSPI uint32,
	localTS, remoteTS []TrafficSelector, mode Mode) error {
	_, err := sa.installChildKeyed(cfg, ts, inSPI, outSPI, localTS, remoteTS, mode,
		childKeyInput{ni: sa.ni, nr: sa.nr, initiator: sa.initiator})
	return err
}

// childKeyInput is what KEYMAT is drawn from (RFC 7296 §2.17): the nonces
// of the exchange that created the Child SA, the optional fresh shared
// secret of a CREATE_CHILD_SA with PFS, and whether we initiated that
// exchange (its initiator's outbound keys come first).
type childKeyInput struct {
	gir, ni, nr []byte
	initiator   bool
}

// installChildKeyed derives KEYMAT (RFC 7296 §2.17), emits the install
// operation, the event and the key log lines, and records the Child SA.
func (sa *SA) installChildKeyed(cfg *ChildConfig, ts []wire.Transform, inSPI, outSPI uint32,
	localTS, remoteTS []TrafficSelector, mode Mode, k childKeyInput) (*ChildSA, error) {
	c := &ChildSA{Name: cfg.Name, InSPI: inSPI, OutSPI: outSPI, Mode: mode, LocalTS: localTS, RemoteTS: remoteTS, cfg: cfg}
	var encr *suite.Encr
	var integ *suite.Integ
	for _, t := range ts {
		var err error
		switch t.Type {
		case wire.TransformENCR:
			encr, err = suite.LookupESPEncr(wire.EncrID(t.ID), int(t.KeyLength))
		case wire.TransformINTEG:
			if wire.IntegID(t.ID) != wire.IntegNONE {
				integ, err = suite.LookupInteg(wire.IntegID(t.ID))
			}
		case wire.TransformESN:
			c.ESN = t.ID == uint16(wire.ESNOn)
		}
		if err != nil {
			return nil, err
		}
	}
	if encr == nil {
		return nil, notifyErr(wire.NO_PROPOSAL_CHOSEN, "ESP proposal without ENCR")
	}
	integLen := 0
	if integ != nil {
		integLen = integ.KeyLen
		c.Integ = integ.ID
	}
	c.Encr, c.EncrKeyBits = encr.ID, encr.KeyBits
	if c.EncrKeyBits == 0 {
		c.EncrKeyBits = encr.KeyLen * 8
	}
	n := suite.ChildKeymatLen(encr.KeyMatLen(), integLen)
	km, err := suite.ChildKeymat(sa.suite.PRF, sa.skd, k.gir, k.ni, k.nr, n)
	if err != nil {
		return nil, err
	}
	keys, err := suite.SplitChildKeymat(km, encr.KeyMatLen(), integLen)
	clear(km)
	if err != nil {
		return nil, err
	}
	op := ChildOp{
		Kind: OpInstall, Name: cfg.Name, SPIi: sa.spiI, SPIr: sa.spiR, InSPI: inSPI, OutSPI: outSPI,
		Mode: mode, ESN: c.ESN, Encr: c.Encr, EncrKeyBits: c.EncrKeyBits, Integ: c.Integ,
		LocalTS: localTS, RemoteTS: remoteTS, Local: sa.local, Remote: sa.remote, UDPEncap: sa.udpEncap(),
	}
	// Keys flowing initiator → responder come first (RFC 7296 §2.17).
	if k.initiator {
		op.EncrOut, op.IntegOut, op.EncrIn, op.IntegIn = keys.EncrI, keys.IntegI, keys.EncrR, keys.IntegR
	} else {
		op.EncrIn, op.IntegIn, op.EncrOut, op.IntegOut = keys.EncrI, keys.IntegI, keys.EncrR, keys.IntegR
	}
	c.timers = newChildTimers(sa, cfg)
	sa.children = append(sa.children, c)
	sa.out.Ops = append(sa.out.Ops, op)
	ev := Event{Kind: EventChildUp, Child: cfg.Name, InSPI: inSPI, OutSPI: outSPI}
	sa.fillEvent(&ev)
	sa.out.Events = append(sa.out.Events, ev)
	if kl := sa.ep.cfg.KeyLog; kl != nil {
		v6 := sa.local.Addr().Is6() && !sa.local.Addr().Is4In6()
		in := keylog.ESPSA{IPv6: v6, Src: sa.remote.Addr(), Dst: sa.local.Addr(), SPI: inSPI, Encr: c.Encr,
			EncrKeyBits: c.EncrKeyBits, Integ: c.Integ, EncrKey: op.EncrIn, IntegKey: op.IntegIn}
		outSA := keylog.ESPSA{IPv6: v6, Src: sa.local.Addr(), Dst: sa.remote.Addr(), SPI: outSPI, Encr: c.Encr,
			EncrKeyBits: c.EncrKeyBits, Integ: c.Integ, EncrKey: op.EncrOut, IntegKey: op.IntegOut}
		for _, e := range []keylog.ESPSA{in, outSA} {
			if err := kl.LogESP(e); err != nil {
				sa.log().Debug("ike: key log", "err", err)
			}
		}
	}
	return c, nil
}

func (sa *SA) childFailed(name, reason string) {
	ev := Event{Kind: EventChildFailed, Child: name, Reason: reason}
	sa.fillEvent(&ev)
	sa.out.Events = append(sa.out.Events, ev)
	sa.info("ike: Child SA failed", "child", name, "reason", reason)
}
