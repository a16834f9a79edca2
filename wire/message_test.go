package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes hex written with spaces, one structure per line; anything
// after "|" on a line is a comment.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "|")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// saInitRequest is an IKE_SA_INIT request written out by hand from
// RFC 7296 §3.1-§3.10: HDR, SA, KE, Ni, N(NAT_DETECTION_SOURCE_IP),
// N(IKEV2_FRAGMENTATION_SUPPORTED).
func saInitRequest(t testing.TB) []byte {
	return unhex(t, `
	0102030405060708 0000000000000000  | SPIi, SPIr
	21 20 22 08 00000000 000000bc      | Next=SA(33) v2.0 IKE_SA_INIT(34) I, Message ID 0, Length 188

	22 00 0030                         | SA: Next=KE, length 48
	  00 00 002c 01 01 00 04           |   proposal (last) len 44, #1, IKE, SPI size 0, 4 transforms
	    03 00 000c 01 00 000c 800e0100 |     ENCR AES_CBC, Key Length (TV) 256
	    03 00 0008 02 00 0005          |     PRF HMAC_SHA2_256
	    03 00 0008 03 00 000c          |     INTEG HMAC_SHA2_256_128
	    00 00 0008 04 00 001f          |     KE Curve25519 (last)
	28 00 0028 001f 0000               | KE: Next=Ni, length 40, group 31
	  1111111111111111111111111111111111111111111111111111111111111111
	29 00 0024                         | Ni: Next=N, length 36
	  2222222222222222222222222222222222222222222222222222222222222222
	29 00 001c 00 00 4004              | N: Next=N, length 28, proto 0, SPI size 0, NAT_DETECTION_SOURCE_IP
	  3333333333333333333333333333333333333333
	00 00 0008 00 00 402e              | N: last, IKEV2_FRAGMENTATION_SUPPORTED
	`)
}

func saInitRequestMessage() *Message {
	return &Message{
		Header: Header{SPIi: 0x0102030405060708, MajorVersion: 2, Exchange: IKE_SA_INIT, Flags: FlagInitiator},
		Payloads: []Payload{
			&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoIKE, Transforms: []ProposalTransform{
				{Transform: Transform{Type: TransformENCR, ID: uint16(EncrAES_CBC), KeyLength: 256}},
				{Transform: Transform{Type: TransformPRF, ID: uint16(PRF_HMAC_SHA2_256)}},
				{Transform: Transform{Type: TransformINTEG, ID: uint16(IntegHMAC_SHA2_256_128)}},
				{Transform: Transform{Type: TransformKE, ID: uint16(KECurve25519)}},
			}}}},
			&KE{Group: KECurve25519, Data: bytes.Repeat([]byte{0x11}, 32)},
			&Nonce{Data: bytes.Repeat([]byte{0x22}, 32)},
			&Notify{NotifyType: NAT_DETECTION_SOURCE_IP, Data: bytes.Repeat([]byte{0x33}, 20)},
			&Notify{NotifyType: IKEV2_FRAGMENTATION_SUPPORTED},
		},
	}
}

func TestSAInitRequestHandChecked(t *testing.T) {
	want := saInitRequest(t)
	got, err := saInitRequestMessage().Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode:\n got %x\nwant %x", got, want)
	}
	m, err := Parse(want)
	if err != nil {
		t.Fatal(err)
	}
	exp := saInitRequestMessage()
	exp.Header.NextPayload, exp.Header.Length = PayloadSA, 188
	if m.Header != exp.Header {
		t.Errorf("header %+v, want %+v", m.Header, exp.Header)
	}
	if !reflect.DeepEqual(m.Payloads, exp.Payloads) {
		t.Errorf("payloads differ:\n got %#v\nwant %#v", m.Payloads, exp.Payloads)
	}
	if got := payloadTypes(m.Payloads); got != "SA KE No N N" {
		t.Errorf("payload sequence %q", got)
	}
	if err := CheckRules(m); err != nil {
		t.Errorf("CheckRules: %v", err)
	}
	if sa := m.Payloads[0].(*SA); sa.Proposals[0].Transforms[0].String() != "ENCR AES_CBC-256" {
		t.Errorf("transform string %q", sa.Proposals[0].Transforms[0].String())
	}
	// Parse must copy: changing the input does not change the message.
	want[len(want)-1] = 0xff
	if n := m.Payloads[4].(*Notify); n.NotifyType != IKEV2_FRAGMENTATION_SUPPORTED {
		t.Error("Parse aliases its input")
	}
}

