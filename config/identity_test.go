package config

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  wire.IDType
		data string
	}{
		{"192.0.2.1", wire.ID_IPV4_ADDR, "\xc0\x00\x02\x01"},
		{"::ffff:192.0.2.1", wire.ID_IPV4_ADDR, "\xc0\x00\x02\x01"},
		{"2001:db8::1", wire.ID_IPV6_ADDR, "\x20\x01\x0d\xb8" + string(make([]byte, 11)) + "\x01"},
		{"ipv4:198.51.100.7", wire.ID_IPV4_ADDR, "\xc6\x33\x64\x07"},
		{"fqdn:vpn.example.com", wire.ID_FQDN, "vpn.example.com"},
		{"@vpn.example.com", wire.ID_FQDN, "vpn.example.com"},
		{"vpn.example.com", wire.ID_FQDN, "vpn.example.com"},
		{"*.example.com", wire.ID_FQDN, "*.example.com"},
		{"email:alice@example.com", wire.ID_RFC822_ADDR, "alice@example.com"},
		{"alice@example.com", wire.ID_RFC822_ADDR, "alice@example.com"},
		{"*@example.com", wire.ID_RFC822_ADDR, "*@example.com"},
		{"keyid:0a0B0c", wire.ID_KEY_ID, "\x0a\x0b\x0c"},
		{"@#0102", wire.ID_KEY_ID, "\x01\x02"},
	} {
		id, err := ParseIdentity(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if id.Type != tc.typ || string(id.Data) != tc.data || id.String() != tc.in {
			t.Errorf("%s: %v %x %q", tc.in, id.Type, id.Data, id.String())
		}
	}
	any, err := ParseIdentity("%any")
	if err != nil || !any.IsAny() || any.String() != "%any" {
		t.Errorf("%%any: %+v %v", any, err)
	}
	for _, bad := range []string{"", "fqdn:", "email:@example.com", "email:alice@", "keyid:xyz", "ipv4:2001:db8::1",
		"ipv6:192.0.2.1", "bad_label-too-long-" + string(bytes.Repeat([]byte("a"), 60)) + ".com", "C=CH, O", "a..b"} {
		if id, err := ParseIdentity(bad); err == nil {
			t.Errorf("%q accepted as %v", bad, id.Type)
		}
	}
}

// A DN is encoded in the order written; for the order crypto/x509 uses
// (C, O, OU, CN) the octets match pkix.Name's own encoding.
func TestDNIdentity(t *testing.T) {
	id, err := ParseIdentity("C=CH, O=Example AG, OU=VPN, CN=moon.example.com")
	if err != nil {
		t.Fatal(err)
	}
	name := pkix.Name{Country: []string{"CH"}, Organization: []string{"Example AG"},
		OrganizationalUnit: []string{"VPN"}, CommonName: "moon.example.com"}
	want, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	if id.Type != wire.ID_DER_ASN1_DN || !bytes.Equal(id.Data, want) {
		t.Errorf("DN octets\n got %x\nwant %x", id.Data, want)
	}
	// Reversed order stays reversed: not the same identity.
	rev, err := ParseIdentity("CN=moon.example.com, OU=VPN, O=Example AG, C=CH")
	if err != nil {
		t.Fatal(err)
	}
	if rev.Equal(id) {
		t.Error("DN order ignored")
	}
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(rev.Data, &rdn); err != nil || len(rest) != 0 {
		t.Fatal(err)
	}
	if rdn.String() != "C=CH,O=Example AG,OU=VPN,CN=moon.example.com" { // RFC 4514 prints the last RDN first
		t.Errorf("decoded %s", rdn.String())
	}
}

func TestIdentityEqual(t *testing.T) {
	a, _ := ParseIdentity("fqdn:VPN.example.com")
	b, _ := ParseIdentity("vpn.EXAMPLE.com")
	c, _ := ParseIdentity("email:vpn.example.com@x.org")
	if !a.Equal(b) || a.Equal(c) {
		t.Error("FQDNs compare case-insensitively and by type")
	}
}
