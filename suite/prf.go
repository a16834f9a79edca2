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

// PRF describes a pseudorandom function transform (Transform Type 2).
type PRF struct {
	ID wire.PRFID
	// Size is the output length in octets.
	Size int
	// KeyLen is the preferred key length (RFC 4868 §2.1.2: equal to the
	// output size); it is the length of SK_d, SK_pi and SK_pr (RFC 7296 §2.14).
	KeyLen int
	hash   func() hash.Hash
}

// Transform is the proposal transform naming this descriptor.
func (p *PRF) Transform() wire.Transform {
	return wire.Transform{Type: wire.TransformPRF, ID: uint16(p.ID)}
}

func (p *PRF) String() string { return p.Transform().String() }

// New returns a keyed instance; HMAC accepts keys of any length
// (RFC 2104 §2), which SKEYSEED relies on (RFC 7296 §2.14).
func (p *PRF) New(key []byte) hash.Hash { return hmac.New(p.hash, key) }

// Compute returns prf(key, data[0] | data[1] | ...).
func (p *PRF) Compute(key []byte, data ...[]byte) []byte {
	h := p.New(key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// Plus is prf+ (RFC 7296 §2.13): T1 | T2 | ... truncated to n octets, where
// T1 = prf(K, S | 0x01) and Tk = prf(K, Tk-1 | S | k). n may not exceed
// 255 blocks.
func (p *PRF) Plus(key, seed []byte, n int) []byte {
	if n < 0 || n > 255*p.Size {
		panic("suite: prf+ output length out of range") // programming error, never input-driven
	}
	out := make([]byte, 0, n+p.Size)
	h := p.New(key)
	var t []byte
	for i := byte(1); len(out) < n; i++ {
		h.Reset()
		h.Write(t)
		h.Write(seed)
		h.Write([]byte{i})
		t = h.Sum(out[len(out):len(out)])
		out = out[:len(out)+len(t)]
	}
	return out[:n]
}

var prfTable = map[wire.PRFID]*PRF{
	wire.PRF_HMAC_SHA1:     {ID: wire.PRF_HMAC_SHA1, Size: 20, KeyLen: 20, hash: sha1.New},
	wire.PRF_HMAC_SHA2_256: {ID: wire.PRF_HMAC_SHA2_256, Size: 32, KeyLen: 32, hash: sha256.New},
	wire.PRF_HMAC_SHA2_384: {ID: wire.PRF_HMAC_SHA2_384, Size: 48, KeyLen: 48, hash: sha512.New384},
	wire.PRF_HMAC_SHA2_512: {ID: wire.PRF_HMAC_SHA2_512, Size: 64, KeyLen: 64, hash: sha512.New},
}

// LookupPRF returns the descriptor for a PRF transform, or a
// *ForbiddenError (RFC 8247 §2.2) or *NotSupportedError.
func LookupPRF(id wire.PRFID) (*PRF, error) {
	t := wire.Transform{Type: wire.TransformPRF, ID: uint16(id)}
	if err := CheckIKE(t); err != nil {
		return nil, err
	}
	if p := prfTable[id]; p != nil {
		return p, nil
	}
	return nil, &NotSupportedError{Transform: t}
}

// PRFs lists, ordered by ID, every registered PRF.
func PRFs() []*PRF {
	out := make([]*PRF, 0, len(prfTable))
	for _, p := range prfTable {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *PRF) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
