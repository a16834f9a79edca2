package suite

import (
	"errors"

	"github.com/petrel-vpn/petrel/wire"
)

// Negotiated is the descriptor set of one chosen proposal: a responder's
// reply carries exactly one transform of each type it uses (RFC 7296
// §3.3.6).
type Negotiated struct {
	Encr  *Encr
	PRF   *PRF      // IKE SAs only
	Integ *Integ    // nil for AEAD transforms (and AUTH_NONE)
	KE    *KEMethod // nil when absent (a Child SA without PFS)
	// AddKE are RFC 9370's additional key exchanges ADDKE1..ADDKE7; nil
	// where absent or NONE.
	AddKE [7]*KEMethod
	ESN   bool // Child SAs only: extended sequence numbers chosen
}

// Suite returns the IKE SA protection suite.
func (n *Negotiated) Suite() Suite { return Suite{Encr: n.Encr, PRF: n.PRF, Integ: n.Integ} }

// NegotiatedIKE resolves a chosen IKE SA proposal. It requires ENCR, PRF
// and KE, INTEG exactly when ENCR is not an AEAD (RFC 7296 §3.3), and no
// ESN; every transform must pass RFC 8247 and be implemented.
func NegotiatedIKE(ts []wire.Transform) (*Negotiated, error) {
	n, err := resolve(ts, false)
	if err != nil {
		return nil, err
	}
	if n.PRF == nil || n.KE == nil {
		return nil, errors.New("suite: IKE proposal needs ENCR, PRF and KE transforms (RFC 7296 §3.3.3)")
	}
	return n, checkEncrInteg(n.Encr, n.Integ)
}

// NegotiatedESP resolves a chosen ESP proposal under RFC 8221: ENCR, INTEG
// unless AEAD, an optional KE (PFS, RFC 7296 §1.3.1) and RFC 9370 ADDKEs,
// and ESN. KEYMAT lengths come from Encr.KeyMatLen and Integ.KeyLen.
func NegotiatedESP(ts []wire.Transform) (*Negotiated, error) {
	n, err := resolve(ts, true)
	if err != nil {
		return nil, err
	}
	if n.PRF != nil {
		return nil, errors.New("suite: ESP proposal must not carry a PRF transform (RFC 7296 §3.3.3)")
	}
	if n.Encr.AEAD() && n.Integ != nil {
		return nil, errors.New("suite: INTEG must be absent with an AEAD (RFC 7296 §3.3, RFC 8221 §5)")
	}
	if !n.Encr.AEAD() && n.Integ == nil {
		return nil, errors.New("suite: ESP proposal needs INTEG with a non-AEAD cipher (RFC 8221 §3)")
	}
	return n, nil
}

func resolve(ts []wire.Transform, esp bool) (*Negotiated, error) {
	n := &Negotiated{}
	seen := map[wire.TransformType]bool{}
	check := CheckIKE
	if esp {
		check = CheckESP
	}
	for _, t := range ts {
		if seen[t.Type] {
			return nil, errors.New("suite: chosen proposal has two " + t.Type.String() + " transforms (RFC 7296 §3.3.6)")
		}
		seen[t.Type] = true
		if err := check(t); err != nil {
			return nil, err
		}
		var err error
		switch {
		case t.Type == wire.TransformENCR:
			n.Encr, err = lookupEncr(t)
		case t.Type == wire.TransformPRF:
			n.PRF, err = LookupPRF(wire.PRFID(t.ID))
		case t.Type == wire.TransformINTEG:
			if wire.IntegID(t.ID) != wire.IntegNONE {
				n.Integ, err = LookupInteg(wire.IntegID(t.ID))
			}
		case t.Type.IsKE():
			var m *KEMethod
			if wire.KEID(t.ID) != wire.KENone {
				m, err = LookupKE(wire.KEID(t.ID))
			}
			if t.Type == wire.TransformKE {
				n.KE = m
			} else {
				n.AddKE[t.Type-wire.TransformADDKE1] = m
			}
		case t.Type == wire.TransformESN && esp && t.ID <= uint16(wire.ESNOn):
			n.ESN = wire.ESNID(t.ID) == wire.ESNOn
		default:
			err = &NotSupportedError{Transform: t}
		}
		if err != nil {
			return nil, err
		}
	}
	if n.Encr == nil {
		return nil, errors.New("suite: chosen proposal has no ENCR transform")
	}
	return n, nil
}
