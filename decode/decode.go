package decode

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// Ports on which IKE is recognised: RFC 7296 §2 (500) and RFC 3948 (4500).
var (
	IKEPort  uint16 = 500
	NATTPort uint16 = 4500
)

// Kind classifies a datagram.
type Kind string

const (
	KindIKE       Kind = "IKE"
	KindESP       Kind = "ESP"           // ESP-in-UDP (RFC 3948)
	KindKeepalive Kind = "NAT-keepalive" // a single 0xff octet (RFC 3948 §2.3)
)

// Record is what the decoder says about one datagram.
type Record struct {
	Frame int            `json:"frame"`
	Time  time.Time      `json:"time"`
	Src   netip.AddrPort `json:"src"`
	Dst   netip.AddrPort `json:"dst"`
	Kind  Kind           `json:"kind"`
	Error string         `json:"error,omitempty"` // why the datagram could not be decoded (fully)

	// IKE
	Exchange  string        `json:"exchange,omitempty"`
	Flags     string        `json:"flags,omitempty"`
	Response  bool          `json:"response,omitempty"`
	MessageID uint32        `json:"message_id"`
	SPIi      string        `json:"spi_i,omitempty"`
	SPIr      string        `json:"spi_r,omitempty"`
	Length    int           `json:"length,omitempty"`
	Payloads  []PayloadInfo `json:"payloads,omitempty"`
	// Decrypted is true when the SK payload (or this SKF fragment) was
	// decrypted and its ICV checked with a key from the table.
	Decrypted bool `json:"decrypted,omitempty"`
	// Inner holds the decrypted payloads; for fragments it is set on the
	// fragment that completed the message.
	Inner    []PayloadInfo `json:"inner,omitempty"`
	Fragment *FragmentInfo `json:"fragment,omitempty"`

	// ESP
	SPI uint32 `json:"spi,omitempty"`
	Seq uint32 `json:"seq,omitempty"`
}

// FragmentInfo describes an SKF payload (RFC 7383 §2.5).
type FragmentInfo struct {
	Number      uint16 `json:"number"`
	Total       uint16 `json:"total"`
	Reassembled bool   `json:"reassembled,omitempty"`
}

// Decoder turns datagrams into Records. Keys, when set, decrypt SK and SKF
// payloads. A Decoder keeps fragment state between datagrams.
type Decoder struct {
	keys  map[[2]uint64]keylog.IKESA
	frags map[fragKey]*fragState
}

type fragKey struct {
	spiI, spiR uint64
	msgID      uint32
	fromInit   bool
}

type fragState struct {
	first PayloadTypeOrZero
	total uint16
	parts map[uint16][]byte
	size  int
}

// PayloadTypeOrZero is the Next Payload of fragment 1 (0 until it arrives).
type PayloadTypeOrZero = wire.PayloadType

// Bounds on reassembly (RFC 7383 §2.6 leaves them to the implementation).
const (
	maxFragments    = 64
	maxReassembled  = 64 << 10
	maxOpenMessages = 256
)

// NewDecoder returns a decoder that decrypts with the given IKE SAs (nil for
// none).
func NewDecoder(keys []keylog.IKESA) *Decoder {
	d := &Decoder{keys: map[[2]uint64]keylog.IKESA{}, frags: map[fragKey]*fragState{}}
	for _, k := range keys {
		d.keys[[2]uint64{k.SPIi, k.SPIr}] = k
	}
	return d
}

// IsIKEPort reports whether a datagram between these ports may carry IKE.
func IsIKEPort(src, dst netip.AddrPort) bool {
	for _, p := range []uint16{src.Port(), dst.Port()} {
		if p == IKEPort || p == NATTPort {
			return true
		}
	}
	return false
}

// Decode decodes one datagram. ok is false for UDP that is not on an IKE port.
func (d *Decoder) Decode(dg Datagram) (rec Record, ok bool) {
	if !IsIKEPort(dg.Src, dg.Dst) {
		return rec, false
	}
	rec = Record{Frame: dg.Frame, Time: dg.Time, Src: dg.Src, Dst: dg.Dst, Kind: KindIKE}
	b := dg.Payload
	onNATT := dg.Src.Port() == NATTPort || dg.Dst.Port() == NATTPort
	if onNATT && !(dg.Src.Port() == IKEPort || dg.Dst.Port() == IKEPort) {
		switch {
		case len(b) == 1 && b[0] == 0xff:
			rec.Kind = KindKeepalive
			return rec, true
		case len(b) >= 4 && binary.BigEndian.Uint32(b) == 0:
			b = b[4:] // non-ESP marker: IKE follows
		case len(b) >= 8:
			rec.Kind = KindESP
			rec.SPI, rec.Seq = binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
			return rec, true
		default:
			rec.Error = fmt.Sprintf("%d-octet datagram on the NAT-T port is neither IKE, ESP nor a keepalive", len(b))
			return rec, true
		}
	}
	d.decodeIKE(&rec, b)
	return rec, true
}

