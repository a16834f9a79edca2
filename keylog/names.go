package keylog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/petrel-vpn/petrel/wire"
)

// Wireshark's names for IKEv2 encryption algorithms (packet-isakmp.c, as
// accepted by tshark 4.0's ikev2_decryption_table UAT).
func ikeEncrName(id wire.EncrID, bits int) (string, bool) {
	icv := map[wire.EncrID]int{
		wire.EncrAES_GCM_8: 8, wire.EncrAES_GCM_12: 12, wire.EncrAES_GCM_16: 16,
		wire.EncrAES_CCM_8: 8, wire.EncrAES_CCM_12: 12, wire.EncrAES_CCM_16: 16,
	}
	validBits := bits == 128 || bits == 192 || bits == 256
	switch id {
	case wire.EncrNULL:
		return "NULL [RFC2410]", true
	case wire.Encr3DES:
		return "3DES [RFC2451]", true
	case wire.EncrAES_CBC:
		return fmt.Sprintf("AES-CBC-%d [RFC3602]", bits), validBits
	case wire.EncrAES_CTR:
		return fmt.Sprintf("AES-CTR-%d [RFC5930]", bits), validBits
	case wire.EncrAES_GCM_8, wire.EncrAES_GCM_12, wire.EncrAES_GCM_16:
		return fmt.Sprintf("AES-GCM-%d with %d octet ICV [RFC5282]", bits, icv[id]), validBits
	case wire.EncrAES_CCM_8, wire.EncrAES_CCM_12, wire.EncrAES_CCM_16:
		return fmt.Sprintf("AES-CCM-%d with %d octet ICV [RFC5282]", bits, icv[id]), validBits
	}
	return "", false
}

var ikeIntegNames = map[wire.IntegID]string{
	wire.IntegNONE:              "NONE [RFC4306]",
	wire.IntegHMAC_MD5_96:       "HMAC_MD5_96 [RFC2403]",
	wire.IntegHMAC_SHA1_96:      "HMAC_SHA1_96 [RFC2404]",
	wire.IntegHMAC_MD5_128:      "HMAC_MD5_128 [RFC4595]",
	wire.IntegHMAC_SHA1_160:     "HMAC_SHA1_160 [RFC4595]",
	wire.IntegHMAC_SHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
	wire.IntegHMAC_SHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
	wire.IntegHMAC_SHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
}

// Wireshark's names for ESP algorithms (packet-ipsec.c esp_sa UAT).
func espEncrName(id wire.EncrID) (string, bool) {
	switch id {
	case wire.EncrNULL:
		return "NULL", true
	case wire.Encr3DES:
		return "TripleDES-CBC [RFC2451]", true
	case wire.EncrAES_CBC:
		return "AES-CBC [RFC3602]", true
	case wire.EncrAES_CTR:
		return "AES-CTR [RFC3686]", true
	case wire.EncrAES_GCM_8:
		return "AES-GCM with 8 octet ICV [RFC4106]", true
	case wire.EncrAES_GCM_12:
		return "AES-GCM with 12 octet ICV [RFC4106]", true
	case wire.EncrAES_GCM_16:
		return "AES-GCM with 16 octet ICV [RFC4106]", true
	}
	return "", false
}

var espIntegNames = map[wire.IntegID]string{
	wire.IntegNONE:              "NULL",
	wire.IntegHMAC_MD5_96:       "HMAC-MD5-96 [RFC2403]",
	wire.IntegHMAC_SHA1_96:      "HMAC-SHA-1-96 [RFC2404]",
	wire.IntegHMAC_SHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
	wire.IntegHMAC_SHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
	wire.IntegHMAC_SHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
}

// splitCSV splits a UAT line on commas outside double quotes and unquotes
// the fields.
func splitCSV(line string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	return append(fields, cur.String()), nil
}

func parseIKELine(line string) (IKESA, error) {
	var sa IKESA
	f, err := splitCSV(line)
	if err != nil {
		return sa, err
	}
	if len(f) != 8 {
		return sa, fmt.Errorf("want 8 fields, got %d", len(f))
	}
	if sa.SPIi, err = strconv.ParseUint(f[0], 16, 64); err != nil {
		return sa, fmt.Errorf("SPIi: %w", err)
	}
	if sa.SPIr, err = strconv.ParseUint(f[1], 16, 64); err != nil {
		return sa, fmt.Errorf("SPIr: %w", err)
	}
	keys := []*[]byte{&sa.SKei, &sa.SKer, &sa.SKai, &sa.SKar}
	for i, col := range []int{2, 3, 5, 6} {
		if *keys[i], err = hex.DecodeString(f[col]); err != nil {
			return sa, fmt.Errorf("key in field %d: %w", col+1, err)
		}
	}
	if sa.Encr, sa.EncrKeyBits, err = parseIKEEncr(f[4]); err != nil {
		return sa, err
	}
	if sa.Integ, sa.NoIntegCheck, sa.ICVLen, err = parseIKEInteg(f[7]); err != nil {
		return sa, err
	}
	return sa, nil
}

func parseIKEEncr(name string) (wire.EncrID, int, error) {
	for _, id := range []wire.EncrID{wire.EncrNULL, wire.Encr3DES} {
		if n, _ := ikeEncrName(id, 0); n == name {
			bits := 0
			if id == wire.Encr3DES {
				bits = 192
			}
			return id, bits, nil
		}
	}
	ids := []wire.EncrID{wire.EncrAES_CBC, wire.EncrAES_CTR, wire.EncrAES_GCM_8, wire.EncrAES_GCM_12,
		wire.EncrAES_GCM_16, wire.EncrAES_CCM_8, wire.EncrAES_CCM_12, wire.EncrAES_CCM_16}
	for _, id := range ids {
		for _, bits := range []int{128, 192, 256} {
			if n, _ := ikeEncrName(id, bits); n == name {
				return id, bits, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("unknown encryption algorithm %q", name)
}

func parseIKEInteg(name string) (wire.IntegID, bool, int, error) {
	for id, n := range ikeIntegNames {
		if n == name {
			return id, false, 0, nil
		}
	}
	// "ANY 96-bits of Authentication [No Checking]"
	var bits int
	if _, err := fmt.Sscanf(name, "ANY %d-bits of Authentication [No Checking]", &bits); err == nil && bits > 0 && bits%8 == 0 {
		return wire.IntegNONE, true, bits / 8, nil
	}
	return 0, false, 0, fmt.Errorf("unknown integrity algorithm %q", name)
}
