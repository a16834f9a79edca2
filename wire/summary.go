package wire

import (
	"strconv"
	"strings"
)

// String summarises the message the way IKE logs do, e.g.
// "IKE_AUTH request 1 [ SK { IDi AUTH SA TSi TSr N(INITIAL_CONTACT) } ]".
// Inner payloads are shown when the message has been opened (or built);
// an SKF payload shows as "SKF(2/5)". No payload contents are printed, so
// the summary never contains key material.
func (m *Message) String() string {
	var sb strings.Builder
	sb.WriteString(m.Header.Exchange.String())
	if m.Header.IsResponse() {
		sb.WriteString(" response ")
	} else {
		sb.WriteString(" request ")
	}
	sb.WriteString(strconv.FormatUint(uint64(m.Header.MessageID), 10))
	sb.WriteString(" [")
	for _, p := range m.Payloads {
		sb.WriteByte(' ')
		sb.WriteString(PayloadName(p))
		if p.Type() == PayloadSK && m.Inner != nil {
			sb.WriteString(" {")
			for _, q := range m.Inner {
				sb.WriteByte(' ')
				sb.WriteString(PayloadName(q))
			}
			sb.WriteString(" }")
		}
	}
	if m.Encrypted() == nil && len(m.Inner) > 0 { // built, not yet sealed
		sb.WriteString(" SK {")
		for _, q := range m.Inner {
			sb.WriteByte(' ')
			sb.WriteString(PayloadName(q))
		}
		sb.WriteString(" }")
	}
	sb.WriteString(" ]")
	return sb.String()
}

// PayloadName is a short name for a payload: its type, with the notify
// type for N ("N(COOKIE)"), the fragment position for SKF ("SKF(1/3)"), and
// a "!" for critical unknown payloads ("PAYLOAD(99)!").
func PayloadName(p Payload) string {
	switch q := p.(type) {
	case *Notify:
		return "N(" + q.NotifyType.String() + ")"
	case *Fragment:
		return "SKF(" + strconv.Itoa(int(q.Number)) + "/" + strconv.Itoa(int(q.Total)) + ")"
	case *RawPayload:
		if q.Critical {
			return q.PType.String() + "!"
		}
	}
	return p.Type().String()
}
