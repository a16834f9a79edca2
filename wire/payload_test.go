package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

// payloadCases pairs payloads with their bodies written out by hand from
// the RFC 7296 §3 diagrams.
var payloadCases = []struct {
	name string
	p    Payload
	body string
}{
	{"SA ESP with attributes", &SA{Proposals: []Proposal{
		{Number: 1, Protocol: ProtoESP, SPI: []byte{0xc0, 0xff, 0xee, 0x01}, Transforms: []ProposalTransform{
			{Transform: Transform{Type: TransformENCR, ID: uint16(EncrAES_CBC), KeyLength: 128},
				Attrs: []TransformAttr{{Type: 0x1234, TV: true, Value: []byte{0xab, 0xcd}}, {Type: 0x0042, Value: []byte{1, 2, 3}}}},
			{Transform: Transform{Type: TransformESN, ID: 0}},
		}},
		{Number: 2, Protocol: ProtoESP, SPI: []byte{0xc0, 0xff, 0xee, 0x01}, Transforms: []ProposalTransform{
			{Transform: Transform{Type: TransformENCR, ID: uint16(EncrCHACHA20_POLY1305)}},
		}},
	}}, `
	02 00 002b 01 03 04 02 c0ffee01     | proposal 1 (more follow), len 43, ESP, SPI size 4, 2 transforms
	  03 00 0017 01 00 000c             |   ENCR AES_CBC, len 23
	    800e 0080                       |     Key Length 128 (TV)
	    9234 abcd                       |     unknown TV attribute 0x1234
	    0042 0003 010203                |     unknown TLV attribute 0x42
	  00 00 0008 05 00 0000             |   ESN none (last)
	00 00 0014 02 03 04 01 c0ffee01     | proposal 2 (last), len 20
	  00 00 0008 01 00 001c             |   ENCR CHACHA20_POLY1305
	`},
	{"KE", &KE{Group: KEECP256, Data: []byte{1, 2, 3, 4}}, `0013 0000 01020304`},
	{"IDi FQDN", &ID{IDType: ID_FQDN, Data: []byte("sun")}, `02 000000 73756e`},
	{"IDr IPv4", &ID{Responder: true, IDType: ID_IPV4_ADDR, Data: []byte{192, 0, 2, 1}}, `01 000000 c0000201`},
	{"IDi NULL", &ID{IDType: ID_NULL}, `0d 000000`},
	{"CERT", &Cert{Encoding: CertX509Signature, Data: []byte{0x30, 0x82}}, `04 3082`},
	{"CERTREQ", &CertReq{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0xee}, 20)}, `04` + hexRepeat("ee", 20)},
	{"AUTH", &Auth{Method: AuthDigitalSignature, Data: []byte{9, 8}}, `0e 000000 0908`},
	{"Nonce", &Nonce{Data: bytes.Repeat([]byte{7}, 16)}, hexRepeat("07", 16)},
	{"N REKEY_SA ESP", &Notify{Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, NotifyType: REKEY_SA}, `03 04 4009 01020304`},
	{"N INVALID_KE_PAYLOAD", &Notify{NotifyType: INVALID_KE_PAYLOAD, Data: []byte{0, 19}}, `00 00 0011 0013`},
	{"D ESP", &Delete{Protocol: ProtoESP, SPIs: []uint32{0x11223344, 0x55667788}}, `03 04 0002 11223344 55667788`},
	{"D IKE", &Delete{Protocol: ProtoIKE}, `01 00 0000`},
	{"V", &VendorID{Data: []byte("petrel")}, `70657472656c`},
	{"TSi IPv4", &TS{Selectors: []TrafficSelector{{IPProtocol: 17, StartPort: 500, EndPort: 4500,
		Start: netip.MustParseAddr("192.0.2.0"), End: netip.MustParseAddr("192.0.2.255")}}}, `
	01 000000
	07 11 0010 01f4 1194 c0000200 c00002ff`},
	{"TSr IPv6 and IPv4", &TS{Responder: true, Selectors: []TrafficSelector{
		{StartPort: 0, EndPort: 65535, Start: netip.MustParseAddr("2001:db8::1"), End: netip.MustParseAddr("2001:db8::ff")},
		{StartPort: 0, EndPort: 65535, Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")}}}, `
	02 000000
	08 00 0028 0000 ffff 20010db8000000000000000000000001 20010db80000000000000000000000ff
	07 00 0010 0000 ffff 00000000 ffffffff`},
	{"CP request", &CP{CFGType: CFG_REQUEST, Attrs: []CPAttr{{Type: INTERNAL_IP4_ADDRESS}, {Type: INTERNAL_IP4_DNS},
		{Type: INTERNAL_IP6_ADDRESS, Value: append(bytes.Repeat([]byte{0}, 16), 64)}}}, `
	01 000000 0001 0000 0003 0000 0008 0011 00000000000000000000000000000000 40`},
	{"EAP identity response", &EAP{Message: []byte{2, 7, 0, 8, 1, 'b', 'o', 'b'}}, `02 07 0008 01 626f62`},
	{"EAP success", &EAP{Message: []byte{3, 7, 0, 4}}, `03 07 0004`},
	{"unknown", &RawPayload{PType: 150, Body: []byte{1}}, `01`},
}

func hexRepeat(h string, n int) string { return string(bytes.Repeat([]byte(h), n)) }

func TestPayloadRoundTrip(t *testing.T) {
	for _, tc := range payloadCases {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.body)
			if n := tc.p.BodyLen(); n != len(want) {
				t.Fatalf("BodyLen %d, want %d", n, len(want))
			}
			if got := tc.p.AppendBody([]byte{0xaa}); !bytes.Equal(got[1:], want) || got[0] != 0xaa {
				t.Fatalf("AppendBody\n got %x\nwant %x", got[1:], want)
			}
			// Through the generic header chain, with a second payload after it.
			chain := []Payload{tc.p, &Notify{NotifyType: INITIAL_CONTACT}}
			b, err := AppendPayloads(nil, chain, PayloadNone)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != byte(PayloadN) || int(b[2])<<8|int(b[3]) != 4+len(want) {
				t.Fatalf("generic header %x", b[:4])
			}
			got, err := ParsePayloads(tc.p.Type(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, chain) {
				t.Fatalf("parsed\n%#v\nwant\n%#v", got[0], tc.p)
			}
		})
	}
}

func TestPayloadParseErrors(t *testing.T) {
	tests := []struct {
		name string
		t    PayloadType
		body string
	}{
		{"SA empty", PayloadSA, ``},
		{"SA short proposal", PayloadSA, `00 00 0007 01 01 00 00`},
		{"SA proposal overruns", PayloadSA, `00 00 0010 01 01 00 00`},
		{"SA last but more", PayloadSA, `00 00 0008 01 01 00 00 00 00 0008 02 01 00 00`},
		{"SA more but last", PayloadSA, `02 00 0008 01 01 00 00`},
		{"SA bad last substruc", PayloadSA, `05 00 0008 01 01 00 00`},
		{"SA SPI overruns", PayloadSA, `00 00 000a 01 03 04 00 0102`},
		{"SA num transforms", PayloadSA, `00 00 0010 01 01 00 02 00 00 0008 01 00 000c`},
		{"SA transform last but more", PayloadSA, `00 00 0018 01 01 00 02 00 00 0008 01 00 000c 00 00 0008 02 00 0005`},
		{"SA transform more but last", PayloadSA, `00 00 0010 01 01 00 01 03 00 0008 01 00 000c`},
		{"SA transform short", PayloadSA, `00 00 000f 01 01 00 01 00 00 0007 01 00 000c`},
		{"SA attribute truncated", PayloadSA, `00 00 0012 01 01 00 01 00 00 000a 01 00 000c 800e`},
		{"SA TLV overruns", PayloadSA, `00 00 0014 01 01 00 01 00 00 000c 01 00 000c 0001 0009`},
		{"SA key length twice", PayloadSA, `00 00 0018 01 01 00 01 00 00 0010 01 00 000c 800e 0080 800e 0100`},
		{"SA key length TLV", PayloadSA, `00 00 0016 01 01 00 01 00 00 000e 01 00 000c 000e 0002 0080`},
		{"KE short", PayloadKE, `0013 00`},
		{"ID short", PayloadIDi, `02 0000`},
		{"CERT empty", PayloadCERT, ``},
		{"CERTREQ empty", PayloadCERTREQ, ``},
		{"AUTH short", PayloadAUTH, `02 00`},
		{"Nonce 15", PayloadNonce, hexRepeat("01", 15)},
		{"Nonce 257", PayloadNonce, hexRepeat("01", 257)},
		{"N short", PayloadN, `00 00 40`},
		{"N SPI overruns", PayloadN, `03 04 4009 0102`},
		{"D IKE with SPIs", PayloadD, `01 08 0001 0102030405060708`},
		{"D ESP SPI size", PayloadD, `03 08 0001 0102030405060708`},
		{"D ESP count", PayloadD, `03 04 0002 01020304`},
		{"D ESP trailing", PayloadD, `03 04 0001 01020304 05`},
		{"D unknown protocol", PayloadD, `07 04 0001 01020304`},
		{"D short", PayloadD, `03 04 00`},
		{"TS short", PayloadTSi, `01 0000`},
		{"TS count", PayloadTSi, `02 000000 07 00 0010 0000 ffff 00000000 ffffffff`},
		{"TS unknown type", PayloadTSi, `01 000000 09 00 0010 0000 ffff 00000000 ffffffff`},
		{"TS seclabel", PayloadTSr, `01 000000 0a 00 0008 01020304`},
		{"TS v4 length", PayloadTSi, `01 000000 07 00 0028 0000 ffff 00000000 ffffffff 00000000000000000000000000000000`},
		{"TS truncated", PayloadTSi, `01 000000 07 00 0010 0000 ffff 00000000`},
		{"TS header truncated", PayloadTSi, `01 000000 07 00 0010`},
		{"CP short", PayloadCP, `01 00`},
		{"CP attr truncated", PayloadCP, `01 000000 0001 00`},
		{"CP attr overruns", PayloadCP, `01 000000 0001 0004 0a00`},
		{"EAP short", PayloadEAP, `02 07 00`},
		{"EAP length", PayloadEAP, `02 07 0009 01 626f62`},
		{"EAP no type", PayloadEAP, `01 07 0004`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := unhex(t, tc.body)
			b := append([]byte{0, 0, byte((4 + len(body)) >> 8), byte(4 + len(body))}, body...)
			_, err := ParsePayloads(tc.t, b)
			var we *Error
			if !errors.As(err, &we) || we.Notify != INVALID_SYNTAX {
				t.Fatalf("err = %v, want INVALID_SYNTAX", err)
			}
		})
	}
}

func TestChainErrors(t *testing.T) {
	for _, tc := range []struct{ name, chain string }{
		{"truncated generic header", `00 00 00`},
		{"length below 4", `00 00 0003 00`},
		{"length beyond end", `00 00 000a 0102030405`},
		{"trailing octets", `00 00 0005 01 ff`},
		{"next payload missing", `2b 00 0005 01`},
		{"SK not last", `00 00 0005 01 00 00 0004`},
		{"SKF fragment 0", `00 00 0008 0000 0001`},
		{"SKF number above total", `00 00 0008 0003 0002`},
		{"SKF short", `00 00 0006 0001`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := PayloadV
			switch tc.name {
			case "SK not last":
				first = PayloadSK
			case "SKF fragment 0", "SKF number above total", "SKF short":
				first = PayloadSKF
			}
			_, err := ParsePayloads(first, unhex(t, tc.chain))
			var we *Error
			if !errors.As(err, &we) || we.Notify != INVALID_SYNTAX {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestEncodeLimits(t *testing.T) {
	for _, p := range []Payload{
		&VendorID{Data: make([]byte, 65532)},
		&SA{Proposals: []Proposal{{SPI: make([]byte, 256)}}},
		&Notify{SPI: make([]byte, 256)},
		&Delete{Protocol: ProtoIKE, SPIs: []uint32{1}},
		&Delete{Protocol: 9, SPIs: []uint32{1}},
		&TS{Selectors: make([]TrafficSelector, 256)},
	} {
		if _, err := AppendPayloads(nil, []Payload{p}, PayloadNone); err == nil {
			t.Errorf("%T encoded without error", p)
		}
	}
	if _, err := AppendPayloads(nil, []Payload{&VendorID{Data: make([]byte, 65531)}}, PayloadNone); err != nil {
		t.Errorf("65535-octet payload: %v", err)
	}
	if _, err := AppendPayloads(nil, []Payload{&Encrypted{}, &Nonce{}}, PayloadNone); err == nil {
		t.Error("SK not last encoded")
	}
}

func TestEAPAccessors(t *testing.T) {
	e := &EAP{Message: []byte{1, 42, 0, 5, 26}}
	if e.Code() != EAPRequest || e.Identifier() != 42 || e.EAPType() != 26 {
		t.Fatalf("%d %d %d", e.Code(), e.Identifier(), e.EAPType())
	}
	e = &EAP{Message: []byte{3, 42, 0, 4}}
	if e.Code() != EAPSuccess || e.EAPType() != 0 {
		t.Fatal("success has no type")
	}
	if (&EAP{}).Code() != 0 || (&EAP{}).Identifier() != 0 {
		t.Fatal("empty EAP")
	}
}

func TestCertReqAuthorities(t *testing.T) {
	c := &CertReq{Encoding: CertX509Signature, Data: append(bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)...)}
	h, ok := c.Authorities()
	if !ok || len(h) != 2 || h[1][0] != 2 {
		t.Fatalf("%v %v", h, ok)
	}
	if _, ok := (&CertReq{Data: make([]byte, 21)}).Authorities(); ok {
		t.Fatal("21 octets split")
	}
}

func TestTrafficSelectorOddAddresses(t *testing.T) {
	// Mixed or zero addresses encode without panicking: an IPv6 End of an
	// IPv4 selector is written as zeros, an IPv4 End of an IPv6 selector as
	// IPv4-mapped, a zero address as zeros.
	ts := &TS{Selectors: []TrafficSelector{
		{Start: netip.MustParseAddr("10.0.0.1"), End: netip.MustParseAddr("2001:db8::1")},
		{Start: netip.MustParseAddr("2001:db8::1"), End: netip.MustParseAddr("10.0.0.2")},
		{},
	}}
	b, err := AppendPayloads(nil, []Payload{ts}, PayloadNone)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePayloads(PayloadTSi, b)
	if err != nil {
		t.Fatal(err)
	}
	s := got[0].(*TS).Selectors
	if s[0].Start != netip.MustParseAddr("10.0.0.1") || s[0].End != netip.MustParseAddr("0.0.0.0") ||
		s[1].End != netip.MustParseAddr("::ffff:10.0.0.2") || s[2].Start != netip.MustParseAddr("0.0.0.0") {
		t.Fatalf("%+v", s)
	}
}

func TestTrafficSelectorString(t *testing.T) {
	for _, tc := range []struct {
		s    TrafficSelector
		want string
	}{
		{TrafficSelector{EndPort: 65535, Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255")}, "10.1.0.0/16"},
		{TrafficSelector{EndPort: 65535, Start: netip.MustParseAddr("0.0.0.0"), End: netip.MustParseAddr("255.255.255.255")}, "0.0.0.0/0"},
		{TrafficSelector{EndPort: 65535, Start: netip.MustParseAddr("192.0.2.1"), End: netip.MustParseAddr("192.0.2.1")}, "192.0.2.1/32"},
		{TrafficSelector{IPProtocol: 6, StartPort: 443, EndPort: 443, Start: netip.MustParseAddr("2001:db8::"),
			End: netip.MustParseAddr("2001:db8::ffff")}, "2001:db8::/112[6/443]"},
		{TrafficSelector{IPProtocol: 17, StartPort: 500, EndPort: 4500, Start: netip.MustParseAddr("192.0.2.1"),
			End: netip.MustParseAddr("192.0.2.7")}, "192.0.2.1..192.0.2.7[17/500-4500]"},
		{TrafficSelector{IPProtocol: 1, EndPort: 65535, Start: netip.MustParseAddr("192.0.2.0"), End: netip.MustParseAddr("192.0.2.255")}, "192.0.2.0/24[1]"},
		{TrafficSelector{}, "invalid IP..invalid IP[0/0]"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
