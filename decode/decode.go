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
	frags map[[2]uint64]*wire.Reassembler // by SPIi, SPIr
}

// Bounds on reassembly per IKE SA (RFC 7383 §2.6 leaves them to the
// implementation).
const (
	maxFragments   = 64
	maxReassembled = 64 << 10
)

// NewDecoder returns a decoder that decrypts with the given IKE SAs (nil for
// none).
func NewDecoder(keys []keylog.IKESA) *Decoder {
	d := &Decoder{keys: map[[2]uint64]keylog.IKESA{}, frags: map[[2]uint64]*wire.Reassembler{}}
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
	inner, done, err := d.addFragment(m, plain)
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

// addFragment feeds one decrypted fragment to its IKE SA's reassembler
// (RFC 7383 §2.6) and returns the inner payloads once the message is whole.
func (d *Decoder) addFragment(m *wire.Message, plain []byte) ([]wire.Payload, bool, error) {
	key := [2]uint64{m.Header.SPIi, m.Header.SPIr}
	r := d.frags[key]
	if r == nil {
		r = wire.NewReassembler(maxFragments, maxReassembled)
		d.frags[key] = r
	}
	whole, err := r.Add(m, plain)
	if err != nil || whole == nil {
		return nil, false, err
	}
	return whole.Inner, true, nil
}
