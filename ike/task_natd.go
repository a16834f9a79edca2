package ike

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"io"
	"net/netip"

	"github.com/petrel-vpn/petrel/wire"
)

// natd is NAT detection (RFC 7296 §2.23): both sides send
// NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP, each a SHA-1 of
// the SPIs and an address and port, in IKE_SA_INIT. A mismatch means a NAT
// rewrote that address; then the initiator moves to the NAT-T port for
// IKE_AUTH and ESP goes in UDP (RFC 3948). The result is recorded in the
// SA's natLocal/natRemote fields for other tasks.
type natd struct{}

func (natd) kind() taskKind { return kindNATD }

// natHash is SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23).
// TODO(suite): this digest belongs with the suite's other hashes; it lives
// here until suite exports one.
func natHash(spiI, spiR uint64, ap netip.AddrPort) []byte {
	h := sha1.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spiI)
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], spiR)
	h.Write(b[:])
	h.Write(ap.Addr().Unmap().AsSlice())
	binary.BigEndian.PutUint16(b[:2], ap.Port())
	h.Write(b[:2])
	return h.Sum(nil)
}

func (natd) build(sa *SA, m *msgOut) (status, error) {
	if m.exch != wire.IKE_SA_INIT {
		return done, nil
	}
	src := natHash(sa.spiI, sa.spiR, sa.local)
	if sa.conn != nil && sa.conn.ForceEncap {
		// Fake a NAT so the peer sees a mismatch (RFC 7296 §2.23 allows
		// this for forced UDP encapsulation).
		if _, err := io.ReadFull(sa.ep.rand, src); err != nil {
			return done, err
		}
		sa.forcedEncap = true
	}
	m.notify(wire.NAT_DETECTION_SOURCE_IP, src)
	m.notify(wire.NAT_DETECTION_DESTINATION_IP, natHash(sa.spiI, sa.spiR, sa.remote))
	if m.response {
		return done, nil
	}
	return needMore, nil
}

func (natd) process(sa *SA, m *msgIn) (status, error) {
	if m.hdr.Exchange != wire.IKE_SA_INIT {
		return done, nil
	}
	var srcOK, dstOK, any bool
	for _, p := range m.payloads {
		n, ok := p.(*wire.Notify)
		if !ok {
			continue
		}
		switch n.NotifyType {
		case wire.NAT_DETECTION_SOURCE_IP:
			// There may be several (one per address of a multihomed
			// sender); one match is enough.
			any = true
			srcOK = srcOK || subtle.ConstantTimeCompare(n.Data, natHash(m.hdr.SPIi, m.hdr.SPIr, m.src)) == 1
		case wire.NAT_DETECTION_DESTINATION_IP:
			dstOK = dstOK || subtle.ConstantTimeCompare(n.Data, natHash(m.hdr.SPIi, m.hdr.SPIr, m.dst)) == 1
		}
	}
	if !any {
		// The peer does not support NAT-T; nothing to do.
		return done, nil
	}
	sa.natRemote = !srcOK
	sa.natLocal = !dstOK
	if sa.initiator && sa.NATDetected() && sa.conn != nil {
		// RFC 7296 §2.23: the initiator switches to port 4500 for
		// IKE_AUTH once a NAT is detected.
		sa.local = netip.AddrPortFrom(sa.local.Addr(), sa.ep.nattPort(sa.local))
		sa.remote = netip.AddrPortFrom(sa.remote.Addr(), sa.conn.remoteNATTPort())
	}
	if m.hdr.IsResponse() {
		return done, nil
	}
	return needMore, nil
}
