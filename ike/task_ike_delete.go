package ike

import "github.com/petrel-vpn/petrel/wire"

// ikeDelete closes the IKE SA with an INFORMATIONAL exchange carrying
// D(IKE) (RFC 7296 §1.4.1); its Child SAs go with it. The responder answers
// with an empty INFORMATIONAL and both sides remove everything.
type ikeDelete struct{}

func (ikeDelete) kind() taskKind { return kindIKEDelete }

func (ikeDelete) build(sa *SA, m *msgOut) (status, error) {
	if !m.response {
		m.add(&wire.Delete{Protocol: wire.ProtoIKE})
		sa.state = stateDeleting
		return needMore, nil
	}
	return done, nil // empty response; the task manager destroys the SA after sending
}

func (ikeDelete) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.IsResponse() {
		sa.destroy(sa.out, "deleted")
		return done, nil
	}
	// A peer's rekey we answered while ours was in flight stands now:
	// its SA takes the children before this one goes (RFC 7296 §2.8.1).
	sa.settlePeerRekey()
	sa.state = stateDeleting
	return needMore, nil
}
