package ike

import (
	"errors"
	"io"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// suiteOf resolves a negotiated IKE proposal (one transform per type).
func suiteOf(ts []wire.Transform) (suite.Suite, wire.KEID, error) {
	var s suite.Suite
	var ke wire.KEID
	for _, t := range ts {
		var err error
		switch t.Type {
		case wire.TransformENCR:
			s.Encr, err = suite.LookupEncr(wire.EncrID(t.ID), int(t.KeyLength))
		case wire.TransformPRF:
			s.PRF, err = suite.LookupPRF(wire.PRFID(t.ID))
		case wire.TransformINTEG:
			if wire.IntegID(t.ID) != wire.IntegNONE {
				s.Integ, err = suite.LookupInteg(wire.IntegID(t.ID))
			}
		case wire.TransformKE:
			ke = wire.KEID(t.ID)
		}
		if err != nil {
			return s, 0, err
		}
	}
	if ke == wire.KENone {
		return s, 0, errors.New("ike: IKE proposal without a key exchange method")
	}
	return s, ke, s.Validate()
}

// deriveIKEKeys computes SKEYSEED and the SK_* keys (RFC 7296 §2.14) and
// sets up SK protection. shared is zeroed.
func (sa *SA) deriveIKEKeys(s suite.Suite, shared []byte) error {
	defer clear(shared)
	var skeyseed []byte
	if old := sa.rekeyFrom; old != nil && old.skd != nil {
		// RFC 7296 §2.18: a rekeyed IKE SA is keyed from the old SK_d,
		// with the old SA's PRF.
		skeyseed = suite.RekeySKEYSEED(old.suite.PRF, old.skd, shared, sa.ni, sa.nr)
		sa.rekeyFrom = nil
	} else {
		skeyseed = suite.SKEYSEED(s.PRF, sa.ni, sa.nr, shared)
	}
	defer clear(skeyseed)
	k, err := suite.DeriveIKEKeys(s, skeyseed, sa.ni, sa.nr, sa.spiI, sa.spiR)
	if err != nil {
		return err
	}
	defer k.Zero()
	prot, err := suite.NewIKEProtector(s, k, sa.initiator)
	if err != nil {
		return err
	}
	sa.suite, sa.prot = s, prot
	sa.skd = clone(k.SKd)
	sa.skpi, sa.skpr = clone(k.SKpi), clone(k.SKpr)
	if kl := sa.ep.cfg.KeyLog; kl != nil {
		rec := keylog.IKESA{
			SPIi: sa.spiI, SPIr: sa.spiR, Encr: s.Encr.ID, EncrKeyBits: s.Encr.KeyBits,
			SKei: k.SKei, SKer: k.SKer, SKai: k.SKai, SKar: k.SKar,
		}
		if rec.EncrKeyBits == 0 {
			rec.EncrKeyBits = s.Encr.KeyLen * 8
		}
		if s.Integ != nil {
			rec.Integ = s.Integ.ID
		}
		if err := kl.LogIKE(rec); err != nil {
			sa.log().Debug("ike: key log", "err", err)
		}
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// nonceLen is our nonce size: at least 128 bits and half the PRF key size
// of any PRF we offer (RFC 7296 §2.10).
const nonceLen = 32

func readNonce(r io.Reader) ([]byte, error) {
	n := make([]byte, nonceLen)
	if _, err := io.ReadFull(r, n); err != nil {
		return nil, errors.New("ike: reading nonce: " + err.Error())
	}
	return n, nil
}
