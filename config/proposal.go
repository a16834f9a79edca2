package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// Proposals are written in strongSwan's syntax: keywords joined by "-",
// e.g. aes256gcm16-prfsha256-x25519 or aes128-sha256-modp3072, one list
// entry per proposal (the entries are ORed); "default" stands for the
// suite's default proposals. Within one proposal, several keywords of one
// type are ORed too, as on the wire (RFC 7296 §3.3).

const proposalExpected = `expected strongSwan-style names like aes256gcm16-prfsha256-x25519 or "default"`

// keywords maps each proposal keyword to its transform; aead marks the
// combined-mode ciphers, which take no INTEG (RFC 7296 §3.3).
var (
	keywords = map[string]wire.Transform{}
	aead     = map[string]bool{}
	// prfFromInteg is strongSwan's rule for IKE proposals without a PRF:
	// take the PRF of the same hash as each integrity algorithm.
	prfFromInteg = map[wire.IntegID]wire.PRFID{
		wire.IntegHMAC_MD5_96: wire.PRF_HMAC_MD5, wire.IntegHMAC_SHA1_96: wire.PRF_HMAC_SHA1,
		wire.IntegAES_XCBC_96: wire.PRF_AES128_XCBC, wire.IntegAES_CMAC_96: wire.PRF_AES128_CMAC,
		wire.IntegHMAC_SHA2_256_128: wire.PRF_HMAC_SHA2_256, wire.IntegHMAC_SHA2_384_192: wire.PRF_HMAC_SHA2_384,
		wire.IntegHMAC_SHA2_512_256: wire.PRF_HMAC_SHA2_512,
	}
)

func init() {
	encr := func(name string, id wire.EncrID, bits uint16, isAEAD bool) {
		keywords[name] = wire.Transform{Type: wire.TransformENCR, ID: uint16(id), KeyLength: bits}
		aead[name] = isAEAD
	}
	for _, bits := range []uint16{128, 192, 256} {
		b := strconv.Itoa(int(bits))
		encr("aes"+b, wire.EncrAES_CBC, bits, false)
		encr("aes"+b+"ctr", wire.EncrAES_CTR, bits, false)
		encr("camellia"+b, wire.EncrCAMELLIA_CBC, bits, false)
		// strongSwan accepts the ICV in octets (gcm16) and bits (gcm128).
		for icv, id := range map[int]wire.EncrID{8: wire.EncrAES_GCM_8, 12: wire.EncrAES_GCM_12, 16: wire.EncrAES_GCM_16} {
			encr("aes"+b+"gcm"+strconv.Itoa(icv), id, bits, true)
			encr("aes"+b+"gcm"+strconv.Itoa(icv*8), id, bits, true)
		}
		for icv, id := range map[int]wire.EncrID{8: wire.EncrAES_CCM_8, 12: wire.EncrAES_CCM_12, 16: wire.EncrAES_CCM_16} {
			encr("aes"+b+"ccm"+strconv.Itoa(icv), id, bits, true)
			encr("aes"+b+"ccm"+strconv.Itoa(icv*8), id, bits, true)
		}
		encr("aes"+b+"gmac", wire.EncrNULL_AUTH_AES_GMAC, bits, true)
	}
	encr("aes", wire.EncrAES_CBC, 128, false)
	encr("chacha20poly1305", wire.EncrCHACHA20_POLY1305, 0, true)
	encr("3des", wire.Encr3DES, 0, false)
	encr("des", wire.EncrDES, 0, false)
	encr("null", wire.EncrNULL, 0, false)
	encr("cast128", wire.EncrCAST, 128, false)
	encr("blowfish", wire.EncrBLOWFISH, 128, false)
	encr("idea", wire.EncrIDEA, 128, false)

	for name, id := range map[string]wire.IntegID{
		"md5": wire.IntegHMAC_MD5_96, "md5_128": wire.IntegHMAC_MD5_128, "sha1": wire.IntegHMAC_SHA1_96,
		"sha": wire.IntegHMAC_SHA1_96, "sha1_160": wire.IntegHMAC_SHA1_160, "aesxcbc": wire.IntegAES_XCBC_96,
		"aescmac": wire.IntegAES_CMAC_96, "sha256": wire.IntegHMAC_SHA2_256_128, "sha2_256": wire.IntegHMAC_SHA2_256_128,
		"sha384": wire.IntegHMAC_SHA2_384_192, "sha2_384": wire.IntegHMAC_SHA2_384_192,
		"sha512": wire.IntegHMAC_SHA2_512_256, "sha2_512": wire.IntegHMAC_SHA2_512_256,
	} {
		keywords[name] = wire.Transform{Type: wire.TransformINTEG, ID: uint16(id)}
	}
	for name, id := range map[string]wire.PRFID{
		"prfmd5": wire.PRF_HMAC_MD5, "prfsha1": wire.PRF_HMAC_SHA1, "prfaesxcbc": wire.PRF_AES128_XCBC,
		"prfaescmac": wire.PRF_AES128_CMAC, "prfsha256": wire.PRF_HMAC_SHA2_256,
		"prfsha384": wire.PRF_HMAC_SHA2_384, "prfsha512": wire.PRF_HMAC_SHA2_512,
	} {
		keywords[name] = wire.Transform{Type: wire.TransformPRF, ID: uint16(id)}
	}
	for name, id := range keKeywords {
		keywords[name] = wire.Transform{Type: wire.TransformKE, ID: uint16(id)}
	}
	keywords["esn"] = wire.Transform{Type: wire.TransformESN, ID: uint16(wire.ESNOn)}
	keywords["noesn"] = wire.Transform{Type: wire.TransformESN, ID: uint16(wire.ESNNone)}
}

