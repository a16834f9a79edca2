package suite

import (
	"cmp"
	"slices"

	"github.com/petrel-vpn/petrel/wire"
)

// KEMethod describes a key exchange method (Transform Type 4, and the
// ADDKE types of RFC 9370). It serves Diffie-Hellman groups and KEMs with one
// flow:
//
//	initiator                       responder
//	st, _ := m.Initiate()
//	KEi = st.Public()       ---->   KEr, shared, err := m.Respond(KEi)
//	shared, err := st.Shared(KEr) <----
//	st.Zero()
//
// For DH, Respond generates an ephemeral key, returns its public value and
// the shared secret g^ir; for a KEM (ML-KEM), KEi is the encapsulation key
// and KEr the ciphertext (draft-ietf-ipsecme-ikev2-mlkem §2). Either side may
// also use Initiate+Shared for DH groups, as RFC 7296 §1.2 describes.
type KEMethod struct {
	ID wire.KEID
	// InitiatorLen and ResponderLen are the exact KE data lengths each
	// side sends (equal for DH groups).
	InitiatorLen int
	ResponderLen int
	// SharedLen is the length of the shared secret.
	SharedLen int
	// KEM is true for key encapsulation methods.
	KEM  bool
	impl keImpl
}

// KEState is one side's ephemeral secret for a key exchange.
type KEState interface {
	// Method is the descriptor this state belongs to.
	Method() *KEMethod
	// Public is the KE payload data this side sends.
	Public() []byte
	// Shared validates the peer's KE data (RFC 7296 §5) and returns the
	// shared secret. Errors match ErrInvalidPublic.
	Shared(peer []byte) ([]byte, error)
	// Zero destroys the secret; the state is unusable afterwards.
	Zero()
}

type keImpl interface {
	generate(m *KEMethod) (KEState, error)
	respond(m *KEMethod, peer []byte) (data, shared []byte, err error)
}

// Transform is the KE transform naming this method.
func (m *KEMethod) Transform() wire.Transform {
	return wire.Transform{Type: wire.TransformKE, ID: uint16(m.ID)}
}

func (m *KEMethod) String() string { return m.Transform().String() }

// Initiate creates a fresh ephemeral secret from the system random source.
func (m *KEMethod) Initiate() (KEState, error) { return m.impl.generate(m) }

// Respond answers the initiator's KE data: it validates peer, and returns the
// KE data to send back and the shared secret. Nothing secret outlives the call.
func (m *KEMethod) Respond(peer []byte) (data, shared []byte, err error) {
	return m.impl.respond(m, peer)
}

var keTable = map[wire.KEID]*KEMethod{}

func regKE(m *KEMethod) { keTable[m.ID] = m }

// LookupKE returns the descriptor for a key exchange method, or a
// *ForbiddenError (RFC 8247 §2.4) or *NotSupportedError.
func LookupKE(id wire.KEID) (*KEMethod, error) {
	t := wire.Transform{Type: wire.TransformKE, ID: uint16(id)}
	if err := CheckIKE(t); err != nil {
		return nil, err
	}
	if m := keTable[id]; m != nil {
		return m, nil
	}
	return nil, &NotSupportedError{Transform: t}
}

// KEMethods lists, ordered by ID, every registered key exchange method.
func KEMethods() []*KEMethod {
	out := make([]*KEMethod, 0, len(keTable))
	for _, m := range keTable {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *KEMethod) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
