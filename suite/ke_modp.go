package suite

import (
	"crypto/rand"
	"math/big"

	"github.com/petrel-vpn/petrel/wire"
)

// modpGroup is a finite-field Diffie-Hellman group (RFC 3526), generator 2.
// math/big is not constant time; the exponent is ephemeral and used once.
type modpGroup struct {
	p, pMinus1 *big.Int
	g          *big.Int
	expBits    int // private exponent size, upper end of RFC 3526 §8's table
}

func init() {
	for _, g := range []struct {
		id      wire.KEID
		expBits int
	}{
		{wire.KEMODP2048, 320}, {wire.KEMODP3072, 420}, {wire.KEMODP4096, 480},
		{wire.KEMODP6144, 540}, {wire.KEMODP8192, 620},
	} {
		p, ok := new(big.Int).SetString(modpPrimes[int(g.id)], 16)
		if !ok {
			panic("suite: bad MODP prime table")
		}
		n := (p.BitLen() + 7) / 8
		regKE(&KEMethod{
			ID: g.id, InitiatorLen: n, ResponderLen: n, SharedLen: n,
			impl: &modpGroup{p: p, pMinus1: new(big.Int).Sub(p, big.NewInt(1)), g: big.NewInt(2), expBits: g.expBits},
		})
	}
}

type modpState struct {
	m   *KEMethod
	grp *modpGroup
	x   *big.Int
	pub []byte
}

func (g *modpGroup) generate(m *KEMethod) (KEState, error) {
	// x uniform in [2^(expBits-1), 2^expBits): never 0 or 1.
	buf := make([]byte, g.expBits/8)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	buf[0] |= 0x80
	x := new(big.Int).SetBytes(buf)
	clear(buf)
	return g.fromPrivate(m, x), nil
}

func (g *modpGroup) fromPrivate(m *KEMethod, x *big.Int) *modpState {
	y := new(big.Int).Exp(g.g, x, g.p)
	return &modpState{m: m, grp: g, x: x, pub: y.FillBytes(make([]byte, m.InitiatorLen))}
}

func (g *modpGroup) respond(m *KEMethod, peer []byte) ([]byte, []byte, error) {
	st, err := g.generate(m)
	if err != nil {
		return nil, nil, err
	}
	defer st.Zero()
	shared, err := st.Shared(peer)
	if err != nil {
		return nil, nil, err
	}
	return st.Public(), shared, nil
}

func (s *modpState) Method() *KEMethod { return s.m }
func (s *modpState) Public() []byte    { return append([]byte(nil), s.pub...) }

// Shared checks the peer value as RFC 7296 §5 asks (exact length, RFC 7296
// §3.4 zero padding; 1 < y < p-1) and returns y^x mod p, left-padded to the
// prime's length.
func (s *modpState) Shared(peer []byte) ([]byte, error) {
	if s.x == nil {
		return nil, &KEDataError{Method: s.m.ID, Reason: "state already zeroed"}
	}
	if len(peer) != s.m.InitiatorLen {
		return nil, keLenError(s.m.ID, len(peer), s.m.InitiatorLen)
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(s.grp.pMinus1) >= 0 {
		return nil, &KEDataError{Method: s.m.ID, Reason: "public value not in (1, p-1)"}
	}
	z := new(big.Int).Exp(y, s.x, s.grp.p)
	out := z.FillBytes(make([]byte, s.m.SharedLen))
	clear(z.Bits())
	return out, nil
}

func (s *modpState) Zero() {
	if s.x != nil {
		clear(s.x.Bits())
		s.x = nil
	}
}