func (d *Decoder) decodeIKE(rec *Record, b []byte) {
	m, err := wire.Parse(b)
	if m == nil {
		rec.Error = err.Error()
		return
	}
	h := m.Header
	rec.Exchange, rec.Flags, rec.Response = h.Exchange.String(), h.Flags.String(), h.IsResponse()
	rec.MessageID, rec.Length = h.MessageID, int(h.Length)
	rec.SPIi, rec.SPIr = fmt.Sprintf("%016x", h.SPIi), fmt.Sprintf("%016x", h.SPIr)
	rec.Payloads = describeAll(m.Payloads)
	if err != nil {
		rec.Error = err.Error()
		return
	}
	sk, skf := m.Encrypted(), m.Fragment()
	if sk == nil && skf == nil {
		return
	}
	k, found := d.keys[[2]uint64{h.SPIi, h.SPIr}]
	if !found {
		return // no key: the SK payload stays opaque, which is not an error
	}
	p, err := protector(k, h.Flags.Initiator())
	if err != nil {
		rec.Error = err.Error()
		return
	}
	defer p.Zero()
	if sk != nil {
		if err := m.Open(p); err != nil {
			rec.Error = err.Error()
			return
		}
		rec.Decrypted, rec.Inner = true, describeAll(m.Inner)
		return
	}
	rec.Fragment = &FragmentInfo{Number: skf.Number, Total: skf.Total}
	plain, err := m.OpenFragment(p)
	if err != nil {
		rec.Error = err.Error()
		return
	}
	rec.Decrypted = true
	inner, done, err := d.addFragment(fragKey{h.SPIi, h.SPIr, h.MessageID, h.Flags.Initiator()}, skf, plain)
	if err != nil {
		rec.Error = err.Error()
		return
	}
	if done {
		rec.Fragment.Reassembled, rec.Inner = true, describeAll(inner)
	}
}

// protector builds the SK protector that opens messages sent by the
// initiator (SK_ei/SK_ai) or the responder (SK_er/SK_ar), RFC 7296 §2.14.
func protector(k keylog.IKESA, fromInitiator bool) (*suite.SKProtector, error) {
	if k.NoIntegCheck {
		return nil, fmt.Errorf("decode: key table line for %016x_%016x does not name its integrity algorithm", k.SPIi, k.SPIr)
	}
	encr, err := suite.LookupEncr(k.Encr, k.EncrKeyBits)
	if err != nil {
		return nil, err
	}
	var integ *suite.Integ
	if !encr.AEAD() {
		if integ, err = suite.LookupInteg(k.Integ); err != nil {
			return nil, err
		}
	}
	ek, ik := k.SKer, k.SKar
	if fromInitiator {
		ek, ik = k.SKei, k.SKai
	}
	// Decoding never seals: the seal direction gets the same keys.
	return suite.NewSKProtector(encr, integ, ek, ik, ek, ik)
}

// addFragment stores one decrypted fragment; when all have arrived it parses
// the reassembled inner payloads (RFC 7383 §2.6).
func (d *Decoder) addFragment(key fragKey, f *wire.Fragment, plain []byte) ([]wire.Payload, bool, error) {
	if f.Total == 0 || f.Number == 0 || f.Number > f.Total || f.Total > maxFragments {
		return nil, false, fmt.Errorf("decode: fragment %d of %d out of bounds", f.Number, f.Total)
	}
	st := d.frags[key]
	if st == nil {
		if len(d.frags) >= maxOpenMessages {
			return nil, false, fmt.Errorf("decode: more than %d fragmented messages open", maxOpenMessages)
		}
		st = &fragState{total: f.Total, parts: map[uint16][]byte{}}
		d.frags[key] = st
	}
	if f.Total != st.total {
		return nil, false, fmt.Errorf("decode: fragment says %d in total, earlier ones %d", f.Total, st.total)
	}
	if _, dup := st.parts[f.Number]; dup {
		return nil, false, nil
	}
	if st.size+len(plain) > maxReassembled {
		delete(d.frags, key)
		return nil, false, fmt.Errorf("decode: reassembled message exceeds %d octets", maxReassembled)
	}
	if f.Number == 1 {
		st.first = f.NextPayload
	}
	st.parts[f.Number], st.size = plain, st.size+len(plain)
	if len(st.parts) < int(st.total) {
		return nil, false, nil
	}
	delete(d.frags, key)
	all := make([]byte, 0, st.size)
	for i := uint16(1); i <= st.total; i++ {
		all = append(all, st.parts[i]...)
	}
	inner, err := wire.ParsePayloads(st.first, all)
	return inner, err == nil, err
}
