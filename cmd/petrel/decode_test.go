package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// `petrel decode` end to end through cobra: text and JSON output for
// Wireshark's AES-CCM capture, decrypted with its key table.
func TestDecodeCommand(t *testing.T) {
	const capture = "../../decode/testdata/ikev2-decrypt-aes256ccm16.pcapng"
	const keys = "../../decode/testdata/ikev2_decryption_table"
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		err := root.Execute()
		return out.String(), err
	}
	text, err := run("decode", "--keys", keys, capture)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"IKE_SA_INIT request", "IKE_AUTH response",
		"AUTH(PSK, 32 octets) fa2e74bdc01e30fb0b3ddc9723c9449095969da51f69e560209d2c2b7940210a", "IDi(ID_IPV4_ADDR 192.168.1.14)"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	js, err := run("decode", "-o", "json", "-k", keys, capture)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d JSON records, want 4", len(lines))
	}
	var rec struct {
		Exchange  string `json:"exchange"`
		Decrypted bool   `json:"decrypted"`
		Inner     []struct {
			Type   string            `json:"type"`
			Fields map[string]string `json:"fields"`
		} `json:"inner"`
	}
	if err := json.Unmarshal([]byte(lines[3]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Exchange != "IKE_AUTH" || !rec.Decrypted || len(rec.Inner) != 6 || rec.Inner[1].Fields["method"] != "PSK" {
		t.Errorf("JSON record 4: %+v", rec)
	}
	if _, err := run("decode", "-o", "yaml", capture); err == nil {
		t.Error("-o yaml accepted")
	}
	if _, err := run("decode", "--keys", "/nonexistent", capture); err == nil {
		t.Error("missing key table accepted")
	}
}