var keKeywords = map[string]wire.KEID{
	"modp768": wire.KEMODP768, "modp1024": wire.KEMODP1024, "modp1536": wire.KEMODP1536,
	"modp2048": wire.KEMODP2048, "modp3072": wire.KEMODP3072, "modp4096": wire.KEMODP4096,
	"modp6144": wire.KEMODP6144, "modp8192": wire.KEMODP8192, "modp1024s160": wire.KEMODP1024_160,
	"modp2048s224": wire.KEMODP2048_224, "modp2048s256": wire.KEMODP2048_256,
	"ecp192": wire.KEECP192, "ecp224": wire.KEECP224, "ecp256": wire.KEECP256, "ecp384": wire.KEECP384,
	"ecp521": wire.KEECP521, "ecp224bp": wire.KEBrainpool224, "ecp256bp": wire.KEBrainpool256,
	"ecp384bp": wire.KEBrainpool384, "ecp512bp": wire.KEBrainpool512,
	"x25519": wire.KECurve25519, "curve25519": wire.KECurve25519, "x448": wire.KECurve448, "curve448": wire.KECurve448,
	"mlkem512": wire.KEMLKEM512, "mlkem768": wire.KEMLKEM768, "mlkem1024": wire.KEMLKEM1024,
}

// proposalKind is which SA a proposal is for: the policies differ.
type proposalKind int

const (
	forIKE proposalKind = iota
	forESP
)

// parseProposals turns a list of proposal strings into transform lists;
// nil (for the defaults) when the list is only "default".
func (d *decoder) parseProposals(items []item, kind proposalKind) ([][]wire.Transform, error) {
	var out [][]wire.Transform
	onlyDefault := true
	for _, it := range items {
		if strings.EqualFold(it.val, "default") {
			if kind == forIKE {
				out = append(out, suite.DefaultIKEProposals()...)
			} else {
				out = append(out, suite.DefaultESPProposals()...)
			}
			continue
		}
		onlyDefault = false
		p, err := parseProposal(it.val, kind)
		if err != nil {
			return nil, d.errf(it.node, it.path, "%v", err)
		}
		out = append(out, p)
	}
	if len(items) == 0 {
		return nil, nil
	}
	if onlyDefault {
		return nil, nil
	}
	return out, nil
}

// ParseProposal parses one IKE proposal such as aes256gcm16-prfsha256-x25519
// into wire transforms ordered by type, applying RFC 8247 and RFC 7296
// §3.3 rules.
func ParseProposal(s string) ([]wire.Transform, error) { return parseProposal(s, forIKE) }

// ParseESPProposal parses one ESP proposal such as aes256gcm16 or
// aes128-sha256-modp3072 (a KE method asks for PFS), under RFC 8221.
func ParseESPProposal(s string) ([]wire.Transform, error) { return parseProposal(s, forESP) }

func parseProposal(s string, kind proposalKind) ([]wire.Transform, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty proposal; " + proposalExpected)
	}
	var ts []wire.Transform
	var aeadName, cbcName string
	seen := map[wire.Transform]bool{}
	for _, raw := range strings.Split(s, "-") {
		name := strings.ToLower(strings.TrimSpace(raw))
		t, err := keyword(name)
		if err != nil {
			return nil, err
		}
		if t.Type == wire.TransformENCR {
			if aead[name] {
				aeadName = name
			} else {
				cbcName = name
			}
		}
		if err := allowed(name, t, kind); err != nil {
			return nil, err
		}
		if !seen[t] {
			seen[t] = true
			ts = append(ts, t)
		}
	}
	has := func(typ wire.TransformType) bool {
		for _, t := range ts {
			if t.Type == typ {
				return true
			}
		}
		return false
	}
	q := fmt.Sprintf("%q", s)
	switch {
	case aeadName == "" && cbcName == "":
		return nil, errors.New(q + " has no encryption algorithm; " + proposalExpected)
	case aeadName != "" && cbcName != "":
		return nil, fmt.Errorf("%s mixes AEAD %s with %s; put them in separate proposals (RFC 7296 §3.3)", q, aeadName, cbcName)
	case aeadName != "" && has(wire.TransformINTEG):
		return nil, fmt.Errorf("%s combines AEAD %s with an integrity algorithm; drop it (RFC 7296 §3.3)", q, aeadName)
	case cbcName != "" && !has(wire.TransformINTEG):
		return nil, fmt.Errorf("%s: %s needs an integrity algorithm such as sha256", q, cbcName)
	}
	if kind == forESP {
		if has(wire.TransformPRF) {
			return nil, fmt.Errorf("%s: ESP proposals take no PRF; drop the prf keyword", q)
		}
		if !has(wire.TransformESN) {
			ts = append(ts, keywords["noesn"])
		}
	} else {
		if has(wire.TransformESN) {
			return nil, fmt.Errorf("%s: esn/noesn belong in esp_proposals, not IKE proposals", q)
		}
		if !has(wire.TransformPRF) {
			if aeadName != "" {
				return nil, fmt.Errorf("%s: an AEAD proposal needs a PRF such as prfsha256", q)
			}
			for _, t := range ts {
				if t.Type == wire.TransformINTEG {
					p := wire.Transform{Type: wire.TransformPRF, ID: uint16(prfFromInteg[wire.IntegID(t.ID)])}
					if !seen[p] {
						seen[p] = true
						ts = append(ts, p)
					}
				}
			}
		}
		if !has(wire.TransformKE) {
			return nil, fmt.Errorf("%s needs a key exchange method such as x25519 or ecp256", q)
		}
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Type < ts[j].Type })
	return ts, nil
}

