package ike

import "github.com/petrel-vpn/petrel/wire"

// features advertises and records optional extensions in IKE_SA_INIT:
// IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383 §2.3) and
// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4). A responder echoes fragmentation
// support only if the initiator sent it. Unknown status notifications and
// vendor IDs are ignored (RFC 7296 §3.10.1, §3.12): this task looks only for
// the types it knows.
type features struct{}

func (features) kind() taskKind { return kindFeatures }

// sigHashes are the hash algorithms we accept in RFC 7427 signatures.
var sigHashes = []wire.HashAlgorithm{wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512, wire.HashIdentity}

func (features) build(sa *SA, m *msgOut) (status, error) {
	if m.exch != wire.IKE_SA_INIT {
		return done, nil
	}
	frag := sa.conn == nil || !sa.conn.NoFragmentation
	if m.response {
		frag = frag && sa.peerFrag
	}
	if frag {
		m.notify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil)
	}
	m.add(wire.NewSignatureHashAlgorithms(sigHashes...))
	if m.response {
		return done, nil
	}
	return needMore, nil
}

func (features) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange != wire.IKE_SA_INIT {
		return done, nil
	}
	sa.peerFrag = m.notify(wire.IKEV2_FRAGMENTATION_SUPPORTED) != nil
	if sa.initiator && sa.conn.NoFragmentation {
		sa.peerFrag = false
	}
	if n := m.notify(wire.SIGNATURE_HASH_ALGORITHMS); n != nil {
		algs, _ := n.SignatureHashAlgorithms()
		sa.peerSigHashes = 0
		for _, h := range algs {
			if h < 16 {
				sa.peerSigHashes |= 1 << h
			}
		}
	}
	if m.hdr.IsResponse() {
		return done, nil
	}
	return needMore, nil
}
