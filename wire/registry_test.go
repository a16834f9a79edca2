package wire

import "testing"

func TestRegistryStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{PayloadSA.String(), "SA"}, {PayloadNonce.String(), "No"}, {PayloadSKF.String(), "SKF"},
		{PayloadType(99).String(), "PAYLOAD(99)"},
		{IKE_SA_INIT.String(), "IKE_SA_INIT"}, {IKE_INTERMEDIATE.String(), "IKE_INTERMEDIATE"},
		{ExchangeType(7).String(), "EXCHANGE(7)"},
		{INVALID_SYNTAX.String(), "INVALID_SYNTAX"}, {IKEV2_FRAGMENTATION_SUPPORTED.String(), "IKEV2_FRAGMENTATION_SUPPORTED"},
		{SIGNATURE_HASH_ALGORITHMS.String(), "SIGNATURE_HASH_ALGORITHMS"}, {ADDITIONAL_KEY_EXCHANGE.String(), "ADDITIONAL_KEY_EXCHANGE"},
		{INTERMEDIATE_EXCHANGE_SUPPORTED.String(), "INTERMEDIATE_EXCHANGE_SUPPORTED"},
		{IKEV2_MESSAGE_ID_SYNC.String(), "IKEV2_MESSAGE_ID_SYNC"}, {REDIRECT.String(), "REDIRECT"},
		{MOBIKE_SUPPORTED.String(), "MOBIKE_SUPPORTED"}, {NotifyType(12345).String(), "NOTIFY(12345)"},
		{ID_NULL.String(), "ID_NULL"}, {IDType(4).String(), "ID(4)"},
		{AuthDigitalSignature.String(), "DIGITAL_SIGNATURE"}, {AuthECDSA384.String(), "ECDSA_SHA384_P384"},
		{AuthSharedKeyMIC.String(), "PSK"}, {AuthMethod(200).String(), "AUTH_METHOD(200)"},
		{CertHashURLX509.String(), "HASH_URL_X509"}, {CertHashURLBundle.String(), "HASH_URL_X509_BUNDLE"},
		{ProtoESP.String(), "ESP"}, {ProtocolID(9).String(), "PROTO(9)"},
		{TS_IPV6_ADDR_RANGE.String(), "TS_IPV6_ADDR_RANGE"}, {HashSHA2_256.String(), "SHA2_256"},
		{HashAlgorithm(0).String(), "HASH(0)"}, {CFG_REPLY.String(), "CFG_REPLY"},
		{INTERNAL_IP4_ADDRESS.String(), "INTERNAL_IP4_ADDRESS"}, {CPAttrType(30000).String(), "CP_ATTR(30000)"},
		{(FlagInitiator | FlagResponse).String(), "I|R"}, {Flags(0).String(), "NONE"},
		{(FlagVersion | 0x01).String(), "V|0x01"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if !AUTHENTICATION_FAILED.IsError() || INITIAL_CONTACT.IsError() || NotifyType(0).IsError() {
		t.Error("IsError")
	}
	if !FlagInitiator.Initiator() || FlagInitiator.Response() {
		t.Error("flag predicates")
	}
}

func TestMessageString(t *testing.T) {
	m := saInitRequestMessage()
	want := "IKE_SA_INIT request 0 [ SA KE No N(NAT_DETECTION_SOURCE_IP) N(IKEV2_FRAGMENTATION_SUPPORTED) ]"
	if got := m.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	a := authRequest()
	if got, want := a.String(), "IKE_AUTH request 1 [ SK { IDi AUTH SA TSi TSr } ]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	p := &xorProtector{key: 3}
	b, _ := a.Encode(p)
	parsed, _ := Parse(b)
	if got, want := parsed.String(), "IKE_AUTH request 1 [ SK ]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	parsed.Open(p)
	if got, want := parsed.String(), "IKE_AUTH request 1 [ SK { IDi AUTH SA TSi TSr } ]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	frags, _ := bigAuthRequest().EncodeFragments(p, 500)
	f, _ := Parse(frags[1])
	if got := f.String(); got != "IKE_AUTH request 1 [ SKF(2/"+itoa(len(frags))+") ]" {
		t.Errorf("fragment: %q", got)
	}
	if got := PayloadName(&RawPayload{PType: 99, Critical: true}); got != "PAYLOAD(99)!" {
		t.Errorf("%q", got)
	}
}