// keyword looks a proposal keyword up; "keN_" prefixes a KE method for
// RFC 9370's additional key exchange N (1..7), as in ke1_mlkem768.
func keyword(name string) (wire.Transform, error) {
	if t, ok := keywords[name]; ok {
		return t, nil
	}
	if len(name) > 4 && strings.HasPrefix(name, "ke") && name[3] == '_' && name[2] >= '1' && name[2] <= '7' {
		if id, ok := keKeywords[name[4:]]; ok {
			return wire.Transform{Type: wire.TransformADDKE1 + wire.TransformType(name[2]-'1'), ID: uint16(id)}, nil
		}
	}
	names := make([]string, 0, len(keywords))
	for k := range keywords {
		names = append(names, k)
	}
	hint := ""
	if near := nearest(name, names); near != "" {
		hint = fmt.Sprintf(" (did you mean %q?)", near)
	}
	return wire.Transform{}, fmt.Errorf("unknown algorithm %q%s; %s", name, hint, proposalExpected)
}

// allowed applies RFC 8247 (IKE) or RFC 8221 (ESP) and what suite
// implements.
func allowed(name string, t wire.Transform, kind proposalKind) error {
	check, sa := suite.CheckIKE, "IKE"
	if kind == forESP {
		check, sa = suite.CheckESP, "ESP"
	}
	var fe *suite.ForbiddenError
	if err := check(t); errors.As(err, &fe) {
		return fmt.Errorf("%s (%s) MUST NOT be used for %s (%s); %s", name, t, sa, fe.Section, proposalExpected)
	}
	var err error
	switch {
	case t.Type == wire.TransformENCR && kind == forESP:
		if !esp.SupportsEncr(wire.EncrID(t.ID), int(t.KeyLength)) {
			return fmt.Errorf("%s (%s) is not implemented by petrel's ESP data plane (AES-GCM-16, AES-CBC, ChaCha20-Poly1305); %s", name, t, proposalExpected)
		}
	case t.Type == wire.TransformINTEG && kind == forESP:
		if !esp.SupportsInteg(wire.IntegID(t.ID)) {
			return fmt.Errorf("%s (%s) is not implemented by petrel's ESP data plane (HMAC-SHA1-96, HMAC-SHA2); %s", name, t, proposalExpected)
		}
	case t.Type == wire.TransformINTEG:
		_, err = suite.LookupInteg(wire.IntegID(t.ID))
	case t.Type.IsKE():
		_, err = suite.LookupKE(wire.KEID(t.ID))
	default:
		err = suite.Supported(t)
	}
	if err != nil {
		return fmt.Errorf("%s (%s) is not implemented by petrel; %s", name, t, proposalExpected)
	}
	return nil
}

// ProposalString renders transforms back in strongSwan's syntax, for
// messages and `petrel config check`.
func ProposalString(ts []wire.Transform) string {
	var parts []string
	for _, t := range ts {
		if t.Type == wire.TransformESN && t.ID == uint16(wire.ESNNone) {
			continue
		}
		parts = append(parts, keywordOf(t))
	}
	return strings.Join(parts, "-")
}

func keywordOf(t wire.Transform) string {
	var best string
	for k, v := range keywords {
		if k == "aes" || k == "sha" {
			continue // aliases of aes128 and sha1
		}
		if v == t && (best == "" || len(k) < len(best) || len(k) == len(best) && k < best) {
			best = k
		}
	}
	if best == "" {
		typ := t.Type
		t.Type = wire.TransformKE
		if typ != wire.TransformKE && typ.IsKE() {
			return "ke" + strconv.Itoa(int(typ-wire.TransformADDKE1)+1) + "_" + keywordOf(t)
		}
		return t.String()
	}
	return best
}
