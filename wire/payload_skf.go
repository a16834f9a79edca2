package wire

import "encoding/binary"

// Fragment is the Encrypted and Authenticated Fragment payload, SKF
// (RFC 7383 §2.5). NextPayload is the type of the first inner payload in
// fragment 1 and 0 in the others; Number counts from 1 to Total. Body is
// IV | ciphertext | ICV, protected separately for each fragment
// (RFC 7383 §2.5.3).
type Fragment struct {
	NextPayload PayloadType
	Number      uint16
	Total       uint16
	Body        []byte
	bodyOff     int
}

// fragmentHeaderLen is Fragment Number + Total Fragments.
const fragmentHeaderLen = 4

func (*Fragment) Type() PayloadType { return PayloadSKF }
func (f *Fragment) BodyLen() int    { return fragmentHeaderLen + len(f.Body) }

func (f *Fragment) AppendBody(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, f.Number)
	b = binary.BigEndian.AppendUint16(b, f.Total)
	return append(b, f.Body...)
}

// parseFragment checks RFC 7383 §2.5: Fragment Number and Total Fragments
// are at least 1 and Number does not exceed Total.
func parseFragment(next PayloadType, body []byte, bodyOff int) (*Fragment, error) {
	if len(body) < fragmentHeaderLen {
		return nil, errTruncated("SKF payload", fragmentHeaderLen, len(body))
	}
	f := &Fragment{
		NextPayload: next,
		Number:      binary.BigEndian.Uint16(body[0:2]),
		Total:       binary.BigEndian.Uint16(body[2:4]),
		Body:        orNil(body[fragmentHeaderLen:]),
		bodyOff:     bodyOff + fragmentHeaderLen,
	}
	if f.Number == 0 || f.Total == 0 || f.Number > f.Total {
		return nil, errSyntax("SKF fragment %d of %d", f.Number, f.Total)
	}
	return f, nil
}
