package suite

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// Integ describes an integrity transform (Transform Type 3): HMAC truncated
// to ICVLen octets (RFC 2404, RFC 4868 §2.3).
type Integ struct {
	ID     wire.IntegID
	KeyLen int // octets of SK_ai / SK_ar (RFC 4868 §2.1.1: the hash output size)
	ICVLen int // octets of the truncated MAC
	hash   func() hash.Hash
}

// Transform is the proposal transform naming this descriptor.
func (g *Integ) Transform() wire.Transform {
	return wire.Transform{Type: wire.TransformINTEG, ID: uint16(g.ID)}
}

func (g *Integ) String() string { return g.Transform().String() }

// New returns a keyed HMAC; callers truncate Sum to ICVLen.
func (g *Integ) New(key []byte) hash.Hash { return hmac.New(g.hash, key) }

// MAC returns the truncated ICV of data under key.
func (g *Integ) MAC(key []byte, data ...[]byte) []byte {
	h := g.New(key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)[:g.ICVLen]
}

var integTable = map[wire.IntegID]*Integ{
	wire.IntegHMAC_SHA1_96:      {ID: wire.IntegHMAC_SHA1_96, KeyLen: 20, ICVLen: 12, hash: sha1.New},
	wire.IntegHMAC_SHA2_256_128: {ID: wire.IntegHMAC_SHA2_256_128, KeyLen: 32, ICVLen: 16, hash: sha256.New},
	wire.IntegHMAC_SHA2_384_192: {ID: wire.IntegHMAC_SHA2_384_192, KeyLen: 48, ICVLen: 24, hash: sha512.New384},
	wire.IntegHMAC_SHA2_512_256: {ID: wire.IntegHMAC_SHA2_512_256, KeyLen: 64, ICVLen: 32, hash: sha512.New},
}

// LookupInteg returns the descriptor for an integrity transform, or a
// *ForbiddenError (RFC 8247 §2.3) or *NotSupportedError. IntegNONE is not a
// descriptor: AEAD suites simply have no Integ (nil).
func LookupInteg(id wire.IntegID) (*Integ, error) {
	t := wire.Transform{Type: wire.TransformINTEG, ID: uint16(id)}
	if err := CheckIKE(t); err != nil {
		return nil, err
	}
	if g := integTable[id]; g != nil {
		return g, nil
	}
	return nil, &NotSupportedError{Transform: t}
}

// Integs lists, ordered by ID, every registered integrity transform.
func Integs() []*Integ {
	out := make([]*Integ, 0, len(integTable))
	for _, g := range integTable {
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *Integ) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
