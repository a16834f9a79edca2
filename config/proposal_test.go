package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

func encrT(id wire.EncrID, bits uint16) wire.Transform {
	return wire.Transform{Type: wire.TransformENCR, ID: uint16(id), KeyLength: bits}
}
func prfT(id wire.PRFID) wire.Transform {
	return wire.Transform{Type: wire.TransformPRF, ID: uint16(id)}
}
func integT(id wire.IntegID) wire.Transform {
	return wire.Transform{Type: wire.TransformINTEG, ID: uint16(id)}
}
func keT(id wire.KEID) wire.Transform { return wire.Transform{Type: wire.TransformKE, ID: uint16(id)} }
func esnT(id wire.ESNID) wire.Transform {
	return wire.Transform{Type: wire.TransformESN, ID: uint16(id)}
}

func TestParseProposal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []wire.Transform
	}{
		{"aes256gcm16-prfsha256-x25519", []wire.Transform{encrT(wire.EncrAES_GCM_16, 256), prfT(wire.PRF_HMAC_SHA2_256), keT(wire.KECurve25519)}},
		// No PRF: derived from the integrity algorithm (strongSwan's rule).
		{"aes128-sha256-modp3072", []wire.Transform{encrT(wire.EncrAES_CBC, 128), prfT(wire.PRF_HMAC_SHA2_256), integT(wire.IntegHMAC_SHA2_256_128), keT(wire.KEMODP3072)}},
		// Several of one type are ORed; order kept within a type; case ignored.
		{"AES256GCM128-chacha20poly1305-prfsha384-ecp384-curve25519", []wire.Transform{encrT(wire.EncrAES_GCM_16, 256), encrT(wire.EncrCHACHA20_POLY1305, 0), prfT(wire.PRF_HMAC_SHA2_384), keT(wire.KEECP384), keT(wire.KECurve25519)}},
		{"aes-sha1-sha512-modp2048", []wire.Transform{encrT(wire.EncrAES_CBC, 128), prfT(wire.PRF_HMAC_SHA1), prfT(wire.PRF_HMAC_SHA2_512), integT(wire.IntegHMAC_SHA1_96), integT(wire.IntegHMAC_SHA2_512_256), keT(wire.KEMODP2048)}},
		// RFC 9370 additional key exchange.
		{"aes256gcm16-prfsha256-x25519-ke1_mlkem768", []wire.Transform{encrT(wire.EncrAES_GCM_16, 256), prfT(wire.PRF_HMAC_SHA2_256), keT(wire.KECurve25519), {Type: wire.TransformADDKE1, ID: uint16(wire.KEMLKEM768)}}},
	} {
		got, err := ParseProposal(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.in, got, tc.want)
		}
	}
}

func TestParseESPProposal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []wire.Transform
	}{
		{"aes256gcm16", []wire.Transform{encrT(wire.EncrAES_GCM_16, 256), esnT(wire.ESNNone)}},
		{"aes128-sha256-modp3072-esn", []wire.Transform{encrT(wire.EncrAES_CBC, 128), integT(wire.IntegHMAC_SHA2_256_128), keT(wire.KEMODP3072), esnT(wire.ESNOn)}},
		{"chacha20poly1305-esn-noesn", []wire.Transform{encrT(wire.EncrCHACHA20_POLY1305, 0), esnT(wire.ESNOn), esnT(wire.ESNNone)}},
	} {
		got, err := ParseESPProposal(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %v\nwant %v", tc.in, got, tc.want)
		}
	}
	if _, err := ParseProposal("null-sha256-x25519"); err == nil {
		t.Error("ENCR_NULL accepted for IKE")
	}
	// Transforms the ESP data plane cannot run are refused at load time, so
	// they are never negotiated and then fail to install (found in interop:
	// aes128ctr and aes256gcm12 Child SAs came up and carried nothing).
	for _, in := range []string{"null-sha256", "aes128ctr-sha384", "aes256gcm12", "aes128ccm16", "aes256-aesxcbc"} {
		if _, err := ParseESPProposal(in); err == nil || !strings.Contains(err.Error(), "not implemented") {
			t.Errorf("ESP %s: err %v, want refusal", in, err)
		}
	}
	// Every default ESP transform is one the data plane runs.
	for _, p := range suite.DefaultESPProposals() {
		for _, tr := range p {
			if err := allowed(tr.String(), tr, forESP); err != nil {
				t.Errorf("default ESP transform %v: %v", tr, err)
			}
		}
	}
}

// Every keyword maps to a transform suite agrees about: either it is
// implemented, or the refusal names the RFC (forbidden) or says so.
func TestEveryKeyword(t *testing.T) {
	if len(keywords) < 80 {
		t.Fatalf("only %d keywords", len(keywords))
	}
	for name, tr := range keywords {
		for _, kind := range []proposalKind{forIKE, forESP} {
			err := allowed(name, tr, kind)
			check := suite.CheckIKE
			if kind == forESP {
				check = suite.CheckESP
			}
			forbidden := errors.Is(check(tr), suite.ErrForbidden)
			switch {
			case forbidden && (err == nil || !strings.Contains(err.Error(), "MUST NOT be used")):
				t.Errorf("%s: forbidden by suite, got %v", name, err)
			case !forbidden && err != nil && !strings.Contains(err.Error(), "is not implemented by petrel"):
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// The suite's default proposals render to keywords and parse back to the
// same transforms: the keyword table covers everything petrel proposes.
func TestProposalStringRoundTrip(t *testing.T) {
	for _, p := range suite.DefaultIKEProposals() {
		s := ProposalString(p)
		back, err := ParseProposal(s)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Errorf("%v -> %s -> %v, %v", p, s, back, err)
		}
	}
	for _, p := range suite.DefaultESPProposals() {
		s := ProposalString(p)
		back, err := ParseESPProposal(s)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Errorf("%v -> %s -> %v, %v", p, s, back, err)
		}
	}
	if s := ProposalString([]wire.Transform{encrT(wire.EncrAES_CBC, 128), integT(wire.IntegHMAC_SHA1_96)}); s != "aes128-sha1" {
		t.Errorf("aliases chosen: %s", s)
	}
}

// "default" alone means nil (the core's defaults); mixed with explicit
// proposals it expands in place.
func TestDefaultProposals(t *testing.T) {
	d := &decoder{file: "x"}
	got, err := d.parseProposals([]item{{val: "default"}}, forIKE)
	if err != nil || got != nil {
		t.Errorf("default alone: %v %v", got, err)
	}
	got, err = d.parseProposals([]item{{val: "aes256gcm16-prfsha256-x25519"}, {val: "default"}}, forIKE)
	if err != nil || len(got) != 1+len(suite.DefaultIKEProposals()) || !reflect.DeepEqual(got[1:], suite.DefaultIKEProposals()) {
		t.Errorf("explicit + default: %v %v", got, err)
	}
}
