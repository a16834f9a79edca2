package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// maxFragments is the largest Total Fragments value (a 16-bit field).
const maxFragments = 0xffff

// EncodeFragments encodes the message as SKF fragments (RFC 7383 §2.5.3)
// whose encoded length is at most maxSize octets each: maxSize is the whole
// IKE message, i.e. the UDP payload without the 4-octet non-ESP marker of
// port 4500 (subtract IP and UDP headers and the marker from the path MTU,
// RFC 7383 §2.5.1). Each fragment is sealed separately with p, its AAD
// covering its own header and SKF header (including Fragment Number and
// Total Fragments). Fragment 1 carries the type of the first inner payload
// in its Next Payload field, the others 0; unprotected Payloads, if any,
// travel in fragment 1 only.
func (m *Message) EncodeFragments(p Protector, maxSize int) ([][]byte, error) {
	for _, q := range m.Payloads {
		if t := q.Type(); t == PayloadSK || t == PayloadSKF {
			return nil, fmt.Errorf("wire: %v payload in Payloads of a message to fragment", t)
		}
	}
	plain, err := AppendPayloads(nil, m.Inner, PayloadNone)
	if err != nil {
		return nil, err
	}
	const skfOverhead = genericHeaderLen + fragmentHeaderLen
	firstCap := maxPlaintext(p, maxSize-HeaderLen-PayloadsLen(m.Payloads)-skfOverhead)
	restCap := maxPlaintext(p, maxSize-HeaderLen-skfOverhead)
	if firstCap < 1 || restCap < 1 {
		return nil, fmt.Errorf("wire: %d octets leave no room for fragment data", maxSize)
	}
	var chunks [][]byte
	for rest, c := plain, firstCap; ; c = restCap {
		n := min(c, len(rest))
		chunks = append(chunks, rest[:n])
		rest = rest[n:]
		if len(rest) == 0 {
			break
		}
		if len(chunks) == maxFragments {
			return nil, fmt.Errorf("wire: more than %d fragments needed", maxFragments)
		}
	}
	first := PayloadNone
	if len(m.Inner) > 0 {
		first = m.Inner[0].Type()
	}
	total := uint16(len(chunks))
	out := make([][]byte, 0, len(chunks))
	for i, chunk := range chunks {
		fm := &Message{Header: m.Header}
		next := PayloadNone
		if i == 0 {
			fm.Payloads, next = m.Payloads, first
		}
		num := uint16(i + 1)
		b, err := fm.seal(p, chunk, func(b []byte, bodyLen int) []byte {
			b = append(b, byte(next), 0)
			b = binary.BigEndian.AppendUint16(b, uint16(genericHeaderLen+bodyLen))
			b = binary.BigEndian.AppendUint16(b, num)
			return binary.BigEndian.AppendUint16(b, total)
		}, PayloadSKF, fragmentHeaderLen)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// maxPlaintext is the largest plaintext length whose sealed body fits in
// budget octets, or 0 if none does. SealedLen is non-decreasing.
func maxPlaintext(p Protector, budget int) int {
	if budget <= 0 || p.SealedLen(1) > budget {
		return 0
	}
	lo, hi := 1, budget // SealedLen(lo) <= budget; the answer is < hi+1
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if p.SealedLen(mid) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// Reassembler collects the decrypted plaintexts of SKF fragments
// (RFC 7383 §2.6) and yields the inner payloads when a message is complete.
// It is bounded: at most maxFragments fragments per message and maxBytes
// octets buffered over all messages. It has no clock: the caller calls
// Forget when its reassembly timer for a message fires (or when the IKE SA
// goes away). A Reassembler belongs to one IKE SA and is not safe for
// concurrent use.
type Reassembler struct {
	maxFragments int
	maxBytes     int
	buffered     int
	pending      map[fragKey]*fragSet
}

// fragKey identifies a fragmented message of one IKE SA: requests and
// responses have separate Message ID spaces per direction.
type fragKey struct {
	messageID uint32
	response  bool
}

type fragSet struct {
	exchange ExchangeType
	total    uint16
	got      int
	size     int
	frags    [][]byte // index Number-1; nil until received
	first    *Message // fragment 1, for its header and unprotected payloads
	next     PayloadType
}

// Errors from Reassembler.Add for fragments that must be dropped.
var (
	ErrFragmentLimit = errors.New("wire: fragment exceeds reassembly limits")
	ErrNotFragment   = errors.New("wire: message has no SKF payload")
)

// NewReassembler returns a Reassembler accepting at most maxFragments
// fragments per message and buffering at most maxBytes plaintext octets.
func NewReassembler(maxFragments, maxBytes int) *Reassembler {
	return &Reassembler{maxFragments: maxFragments, maxBytes: maxBytes, pending: map[fragKey]*fragSet{}}
}

// Add records one fragment: m is the parsed SKF message and plaintext what
// m.OpenFragment returned (the ICV already verified, RFC 7383 §2.6). It
// returns (nil, nil) while the message is incomplete and for fragments that
// are ignored (duplicates; a smaller Total Fragments than fragments already
// held, RFC 7383 §2.5.2). A larger Total Fragments discards what was held and
// starts over. When the last fragment arrives it returns the reassembled
// message: the header and unprotected payloads of fragment 1, then an
// *Encrypted payload standing for the reassembled SK payload (Body nil),
// and the parsed inner payloads in Inner, ready for CheckRules.
func (r *Reassembler) Add(m *Message, plaintext []byte) (*Message, error) {
	f := m.Fragment()
	if f == nil {
		return nil, ErrNotFragment
	}
	if f.Number == 0 || f.Number > f.Total { // Parse rejects these; a built message may not
		return nil, errSyntax("SKF fragment %d of %d", f.Number, f.Total)
	}
	if int(f.Total) > r.maxFragments {
		return nil, fmt.Errorf("%w: %d fragments, at most %d", ErrFragmentLimit, f.Total, r.maxFragments)
	}
	key := fragKey{m.Header.MessageID, m.Header.IsResponse()}
	s := r.pending[key]
	if s != nil && (f.Total < s.total || m.Header.Exchange != s.exchange) {
		return nil, nil
	}
	if s != nil && f.Total > s.total {
		r.Forget(key.messageID, key.response)
		s = nil
	}
	if s == nil {
		s = &fragSet{exchange: m.Header.Exchange, total: f.Total, frags: make([][]byte, f.Total)}
		r.pending[key] = s
	}
	i := int(f.Number) - 1
	if s.frags[i] != nil {
		return nil, nil
	}
	if r.buffered+len(plaintext) > r.maxBytes {
		return nil, fmt.Errorf("%w: %d octets buffered, at most %d", ErrFragmentLimit, r.buffered+len(plaintext), r.maxBytes)
	}
	s.frags[i] = append(make([]byte, 0, len(plaintext)+1), plaintext...) // non-nil even when empty
	s.got++
	s.size += len(plaintext)
	r.buffered += len(plaintext)
	if f.Number == 1 {
		s.first, s.next = m, f.NextPayload
	}
	if s.got < int(s.total) {
		return nil, nil
	}
	r.Forget(key.messageID, key.response)
	plain := bytes.Join(s.frags, nil)
	inner, err := ParsePayloads(s.next, plain)
	if err != nil {
		return nil, err
	}
	outer := s.first.Payloads[:len(s.first.Payloads)-1]
	out := &Message{
		Header:   s.first.Header,
		Payloads: append(append([]Payload(nil), outer...), &Encrypted{NextPayload: s.next}),
		Inner:    inner,
	}
	return out, CheckCritical(inner)
}

// Forget drops the fragments held for a message, e.g. when its reassembly
// timer expires.
func (r *Reassembler) Forget(messageID uint32, response bool) {
	key := fragKey{messageID, response}
	if s := r.pending[key]; s != nil {
		r.buffered -= s.size
		delete(r.pending, key)
	}
}

// Pending is the number of messages with fragments held.
func (r *Reassembler) Pending() int { return len(r.pending) }

// Buffered is the number of plaintext octets held.
func (r *Reassembler) Buffered() int { return r.buffered }
