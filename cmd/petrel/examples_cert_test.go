package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The README's certificate walkthrough, command for command: a CA and two
// gateway certificates from `petrel pki`, then `petrel config check` on the
// example configurations that use them.
func TestCertificateWalkthrough(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("petrel %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	pki := filepath.Join(dir, "pki")
	run("pki", "ca", "--cn", "petrel example CA", "--out", filepath.Join(pki, "ca"))
	for _, s := range []string{"a", "b"} {
		cn := "site-" + s + ".example.com"
		run("pki", "issue", "--ca", filepath.Join(pki, "ca"), "--cn", cn, "--san", cn, "--out", filepath.Join(pki, "site-"+s))
		src, err := os.ReadFile("../../examples/site-" + s + "-cert.yaml")
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(dir, "site-"+s+"-cert.yaml")
		if err := os.WriteFile(conf, src, 0o600); err != nil {
			t.Fatal(err)
		}
		out := run("config", "check", "-v", conf)
		if !strings.Contains(out, ": ok, 1 connection") || !strings.Contains(out, "local pubkey fqdn:"+cn) {
			t.Errorf("config check site %s:\n%s", s, out)
		}
	}
}
