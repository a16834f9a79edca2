package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-vpn/petrel/keylog"
)

// `petrel demo --keylog DIR` through cobra: the tunnel carries HTTP, the
// detail table shows the negotiated suite, and the key tables hold the IKE
// SA and both ESP SAs whose SPIs the table shows.
func TestDemoCommand(t *testing.T) {
	dir := t.TempDir()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"demo", "--keylog", dir})
	if err := root.Execute(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"200 OK", "answering through ESP", "Protocol      : IKEv2 IPsec", "CURVE_25519",
		"PRF_HMAC_SHA2_256", "Loc Auth Mode : preSharedKeys", "Encapsulation : Tunnel, NAT-T (UDP)",
		"Local Addr    : 10.1.0.0/24", "Time from start to first byte through the tunnel:", "peer b saw the delete"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	m := regexp.MustCompile(`SPI In +: ([0-9a-f]{8}) +SPI Out +: ([0-9a-f]{8})`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no Child SA SPIs in:\n%s", text)
	}
	esp, err := os.ReadFile(filepath.Join(dir, keylog.ESPFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, spi := range m[1:] {
		if !strings.Contains(string(esp), `"0x`+spi+`"`) {
			t.Errorf("esp_sa lacks SPI %s:\n%s", spi, esp)
		}
	}
	ikeTable, err := os.Open(filepath.Join(dir, keylog.IKEFile))
	if err != nil {
		t.Fatal(err)
	}
	defer ikeTable.Close()
	sas, err := keylog.ParseIKETable(ikeTable)
	if err != nil || len(sas) != 1 {
		t.Fatalf("IKE table: %d SAs, %v", len(sas), err)
	}
}
