package suite

import (
	"crypto/mlkem"

	"github.com/petrel-vpn/petrel/wire"
)

// ML-KEM (FIPS 203) as an IKEv2 key exchange (RFC 9370 framework,
// draft-ietf-ipsecme-ikev2-mlkem §2): the initiator's KE data is the
// encapsulation key, the responder's is the ciphertext, and the shared
// secret is the 32-octet ML-KEM shared key.
type mlkemKEM struct{ level int }

func init() {
	regKE(&KEMethod{ID: wire.KEMLKEM768, InitiatorLen: mlkem.EncapsulationKeySize768,
		ResponderLen: mlkem.CiphertextSize768, SharedLen: mlkem.SharedKeySize, KEM: true, impl: mlkemKEM{768}})
	regKE(&KEMethod{ID: wire.KEMLKEM1024, InitiatorLen: mlkem.EncapsulationKeySize1024,
		ResponderLen: mlkem.CiphertextSize1024, SharedLen: mlkem.SharedKeySize, KEM: true, impl: mlkemKEM{1024}})
}

// decapser is the common method set of the two decapsulation key types.
type decapser interface {
	Decapsulate(ciphertext []byte) ([]byte, error)
	Bytes() []byte
}

type mlkemState struct {
	m   *KEMethod
	dk  decapser
	pub []byte
}

func (k mlkemKEM) generate(m *KEMethod) (KEState, error) {
	if k.level == 768 {
		dk, err := mlkem.GenerateKey768()
		if err != nil {
			return nil, err
		}
		return &mlkemState{m: m, dk: dk, pub: dk.EncapsulationKey().Bytes()}, nil
	}
	dk, err := mlkem.GenerateKey1024()
	if err != nil {
		return nil, err
	}
	return &mlkemState{m: m, dk: dk, pub: dk.EncapsulationKey().Bytes()}, nil
}

// mlkemFromSeed builds a state from a 64-octet d|z seed (FIPS 203 §7.1).
func mlkemFromSeed(m *KEMethod, seed []byte) (*mlkemState, error) {
	if m.ID == wire.KEMLKEM768 {
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil, err
		}
		return &mlkemState{m: m, dk: dk, pub: dk.EncapsulationKey().Bytes()}, nil
	}
	dk, err := mlkem.NewDecapsulationKey1024(seed)
	if err != nil {
		return nil, err
	}
	return &mlkemState{m: m, dk: dk, pub: dk.EncapsulationKey().Bytes()}, nil
}

// respond encapsulates to the initiator's key. NewEncapsulationKey* applies
// FIPS 203 §7.2's input checks (length and modulus), RFC 7296 §5's
// "validate the peer's public value" for a KEM.
func (k mlkemKEM) respond(m *KEMethod, peer []byte) ([]byte, []byte, error) {
	if len(peer) != m.InitiatorLen {
		return nil, nil, keLenError(m.ID, len(peer), m.InitiatorLen)
	}
	if k.level == 768 {
		ek, err := mlkem.NewEncapsulationKey768(peer)
		if err != nil {
			return nil, nil, &KEDataError{Method: m.ID, Reason: "encapsulation key fails FIPS 203 checks"}
		}
		shared, ct := ek.Encapsulate()
		return ct, shared, nil
	}
	ek, err := mlkem.NewEncapsulationKey1024(peer)
	if err != nil {
		return nil, nil, &KEDataError{Method: m.ID, Reason: "encapsulation key fails FIPS 203 checks"}
	}
	shared, ct := ek.Encapsulate()
	return ct, shared, nil
}

func (s *mlkemState) Method() *KEMethod { return s.m }
func (s *mlkemState) Public() []byte    { return append([]byte(nil), s.pub...) }

// Shared decapsulates the responder's ciphertext. ML-KEM decapsulation
// never fails on a well-sized ciphertext (implicit rejection, FIPS 203
// §6.3): a forged ciphertext yields an unrelated key and AUTH fails later.
func (s *mlkemState) Shared(peer []byte) ([]byte, error) {
	if s.dk == nil {
		return nil, &KEDataError{Method: s.m.ID, Reason: "state already zeroed"}
	}
	if len(peer) != s.m.ResponderLen {
		return nil, keLenError(s.m.ID, len(peer), s.m.ResponderLen)
	}
	z, err := s.dk.Decapsulate(peer)
	if err != nil {
		return nil, &KEDataError{Method: s.m.ID, Reason: err.Error()}
	}
	return z, nil
}

// Zero drops the decapsulation key (crypto/mlkem cannot wipe its copy).
func (s *mlkemState) Zero() { s.dk = nil }
