package wire

import (
	"encoding/binary"
	"strconv"
)

// genericHeaderLen is the length of the generic payload header
// (RFC 7296 §3.2): Next Payload, C bit + RESERVED, Payload Length.
const genericHeaderLen = 4

// maxPayloadLen is the largest value of the 16-bit Payload Length field.
const maxPayloadLen = 0xffff

// flagCritical is the C bit of the generic payload header (RFC 7296 §3.2).
const flagCritical = 0x80

// Payload is one IKEv2 payload. Each concrete type lives in its own file and
// has a matching ParseX function for its body; the generic payload header
// (RFC 7296 §3.2) is written by AppendPayloads and read by ParsePayloads.
//
// Known payload types are encoded with the critical bit clear; RawPayload
// keeps the bit it was parsed or built with.
type Payload interface {
	// Type is the payload type written into the previous payload's Next
	// Payload field (or the IKE header's).
	Type() PayloadType
	// BodyLen is the length of the body, without the generic header.
	BodyLen() int
	// AppendBody appends the body, without the generic header, to b.
	AppendBody(b []byte) []byte
}

// ParsePayloads parses a chain of payloads whose first payload has type
// first, running to the end of b (RFC 7296 §3.2). Payload fields alias b.
//
// An SK or SKF payload ends the chain: it must be the last payload, and its
// Next Payload field names the first inner payload (RFC 7296 §3.14), kept in
// Encrypted.NextPayload / Fragment.NextPayload.
//
// Payloads this package does not decode are kept as *RawPayload, critical or
// not; CheckCritical turns a critical one into UNSUPPORTED_CRITICAL_PAYLOAD.
// Parse and Message.Open do that for you.
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(first, b, 0)
}

// parseChain is ParsePayloads for a chain that starts base octets into the
// message, so that SK/SKF payloads can record where their body starts.
func parseChain(first PayloadType, b []byte, base int) ([]Payload, error) {
	var out []Payload
	next, off := first, 0
	for next != PayloadNone {
		rest := b[off:]
		if len(rest) < genericHeaderLen {
			return nil, errSyntax("payload %d (%v): truncated generic header: %d octets left", len(out)+1, next, len(rest))
		}
		plen := int(binary.BigEndian.Uint16(rest[2:4]))
		if plen < genericHeaderLen || plen > len(rest) {
			return nil, errSyntax("payload %d (%v): length %d out of range (%d octets left)", len(out)+1, next, plen, len(rest))
		}
		body := rest[genericHeaderLen:plen]
		critical := rest[1]&flagCritical != 0
		nextField := PayloadType(rest[0])
		typ := next
		if typ == PayloadSK || typ == PayloadSKF {
			// RFC 7296 §3.14: the SK payload is the last payload; its Next
			// Payload field is the type of the first inner payload.
			if plen != len(rest) {
				return nil, errSyntax("%v payload is not the last payload (%d trailing octets)", typ, len(rest)-plen)
			}
			bodyOff := base + off + genericHeaderLen
			var p Payload
			var err error
			if typ == PayloadSK {
				p, err = parseEncrypted(nextField, body, bodyOff)
			} else {
				p, err = parseFragment(nextField, body, bodyOff)
			}
			if err != nil {
				return nil, err
			}
			return append(out, p), nil
		}
		p, err := parseBody(typ, critical, body)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		off += plen
		next = nextField
	}
	if off != len(b) {
		return nil, errSyntax("%d octets after the last payload", len(b)-off)
	}
	return out, nil
}

// parseBody decodes one payload body of type t.
func parseBody(t PayloadType, critical bool, body []byte) (Payload, error) {
	var p Payload
	var err error
	switch t {
	case PayloadSA:
		p, err = ParseSA(body)
	case PayloadKE:
		p, err = ParseKE(body)
	case PayloadIDi, PayloadIDr:
		p, err = ParseID(t == PayloadIDr, body)
	case PayloadCERT:
		p, err = ParseCert(body)
	case PayloadCERTREQ:
		p, err = ParseCertReq(body)
	case PayloadAUTH:
		p, err = ParseAuth(body)
	case PayloadNonce:
		p, err = ParseNonce(body)
	case PayloadN:
		p, err = ParseNotify(body)
	case PayloadD:
		p, err = ParseDelete(body)
	case PayloadV:
		p, err = ParseVendorID(body)
	case PayloadTSi, PayloadTSr:
		p, err = ParseTS(t == PayloadTSr, body)
	case PayloadCP:
		p, err = ParseCP(body)
	case PayloadEAP:
		p, err = ParseEAP(body)
	default:
		return &RawPayload{PType: t, Critical: critical, Body: orNil(body)}, nil
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// PayloadsLen is the encoded length of ps including generic headers.
func PayloadsLen(ps []Payload) int {
	n := 0
	for _, p := range ps {
		n += genericHeaderLen + p.BodyLen()
	}
	return n
}

// AppendPayloads appends ps as a chain: each payload's Next Payload field is
// the type of the payload after it, and the last one's is last (PayloadNone,
// or PayloadSK when the caller appends an SK payload next). An *Encrypted or
// *Fragment payload must be the last element and writes its own NextPayload.
// It fails if a payload is longer than 65535 octets.
func AppendPayloads(b []byte, ps []Payload, last PayloadType) ([]byte, error) {
	for i, p := range ps {
		next := last
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		var crit byte
		switch q := p.(type) {
		case *RawPayload:
			if q.Critical {
				crit = flagCritical
			}
		case *Encrypted:
			if i != len(ps)-1 {
				return nil, errSyntax("SK payload must be the last payload")
			}
			next = q.NextPayload
		case *Fragment:
			if i != len(ps)-1 {
				return nil, errSyntax("SKF payload must be the last payload")
			}
			next = q.NextPayload
		}
		if c, ok := p.(interface{ check() error }); ok {
			if err := c.check(); err != nil {
				return nil, err
			}
		}
		plen := genericHeaderLen + p.BodyLen()
		if plen > maxPayloadLen {
			return nil, errSyntax("%v payload of %d octets exceeds %d", p.Type(), plen, maxPayloadLen)
		}
		b = append(b, byte(next), crit)
		b = binary.BigEndian.AppendUint16(b, uint16(plen))
		b = p.AppendBody(b)
	}
	return b, nil
}

// CheckCritical returns UNSUPPORTED_CRITICAL_PAYLOAD for the first payload in
// ps that this package does not decode and that has the critical bit set
// (RFC 7296 §2.5). Non-critical unknown payloads are skipped by later logic
// but stay in the slice so the message can be re-encoded.
func CheckCritical(ps []Payload) error {
	for _, p := range ps {
		if r, ok := p.(*RawPayload); ok && r.Critical {
			return errCritical(r.PType)
		}
	}
	return nil
}

// Find returns the first payload of type t in ps, or nil.
func Find(ps []Payload, t PayloadType) Payload {
	for _, p := range ps {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// Notifies returns the Notify payloads in ps, in order.
func Notifies(ps []Payload) []*Notify {
	var out []*Notify
	for _, p := range ps {
		if n, ok := p.(*Notify); ok {
			out = append(out, n)
		}
	}
	return out
}

// FindNotify returns the first Notify payload of type t in ps, or nil.
func FindNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// orNil returns nil for an empty slice, so that parsed payloads hold nil
// rather than empty slices (and compare equal to built ones).
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
