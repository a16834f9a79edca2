package wire

import (
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	want := []string{
		"SA(#1 IKE: ENCR AES_CBC-256, PRF PRF_HMAC_SHA2_256, INTEG HMAC_SHA2_256_128, KE CURVE_25519)",
		"KE(CURVE_25519, 32 octets)",
		"No(32 octets)",
		"N(NAT_DETECTION_SOURCE_IP, 20 octets)",
		"N(IKEV2_FRAGMENTATION_SUPPORTED)",
	}
	for i, p := range saInitRequestMessage().Payloads {
		if got := Describe(p); got != want[i] {
			t.Errorf("got  %s\nwant %s", got, want[i])
		}
	}
	var all []string
	for _, tc := range payloadCases {
		all = append(all, Describe(tc.p))
	}
	for _, s := range []string{
		"IDi(ID_FQDN \"sun\")", "IDr(ID_IPV4_ADDR 192.0.2.1)", "N(REKEY_SA, ESP spi=01020304)",
		"D(ESP 11223344 55667788)", "TSi(192.0.2.0/24[17/500-4500])", "TSr(2001:db8::1..2001:db8::ff 0.0.0.0/0)",
		"CP(CFG_REQUEST: INTERNAL_IP4_ADDRESS INTERNAL_IP4_DNS INTERNAL_IP6_ADDRESS=::/64)",
		"EAP(code 2 id 7 type 1)", "PAYLOAD(150)(1 octets)", "AUTH(DIGITAL_SIGNATURE, 2 octets)",
	} {
		found := false
		for _, d := range all {
			found = found || d == s
		}
		if !found {
			t.Errorf("no payload described as %s in\n%s", s, strings.Join(all, "\n"))
		}
	}
}