func payloadTypes(ps []Payload) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Type().String())
	}
	return strings.Join(s, " ")
}

func TestParseHeaderErrors(t *testing.T) {
	good := saInitRequest(t)
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		notify NotifyType
	}{
		{"short", func(b []byte) []byte { return b[:27] }, INVALID_SYNTAX},
		{"major 1", func(b []byte) []byte { b[17] = 0x10; return b }, INVALID_MAJOR_VERSION},
		{"major 3", func(b []byte) []byte { b[17] = 0x30; return b }, INVALID_MAJOR_VERSION},
		{"length too big", func(b []byte) []byte { b[27]++; return b }, INVALID_SYNTAX},
		{"length too small", func(b []byte) []byte { b[27]--; return b }, INVALID_SYNTAX},
		{"trailing octet", func(b []byte) []byte { return append(b, 0) }, INVALID_SYNTAX},
		{"payload overruns", func(b []byte) []byte { b[28+2+1] = 0xff; return b }, INVALID_SYNTAX},
		{"bad nonce length", func(b []byte) []byte {
			// shrink the nonce to 15 octets: payload length 19, message length 171
			b = append(b[:28+48+40+4+15:28+48+40+4+15], b[28+48+40+36:]...)
			b[28+48+40+3] = 19
			b[27] = byte(len(b))
			return b
		}, INVALID_SYNTAX},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.mutate(bytes.Clone(good)))
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if we.Notify != tc.notify {
				t.Fatalf("notify %v, want %v (%v)", we.Notify, tc.notify, err)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q lacks prefix", err)
			}
		})
	}
}

func TestUnknownPayloads(t *testing.T) {
	m := saInitRequestMessage()
	m.Payloads = append(m.Payloads, &RawPayload{PType: 200, Body: []byte{1, 2, 3}})
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatalf("non-critical unknown payload: %v", err)
	}
	if r, ok := p.Payloads[5].(*RawPayload); !ok || r.PType != 200 || r.Critical || !bytes.Equal(r.Body, []byte{1, 2, 3}) {
		t.Fatalf("raw payload %#v", p.Payloads[5])
	}
	if b2, _ := p.Encode(nil); !bytes.Equal(b, b2) {
		t.Fatal("unknown payload not re-encoded unchanged")
	}

	m.Payloads[5] = &RawPayload{PType: 200, Critical: true}
	b, _ = m.Encode(nil)
	p, err = Parse(b)
	var we *Error
	if !errors.As(err, &we) || we.Notify != UNSUPPORTED_CRITICAL_PAYLOAD || !bytes.Equal(we.Data, []byte{200}) {
		t.Fatalf("critical unknown payload: err %v", err)
	}
	if p == nil || len(p.Payloads) != 6 {
		t.Fatal("message not returned with UNSUPPORTED_CRITICAL_PAYLOAD")
	}
	// The critical bit of a known payload is ignored (RFC 7296 §2.5).
	b = saInitRequest(t)
	b[28+1] = 0x80
	if _, err := Parse(b); err != nil {
		t.Fatalf("critical bit on SA: %v", err)
	}
}

// authRequest builds an IKE_AUTH request with inner payloads.
func authRequest() *Message {
	return &Message{
		Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1},
		Inner: []Payload{
			&ID{IDType: ID_FQDN, Data: []byte("moon.example")},
			&Auth{Method: AuthSharedKeyMIC, Data: bytes.Repeat([]byte{0xaa}, 32)},
			&SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []ProposalTransform{
				{Transform: Transform{Type: TransformENCR, ID: uint16(EncrAES_GCM_16), KeyLength: 128}},
				{Transform: Transform{Type: TransformESN, ID: uint16(ESNNone)}},
			}}}},
			&TS{Selectors: []TrafficSelector{{StartPort: 0, EndPort: 65535,
				Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255")}}},
			&TS{Responder: true, Selectors: []TrafficSelector{{IPProtocol: 6, StartPort: 443, EndPort: 443,
				Start: netip.MustParseAddr("2001:db8::"), End: netip.MustParseAddr("2001:db8::ffff")}}},
		},
	}
}

