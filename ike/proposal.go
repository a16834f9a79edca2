package ike

import (
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// Proposal selection (RFC 7296 §2.7, §3.3.6). A configured proposal is a
// list of transforms in preference order; several transforms of one type are
// ORed. The responder picks one proposal and exactly one transform of each
// type present in it.

// typesOf is the set of transform types a proposal carries, as a bitmask.
func typesOf(ts []wire.Transform) uint16 {
	var m uint16
	for _, t := range ts {
		if t.Type < 16 {
			m |= 1 << t.Type
		}
	}
	return m
}

// acceptableFn says whether this side can use transform t at all (it is
// implemented and allowed by policy).
type acceptableFn func(t wire.Transform) bool

func ikeAcceptable(t wire.Transform) bool { return suite.Supported(t) == nil }

func espAcceptable(t wire.Transform) bool {
	if suite.CheckESP(t) != nil {
		return false
	}
	switch {
	case t.Type == wire.TransformENCR:
		_, err := suite.LookupESPEncr(wire.EncrID(t.ID), int(t.KeyLength))
		return err == nil
	case t.Type == wire.TransformINTEG:
		if wire.IntegID(t.ID) == wire.IntegNONE {
			return true
		}
		_, err := suite.LookupInteg(wire.IntegID(t.ID))
		return err == nil
	case t.Type == wire.TransformESN:
		return t.ID <= uint16(wire.ESNOn)
	case t.Type == wire.TransformKE:
		return suite.Supported(t) == nil
	}
	return false
}

// peerTransforms flattens a received proposal; a transform with attributes
// other than Key Length is one we do not understand and is skipped
// (RFC 7296 §3.3.6).
func peerTransforms(p *wire.Proposal) []wire.Transform {
	out := make([]wire.Transform, 0, len(p.Transforms))
	for i := range p.Transforms {
		if len(p.Transforms[i].Attrs) != 0 {
			continue
		}
		out = append(out, p.Transforms[i].Transform)
	}
	return out
}

// isNoneTransform: INTEG NONE and KE NONE are the same as leaving the type
// out (RFC 7296 §3.3.2 for INTEG with AEAD, §3.3.3 for KE).
func isNoneTransform(t wire.Transform) bool {
	return (t.Type == wire.TransformINTEG && t.ID == uint16(wire.IntegNONE)) ||
		(t.Type == wire.TransformKE && t.ID == uint16(wire.KENone))
}

// matchProposal returns one transform per type that both lists share, or
// ok=false. Within a type, pref's order decides.
func matchProposal(pref, other []wire.Transform, ok acceptableFn) ([]wire.Transform, bool) {
	strip := func(ts []wire.Transform) []wire.Transform {
		out := make([]wire.Transform, 0, len(ts))
		for _, t := range ts {
			if !isNoneTransform(t) {
				out = append(out, t)
			}
		}
		return out
	}
	pref, other = strip(pref), strip(other)
	if typesOf(pref) != typesOf(other) {
		return nil, false
	}
	var chosen []wire.Transform
	for typ := wire.TransformType(1); typ < 16; typ++ {
		if typesOf(pref)&(1<<typ) == 0 {
			continue
		}
		found := false
		for _, a := range pref {
			if a.Type != typ || !ok(a) {
				continue
			}
			for _, b := range other {
				if a == b {
					chosen = append(chosen, a)
					found = true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	// RFC 7296 §3.3: an AEAD cipher is proposed without an integrity
	// algorithm; a non-AEAD one needs one.
	if e := firstOfType(chosen, wire.TransformENCR); e != nil {
		aead := isAEAD(*e)
		hasInteg := firstOfType(chosen, wire.TransformINTEG) != nil
		if aead == hasInteg {
			return nil, false
		}
	}
	return chosen, true
}

func isAEAD(t wire.Transform) bool {
	switch wire.EncrID(t.ID) {
	case wire.EncrAES_GCM_8, wire.EncrAES_GCM_12, wire.EncrAES_GCM_16,
		wire.EncrAES_CCM_8, wire.EncrAES_CCM_12, wire.EncrAES_CCM_16,
		wire.EncrCHACHA20_POLY1305, wire.EncrNULL_AUTH_AES_GMAC:
		return true
	}
	return false
}

// selected is the outcome of a selection: the peer's proposal it came from
// and one transform per type.
type selected struct {
	num        uint8
	spi        []byte
	transforms []wire.Transform
}

// selectProposal chooses among the peer's proposals of protocol proto.
func selectProposal(local [][]wire.Transform, peer []wire.Proposal, proto wire.ProtocolID,
	policy ProposalPolicy, ok acceptableFn) (selected, bool) {
	try := func(l []wire.Transform, p *wire.Proposal) (selected, bool) {
		if p.Protocol != proto {
			return selected{}, false
		}
		pt := peerTransforms(p)
		var ts []wire.Transform
		var m bool
		if policy == PreferPeer {
			ts, m = matchProposal(pt, l, ok)
		} else {
			ts, m = matchProposal(l, pt, ok)
		}
		if !m {
			return selected{}, false
		}
		return selected{num: p.Number, spi: p.SPI, transforms: ts}, true
	}
	if policy == PreferPeer {
		for i := range peer {
			for _, l := range local {
				if s, m := try(l, &peer[i]); m {
					return s, true
				}
			}
		}
		return selected{}, false
	}
	for _, l := range local {
		for i := range peer {
			if s, m := try(l, &peer[i]); m {
				return s, true
			}
		}
	}
	return selected{}, false
}

// offersKE reports whether the peer's proposal numbered num offers KE method
// ke and the local proposals accept it: then a responder can use the group
// of the KE payload instead of its own first choice (RFC 7296 §1.2).
func offersKE(peer []wire.Proposal, num uint8, ke wire.KEID) bool {
	for i := range peer {
		if peer[i].Number != num {
			continue
		}
		for _, t := range peerTransforms(&peer[i]) {
			if t.Type == wire.TransformKE && t.ID == uint16(ke) {
				return true
			}
		}
	}
	return false
}

// toWireSA builds an SA payload from configured proposals, numbered from 1
// (RFC 7296 §3.3.1), each with the given SPI.
func toWireSA(props [][]wire.Transform, proto wire.ProtocolID, spi []byte) *wire.SA {
	sa := &wire.SA{Proposals: make([]wire.Proposal, len(props))}
	for i, p := range props {
		wp := &sa.Proposals[i]
		wp.Number = uint8(i + 1)
		wp.Protocol = proto
		wp.SPI = spi
		wp.Transforms = make([]wire.ProposalTransform, len(p))
		for j, t := range p {
			wp.Transforms[j].Transform = t
		}
	}
	return sa
}

// chosenSA is the responder's answer: one proposal with the peer's number,
// one transform per type.
func chosenSA(s selected, proto wire.ProtocolID, spi []byte) *wire.SA {
	sa := toWireSA([][]wire.Transform{s.transforms}, proto, spi)
	sa.Proposals[0].Number = s.num
	return sa
}

// withoutKE drops key exchange transforms from configured proposals: the
// first Child SA, created in IKE_AUTH, takes its keys from the IKE SA's
// exchange (RFC 7296 §1.2), and peers such as strongSwan still list their
// PFS groups there. Proposals that become duplicates stay; harmless.
func withoutKE(props [][]wire.Transform) [][]wire.Transform {
	out := make([][]wire.Transform, len(props))
	for i, p := range props {
		for _, t := range p {
			if !t.Type.IsKE() {
				out[i] = append(out[i], t)
			}
		}
	}
	return out
}

// peerWithoutKE is withoutKE for received proposals.
func peerWithoutKE(ps []wire.Proposal) []wire.Proposal {
	out := make([]wire.Proposal, len(ps))
	for i, p := range ps {
		out[i] = p
		out[i].Transforms = nil
		for _, t := range p.Transforms {
			if !t.Type.IsKE() {
				out[i].Transforms = append(out[i].Transforms, t)
			}
		}
	}
	return out
}
