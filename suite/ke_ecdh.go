package suite

import (
	"crypto/ecdh"

	"github.com/petrel-vpn/petrel/wire"
)

// ecdhGroup is an elliptic curve group: NIST P-curves with KE data x|y and
// shared secret x (RFC 5903 §7), or Curve25519 with the 32-octet
// u-coordinate both ways (RFC 8031 §2).
type ecdhGroup struct {
	curve ecdh.Curve
	nist  bool
}

func init() {
	for _, c := range []struct {
		id    wire.KEID
		curve ecdh.Curve
		coord int
	}{
		{wire.KEECP256, ecdh.P256(), 32}, {wire.KEECP384, ecdh.P384(), 48}, {wire.KEECP521, ecdh.P521(), 66},
	} {
		regKE(&KEMethod{ID: c.id, InitiatorLen: 2 * c.coord, ResponderLen: 2 * c.coord, SharedLen: c.coord,
			impl: &ecdhGroup{curve: c.curve, nist: true}})
	}
	regKE(&KEMethod{ID: wire.KECurve25519, InitiatorLen: 32, ResponderLen: 32, SharedLen: 32,
		impl: &ecdhGroup{curve: ecdh.X25519()}})
}

type ecdhState struct {
	m    *KEMethod
	grp  *ecdhGroup
	priv *ecdh.PrivateKey
}

func (g *ecdhGroup) generate(m *KEMethod) (KEState, error) {
	k, err := g.curve.GenerateKey(nil) // Go 1.26: always the system source
	if err != nil {
		return nil, err
	}
	return &ecdhState{m: m, grp: g, priv: k}, nil
}

func (g *ecdhGroup) respond(m *KEMethod, peer []byte) ([]byte, []byte, error) {
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

func (s *ecdhState) Method() *KEMethod { return s.m }

func (s *ecdhState) Public() []byte {
	b := s.priv.PublicKey().Bytes()
	if s.grp.nist {
		return b[1:] // drop SEC 1's 0x04: RFC 5903 §7 sends x|y
	}
	return b
}

// Shared validates the peer's value (exact length; on the curve and not the
// point at infinity for NIST curves, RFC 7296 §5; not a low-order point for
// X25519, RFC 8031 §2.3) and returns the shared secret.
func (s *ecdhState) Shared(peer []byte) ([]byte, error) {
	if s.priv == nil {
		return nil, &KEDataError{Method: s.m.ID, Reason: "state already zeroed"}
	}
	if len(peer) != s.m.ResponderLen {
		return nil, keLenError(s.m.ID, len(peer), s.m.ResponderLen)
	}
	enc := peer
	if s.grp.nist {
		enc = make([]byte, 1+len(peer))
		enc[0] = 4
		copy(enc[1:], peer)
	}
	pub, err := s.grp.curve.NewPublicKey(enc)
	if err != nil {
		return nil, &KEDataError{Method: s.m.ID, Reason: "point not on curve"}
	}
	z, err := s.priv.ECDH(pub)
	if err != nil {
		return nil, &KEDataError{Method: s.m.ID, Reason: "low-order point"}
	}
	return z, nil
}

// Zero drops the private key. crypto/ecdh offers no way to wipe its copy;
// it becomes garbage at once.
func (s *ecdhState) Zero() { s.priv = nil }

// ecdhFromPrivate builds a state from a fixed private key (big-endian scalar
// for NIST curves, RFC 7748 octets for X25519); for known-answer tests.
func ecdhFromPrivate(m *KEMethod, priv []byte) (*ecdhState, error) {
	g := m.impl.(*ecdhGroup)
	k, err := g.curve.NewPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return &ecdhState{m: m, grp: g, priv: k}, nil
}