func TestSealOpenLayout(t *testing.T) {
	p := &xorProtector{key: 0x5c}
	m := authRequest()
	b, err := m.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	innerLen := PayloadsLen(m.Inner)
	if want := HeaderLen + 4 + p.SealedLen(innerLen); len(b) != want {
		t.Fatalf("length %d, want %d", len(b), want)
	}
	// AAD for the seal is the IKE header plus the SK generic header
	// (RFC 5282 §5.1), and the header already holds the final length.
	if len(p.lastAD) != HeaderLen+4 || !bytes.Equal(p.lastAD, b[:HeaderLen+4]) {
		t.Fatalf("seal saw AAD %x", p.lastAD)
	}
	if b[16] != byte(PayloadSK) || b[HeaderLen] != byte(PayloadIDi) {
		t.Fatalf("next payload fields %d %d", b[16], b[HeaderLen])
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Encrypted() == nil || got.Encrypted().NextPayload != PayloadIDi {
		t.Fatal("no SK payload")
	}
	if err := got.Open(p); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Inner, m.Inner) {
		t.Fatalf("inner payloads:\n got %#v\nwant %#v", got.Inner, m.Inner)
	}
	if err := CheckRules(got); err != nil {
		t.Fatal(err)
	}
	// Flipping any octet (header, SK header, ciphertext or ICV) fails Open
	// with a non-*Error error.
	for _, i := range []int{0, 19, HeaderLen + 1, HeaderLen + 4, len(b) / 2, len(b) - 1} {
		c := bytes.Clone(b)
		c[i] ^= 1
		mm, err := Parse(c)
		if err != nil {
			continue // e.g. the length field
		}
		err = mm.Open(p)
		var we *Error
		if err == nil || errors.As(err, &we) {
			t.Errorf("flip at %d: err %v", i, err)
		}
	}
	// Inner payloads without a Protector are refused.
	if _, err := m.Encode(nil); err == nil {
		t.Error("Encode(nil) with Inner succeeded")
	}
}

func TestSealEmptyInformational(t *testing.T) {
	// A liveness check is an INFORMATIONAL request with an empty SK payload
	// (RFC 7296 §1.4).
	p := &xorProtector{key: 1}
	m := &Message{Header: Header{SPIi: 9, SPIr: 8, Exchange: INFORMATIONAL, MessageID: 7}}
	b, err := m.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Open(p); err != nil || len(got.Inner) != 0 {
		t.Fatalf("open: %v, %d inner", err, len(got.Inner))
	}
	if err := CheckRules(got); err != nil {
		t.Fatal(err)
	}
}

func TestMessageAccessors(t *testing.T) {
	b := saInitRequest(t)
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Raw(), b) {
		t.Error("Raw differs from the parsed octets")
	}
	if n := FindNotify(m.Payloads, IKEV2_FRAGMENTATION_SUPPORTED); n == nil || n != m.Payloads[4] {
		t.Error("FindNotify")
	}
	if FindNotify(m.Payloads, COOKIE) != nil || Find(m.Payloads, PayloadAUTH) != nil {
		t.Error("found a payload that is not there")
	}
	if m.Encrypted() != nil || m.Fragment() != nil {
		t.Error("plain message has SK/SKF")
	}
	p := &xorProtector{key: 7}
	if err := m.Open(p); err == nil {
		t.Error("Open without SK succeeded")
	}
	if _, err := m.OpenFragment(p); err == nil {
		t.Error("OpenFragment without SKF succeeded")
	}
	frags, err := bigAuthRequest().EncodeFragments(p, 800)
	if err != nil {
		t.Fatal(err)
	}
	frags[1][len(frags[1])-1] ^= 0x80 // ICV
	fm, err := Parse(frags[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fm.OpenFragment(p); err == nil || !strings.HasPrefix(err.Error(), "wire: opening SKF") {
		t.Errorf("tampered fragment: %v", err)
	}
	if (&Message{}).Raw() != nil {
		t.Error("built message has Raw octets")
	}
}
