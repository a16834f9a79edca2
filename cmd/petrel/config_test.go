package main

import (
	"bytes"
	"strings"
	"testing"
)

func runPetrel(args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// `petrel config check` on the example: one line naming the connections.
func TestConfigCheckExample(t *testing.T) {
	t.Setenv("PETREL_PSK_SITE_B", "example-secret-value")
	const file = "../../examples/petrel.yaml"
	out, err := runPetrel("config", "check", file)
	if err != nil {
		t.Fatal(err)
	}
	if want := file + ": ok, 2 connections (site-b, roadwarrior)\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	out, err = runPetrel("config", "check", "-v", file)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"site-b: 192.0.2.1:500 -> 192.0.2.2:500",
		`psk: secret "site-b" from env PETREL_PSK_SITE_B`,
		"child net: 10.1.0.0/24 === 10.2.0.0/24, tunnel, start trap, esp: aes256gcm16-x25519, ",
		"roadwarrior: 192.0.2.1:500 -> %any:500",
		"ike: default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("-v output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "example-secret-value") {
		t.Error("-v printed the PSK")
	}
}

func TestConfigCheckSites(t *testing.T) {
	t.Setenv("PETREL_PSK", "walkthrough")
	for _, tc := range []struct{ file, name string }{{"site-a.yaml", "site-b"}, {"site-b.yaml", "site-a"}} {
		out, err := runPetrel("config", "check", "../../examples/"+tc.file)
		if want := "../../examples/" + tc.file + ": ok, 1 connection (" + tc.name + ")\n"; err != nil || out != want {
			t.Errorf("%s: %q %v", tc.file, out, err)
		}
	}
}

// A broken file: the one-line positioned error, and a failing exit.
func TestConfigCheckBroken(t *testing.T) {
	const file = "../../config/testdata/broken/bad-mode.yaml"
	out, err := runPetrel("config", "check", file)
	if err == nil {
		t.Fatalf("no error; output %q", out)
	}
	want := file + `:11: connections.site-b.children.net.mode: "tunel" is not allowed; expected tunnel or transport`
	if err.Error() != want || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q, want %q", err, want)
	}
	if strings.Contains(out, "ok,") {
		t.Errorf("printed %q", out)
	}
	if _, err := runPetrel("config", "check"); err == nil {
		t.Error("no FILE accepted")
	}
	if _, err := runPetrel("config", "check", "/nonexistent/petrel.yaml"); err == nil || !strings.HasPrefix(err.Error(), "config: open /nonexistent/petrel.yaml") {
		t.Errorf("missing file: %v", err)
	}
}
