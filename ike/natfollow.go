package ike

import (
	"net/netip"

	"github.com/petrel-vpn/petrel/wire"
)

// Following a peer behind a NAT (RFC 7296 §2.23, RFC 3948).
//
// A NAT box may drop a mapping that is still in use (it rebooted, or the
// mapping timed out between keepalives) and make a new one: the peer
// behind it reappears at another address or port. RFC 7296 §2.23: a host
// that is not behind a NAT (and has no other way to recover, such as
// MOBIKE, which petrel does not do) SHOULD send all packets, retransmissions
// included, to the address and port of the latest packet whose integrity
// check passed, and store them as the SA's. A host behind a NAT SHOULD NOT:
// one forged or replayed packet would then break the SA. Updates are made
// only on new messages, never on replays: a message reaches take only
// inside the window (a retransmitted request is answered from the cache
// and not taken), and IKE_SA_INIT, which nothing protects, never moves an
// SA. ESP in UDP uses the ports of IKE (RFC 3948 §2.1, RFC 7296 §2.23), so
// the Child SAs move with the IKE SA (OpUpdate).

// addrsAfter returns the outer addresses the SA has once the peer's
// message m is taken; m passed the window checks and its integrity check.
func (sa *SA) addrsAfter(m *msgIn) (local, remote netip.AddrPort) {
	local, remote = sa.local, sa.remote
	switch {
	case m.hdr.Exchange == wire.IKE_SA_INIT:
		return // unprotected: anyone could have sent it
	case !sa.initiator && sa.state == stateInitDone && !m.hdr.IsResponse():
		// The peer's IKE_AUTH request, protected and before any Child SA:
		// the initiator moved to the NAT-T port for it if a NAT was
		// detected or it moved anyway (RFC 7296 §2.23; strongSwan does
		// with MOBIKE on), and the responder goes on from the ports it
		// came on. Our port always follows (a wildcard socket reports an
		// unspecified destination address, whose port is still right);
		// our address only when the receive path knew it.
		remote = m.src
		if m.dst.Port() != 0 {
			a := local.Addr()
			if usable(m.dst) {
				a = m.dst.Addr()
			}
			local = netip.AddrPortFrom(a, m.dst.Port())
		}
		return
	case sa.natRemote && !sa.natLocal:
		// The peer is behind a NAT and we are not: follow it. Only the
		// peer's address and port (RFC 7296 §2.23): our own stays, since
		// a wildcard socket can only guess the destination it was sent to.
		remote = m.src
	}
	return
}

func usable(ap netip.AddrPort) bool { return ap.Addr().IsValid() && !ap.Addr().IsUnspecified() }

// follow moves the SA to the addresses of the peer's message m (see
// addrsAfter) and, when they changed, tells the data plane to move every
// installed Child SA pair of the SA with it: one OpUpdate per pair per
// change. The peer's IKE_AUTH, the one place where both sides change ports
// in the normal course, comes before any pair exists.
func (sa *SA) follow(m *msgIn, out *Output) {
	local, remote := sa.addrsAfter(m)
	if local == sa.local && remote == sa.remote {
		return
	}
	if sa.state >= stateEstablished {
		sa.info("ike: peer moved (NAT mapping changed)", "to", remote, "local", local)
	}
	sa.local, sa.remote = local, remote
	for _, c := range sa.children {
		out.Ops = append(out.Ops, ChildOp{
			Kind: OpUpdate, Name: c.Name, SPIi: sa.spiI, SPIr: sa.spiR, InSPI: c.InSPI, OutSPI: c.OutSPI,
			Mode: c.Mode, Local: local, Remote: remote, UDPEncap: sa.udpEncap(),
		})
	}
}
