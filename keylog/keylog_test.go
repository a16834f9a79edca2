package keylog

import (
	"bufio"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// Every line of Wireshark's own decryption-test table that names algorithms
// petrel knows parses, and formats back to the identical line.
func TestIKETableRoundTrip(t *testing.T) {
	f, err := os.Open("testdata/ikev2_decryption_table")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sas, err := ParseIKETable(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 9 {
		t.Fatalf("parsed %d lines, want 9", len(sas))
	}
	raw, _ := os.ReadFile("testdata/ikev2_decryption_table")
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	for i, sa := range sas {
		if sa.NoIntegCheck {
			if sa.ICVLen != 12 {
				t.Errorf("line %d: ICVLen %d, want 12 for ANY 96-bits", i+1, sa.ICVLen)
			}
			continue // Wireshark's "no checking" entry is read-only for petrel
		}
		got, err := IKELine(sa)
		if err != nil {
			t.Errorf("line %d: %v", i+1, err)
			continue
		}
		if got != lines[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got, lines[i])
		}
	}
	gcm := sas[8]
	if gcm.Encr != wire.EncrAES_GCM_16 || gcm.EncrKeyBits != 256 || len(gcm.SKei) != 36 || gcm.SPIi != 0x0158b8fb90b7623d {
		t.Errorf("GCM line parsed as %+v", gcm)
	}
}

func TestESPLineMatchesTsharkTables(t *testing.T) {
	want := readLines(t, "testdata/draft-mcgrew-gcm-test-01.esp_sa")[0]
	key := mustHex(t, "feffe9928665731c6d6a8f9467308308feffe9928665731ccafebabe")
	got, err := ESPLine(ESPSA{SPI: 0xa5f8, Encr: wire.EncrAES_GCM_16, EncrKeyBits: 192, Integ: wire.IntegNONE, EncrKey: key})
	if err != nil || got != want {
		t.Errorf("GCM:\n got %s (%v)\nwant %s", got, err, want)
	}
	want = readLines(t, "testdata/rfc3602-esp.esp_sa")[0]
	got, err = ESPLine(ESPSA{SPI: 0x4321, Encr: wire.EncrAES_CBC, EncrKeyBits: 128, Integ: wire.IntegNONE,
		EncrKey: mustHex(t, "90d382b410eeba7ad938c46cec1a82bf")})
	if err != nil || got != want {
		t.Errorf("CBC:\n got %s (%v)\nwant %s", got, err, want)
	}
	got, err = ESPLine(ESPSA{IPv6: true, Src: netip.MustParseAddr("2001:db8::1"), SPI: 1, Encr: wire.EncrAES_CBC,
		Integ: wire.IntegHMAC_SHA2_256_128, EncrKey: []byte{1}, IntegKey: []byte{2}})
	if want := `"IPv6","2001:db8::1","*","0x00000001","AES-CBC [RFC3602]","0x01","HMAC-SHA-256-128 [RFC4868]","0x02"`; err != nil || got != want {
		t.Errorf("IPv6 CBC+HMAC:\n got %s (%v)\nwant %s", got, err, want)
	}
}

// tshark rejects a whole table with an unknown name, so ChaCha20 (which
// tshark 4.0 lacks) must be refused rather than written.
func TestUnsupportedNamesRefused(t *testing.T) {
	if _, err := IKELine(IKESA{Encr: wire.EncrCHACHA20_POLY1305, EncrKeyBits: 256}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("IKE ChaCha20: err %v, want ErrUnsupported", err)
	}
	if _, err := ESPLine(ESPSA{Encr: wire.EncrCHACHA20_POLY1305}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("ESP ChaCha20: err %v, want ErrUnsupported", err)
	}
	if _, err := IKELine(IKESA{Encr: wire.EncrAES_GCM_16, EncrKeyBits: 100}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("AES-GCM-100: err %v, want ErrUnsupported", err)
	}
}

func TestParseErrorsNameLine(t *testing.T) {
	for _, bad := range []string{
		"00,11,aa,bb,\"AES-CBC-256 [RFC3602]\",cc,dd",                       // 7 fields
		"zz,11,aa,bb,\"AES-CBC-256 [RFC3602]\",cc,dd,\"NONE [RFC4306]\"",    // bad SPI
		"00,11,aa,bb,\"ROT13 [RFC0000]\",cc,dd,\"NONE [RFC4306]\"",          // unknown encr
		"00,11,aa,bb,\"AES-CBC-256 [RFC3602]\",cc,dd,\"NONE [RFC4306]",      // open quote
		"00,11,aa,bx,\"AES-CBC-256 [RFC3602]\",cc,dd,\"NONE [RFC4306]\"",    // bad hex
		"00,11,aa,bb,\"AES-CBC-256 [RFC3602]\",cc,dd,\"HMAC_WHIRL [RFC0]\"", // unknown integ
	} {
		_, err := ParseIKETable(strings.NewReader("# comment\n\n" + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%s: err %v, want one naming line 3", bad, err)
		}
	}
}

func TestWriterFilesAndMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	w, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sa := IKESA{SPIi: 1, SPIr: 2, Encr: wire.EncrAES_GCM_16, EncrKeyBits: 256, Integ: wire.IntegNONE,
		SKei: make([]byte, 36), SKer: make([]byte, 36)}
	if err := w.LogIKE(sa); err != nil {
		t.Fatal(err)
	}
	if err := w.LogESP(ESPSA{SPI: 7, Encr: wire.EncrAES_GCM_16, Integ: wire.IntegNONE, EncrKey: make([]byte, 36)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{IKEFile, ESPFile} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
		if l := readLines(t, filepath.Join(dir, name)); len(l) != 1 {
			t.Errorf("%s: %d lines, want 1", name, len(l))
		}
	}
	f, _ := os.Open(filepath.Join(dir, IKEFile))
	defer f.Close()
	back, err := ParseIKETable(f)
	if err != nil || len(back) != 1 || back[0].SPIi != 1 || back[0].SPIr != 2 || len(back[0].SKei) != 36 {
		t.Errorf("read back %+v, %v", back, err)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
