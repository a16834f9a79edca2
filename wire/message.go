package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Message is an IKE message (RFC 7296 §3): the header, the payloads outside
// any SK payload, and the payloads inside it.
//
// After Parse, Payloads holds the unencrypted payloads; an SK (*Encrypted) or
// SKF (*Fragment) payload, if present, is its last element with the
// ciphertext as Body. Open fills Inner.
//
// To build a message, set Header (SPIs, Exchange, Flags, MessageID),
// Payloads (unencrypted; only IKE_SA_INIT and error replies to it have any)
// and Inner, then call Encode: with a Protector, Inner goes into an SK
// payload; without one, Inner must be empty.
type Message struct {
	Header   Header
	Payloads []Payload
	Inner    []Payload

	raw []byte // the parsed datagram (a private copy), for Open
}

// Parse parses one IKE message: header, unencrypted payloads, and SK/SKF kept
// as ciphertext. b is the IKE message alone: strip the non-ESP marker of UDP
// port 4500 (RFC 3948 §2.2) or the TCP length prefix (RFC 8229 §3) first.
// The header Length must equal len(b). b is copied: the message does not
// alias the caller's buffer.
//
// Errors are *Error (INVALID_MAJOR_VERSION, INVALID_SYNTAX,
// UNSUPPORTED_CRITICAL_PAYLOAD). With UNSUPPORTED_CRITICAL_PAYLOAD the
// returned message is also non-nil, so the caller can answer it.
func Parse(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) != int64(len(b)) {
		return nil, errSyntax("IKE header length %d, datagram %d octets", h.Length, len(b))
	}
	raw := bytes.Clone(b)
	ps, err := parseChain(h.NextPayload, raw[HeaderLen:], HeaderLen)
	if err != nil {
		return nil, err
	}
	m := &Message{Header: h, Payloads: ps, raw: raw}
	if err := CheckCritical(ps); err != nil {
		return m, err
	}
	return m, nil
}

// Raw returns the octets the message was parsed from (nil for a built
// message). AUTH computations sign these octets (RFC 7296 §2.15).
func (m *Message) Raw() []byte { return m.raw }

// Encrypted returns the SK payload, or nil.
func (m *Message) Encrypted() *Encrypted {
	if n := len(m.Payloads); n > 0 {
		if e, ok := m.Payloads[n-1].(*Encrypted); ok {
			return e
		}
	}
	return nil
}

// Fragment returns the SKF payload, or nil.
func (m *Message) Fragment() *Fragment {
	if n := len(m.Payloads); n > 0 {
		if f, ok := m.Payloads[n-1].(*Fragment); ok {
			return f
		}
	}
	return nil
}

// Open checks and decrypts the SK payload of a parsed message with p and
// parses the inner payloads into m.Inner; the inner chain starts with the SK
// payload's Next Payload field (RFC 7296 §3.14). A Protector failure is
// returned wrapped, not as *Error: drop the message (RFC 7296 §2.21).
// Parse errors of the inner payloads are *Error.
func (m *Message) Open(p Protector) error {
	e := m.Encrypted()
	if e == nil || m.raw == nil {
		return errors.New("wire: message has no parsed SK payload")
	}
	plain, err := p.Open(m.raw, e.bodyOff)
	if err != nil {
		return fmt.Errorf("wire: opening SK payload: %w", err)
	}
	inner, err := ParsePayloads(e.NextPayload, plain)
	if err != nil {
		return err
	}
	if err := CheckCritical(inner); err != nil {
		m.Inner = inner
		return err
	}
	m.Inner = inner
	return nil
}

// OpenFragment checks and decrypts the SKF payload of a parsed message with
// p and returns the fragment's plaintext, to be passed to a Reassembler.
func (m *Message) OpenFragment(p Protector) ([]byte, error) {
	f := m.Fragment()
	if f == nil || m.raw == nil {
		return nil, errors.New("wire: message has no parsed SKF payload")
	}
	plain, err := p.Open(m.raw, f.bodyOff)
	if err != nil {
		return nil, fmt.Errorf("wire: opening SKF payload: %w", err)
	}
	return plain, nil
}

// Encode returns the message's octets. The header's NextPayload and Length
// are computed. With p != nil, Payloads must not contain SK/SKF and Inner is
// sealed into an SK payload that ends the message (RFC 7296 §3.14): the
// octets are laid out first, then p.Seal fills the body in place. With
// p == nil, Inner must be empty and Payloads is written as is (an *Encrypted
// taken from Parse is copied unchanged).
func (m *Message) Encode(p Protector) ([]byte, error) {
	if p == nil {
		if len(m.Inner) > 0 {
			return nil, errors.New("wire: inner payloads need a Protector")
		}
		h := m.Header
		h.NextPayload = PayloadNone
		if len(m.Payloads) > 0 {
			h.NextPayload = m.Payloads[0].Type()
		}
		h.Length = uint32(HeaderLen + PayloadsLen(m.Payloads))
		b := h.Append(make([]byte, 0, h.Length))
		return AppendPayloads(b, m.Payloads, PayloadNone)
	}
	for _, q := range m.Payloads {
		if t := q.Type(); t == PayloadSK || t == PayloadSKF {
			return nil, fmt.Errorf("wire: %v payload in Payloads of a message to seal", t)
		}
	}
	plain, err := AppendPayloads(nil, m.Inner, PayloadNone)
	if err != nil {
		return nil, err
	}
	first := PayloadNone
	if len(m.Inner) > 0 {
		first = m.Inner[0].Type()
	}
	return m.seal(p, plain, func(b []byte, bodyLen int) []byte {
		b = append(b, byte(first), 0)
		return binary.BigEndian.AppendUint16(b, uint16(genericHeaderLen+bodyLen))
	}, PayloadSK, 0)
}

// seal lays out header, outer payloads, the SK/SKF header written by
// skHeader (plus extra octets already included by skHeader) and a zeroed
// body of SealedLen(len(plain)) octets, then lets p fill the body.
func (m *Message) seal(p Protector, plain []byte, skHeader func(b []byte, bodyLen int) []byte, t PayloadType, extra int) ([]byte, error) {
	bodyLen := p.SealedLen(len(plain))
	if bodyLen < 0 || genericHeaderLen+extra+bodyLen > maxPayloadLen {
		return nil, fmt.Errorf("wire: %v payload of %d octets exceeds %d", t, genericHeaderLen+extra+bodyLen, maxPayloadLen)
	}
	h := m.Header
	h.NextPayload = t
	if len(m.Payloads) > 0 {
		h.NextPayload = m.Payloads[0].Type()
	}
	total := HeaderLen + PayloadsLen(m.Payloads) + genericHeaderLen + extra + bodyLen
	h.Length = uint32(total)
	b := h.Append(make([]byte, 0, total))
	b, err := AppendPayloads(b, m.Payloads, t)
	if err != nil {
		return nil, err
	}
	b = skHeader(b, extra+bodyLen)
	bodyOff := len(b)
	b = append(b, make([]byte, bodyLen)...)
	if err := p.Seal(b, bodyOff, plain); err != nil {
		return nil, fmt.Errorf("wire: sealing %v payload: %w", t, err)
	}
	return b, nil
}
