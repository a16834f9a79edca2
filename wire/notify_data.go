package wire

import "encoding/binary"

// Helpers for the Notification Data of the notify types whose data has a
// fixed structure. Each getter reports ok=false for the wrong notify type
// or malformed data; the caller decides what a malformed notify means.

// Notification returns the Notify payload to answer an error with:
// N(e.Notify, e.Data), about the IKE SA (RFC 7296 §2.21).
func (e *Error) Notification() *Notify {
	return &Notify{NotifyType: e.Notify, Data: e.Data}
}

// NewInvalidKE builds N(INVALID_KE_PAYLOAD) naming the accepted group
// (RFC 7296 §1.2, §3.10.1: two octets).
func NewInvalidKE(group KEID) *Notify {
	return &Notify{NotifyType: INVALID_KE_PAYLOAD, Data: binary.BigEndian.AppendUint16(nil, uint16(group))}
}

// InvalidKEGroup returns the group an INVALID_KE_PAYLOAD notification asks for.
func (n *Notify) InvalidKEGroup() (KEID, bool) {
	if n.NotifyType != INVALID_KE_PAYLOAD || len(n.Data) != 2 {
		return 0, false
	}
	return KEID(binary.BigEndian.Uint16(n.Data)), true
}

// NewSignatureHashAlgorithms builds N(SIGNATURE_HASH_ALGORITHMS)
// (RFC 7427 §4: a list of 2-octet hash algorithm identifiers).
func NewSignatureHashAlgorithms(algs ...HashAlgorithm) *Notify {
	data := make([]byte, 0, 2*len(algs))
	for _, a := range algs {
		data = binary.BigEndian.AppendUint16(data, uint16(a))
	}
	return &Notify{NotifyType: SIGNATURE_HASH_ALGORITHMS, Data: data}
}

// SignatureHashAlgorithms returns the list of a SIGNATURE_HASH_ALGORITHMS
// notification.
func (n *Notify) SignatureHashAlgorithms() ([]HashAlgorithm, bool) {
	if n.NotifyType != SIGNATURE_HASH_ALGORITHMS || len(n.Data)%2 != 0 {
		return nil, false
	}
	algs := make([]HashAlgorithm, 0, len(n.Data)/2)
	for d := n.Data; len(d) > 0; d = d[2:] {
		algs = append(algs, HashAlgorithm(binary.BigEndian.Uint16(d)))
	}
	return algs, true
}

// NewRekeySA builds N(REKEY_SA) for the Child SA with the given inbound SPI
// (RFC 7296 §1.3.3: Protocol ID and SPI name the SA being rekeyed).
func NewRekeySA(proto ProtocolID, spi uint32) *Notify {
	return &Notify{Protocol: proto, SPI: binary.BigEndian.AppendUint32(nil, spi), NotifyType: REKEY_SA}
}

// SPI32 returns a 4-octet ESP/AH SPI carried in the notify's SPI field
// (REKEY_SA, CHILD_SA_NOT_FOUND, INVALID_SPI's data aside).
func (n *Notify) SPI32() (uint32, bool) {
	if len(n.SPI) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(n.SPI), true
}

// UnsupportedCriticalType returns the payload type an
// UNSUPPORTED_CRITICAL_PAYLOAD notification names (RFC 7296 §3.10.1: one
// octet).
func (n *Notify) UnsupportedCriticalType() (PayloadType, bool) {
	if n.NotifyType != UNSUPPORTED_CRITICAL_PAYLOAD || len(n.Data) != 1 {
		return 0, false
	}
	return PayloadType(n.Data[0]), true
}
