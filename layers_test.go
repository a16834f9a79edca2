package petrel_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// The layering rules of docs/architecture.md: what each layer, and every
// petrel package it builds on, may import directly. Standard-library packages
// pulled in indirectly (fmt imports os, crypto/rand imports syscall) are not
// the layer's choice and are not checked; petrel's own packages are.
var layerRules = []struct {
	pkg       string
	forbidden []string // import path prefixes; "net" matches "net" and "net/..." except net/netip
	why       string
}{
	{"wire", []string{"crypto", "golang.org/x/crypto", "net", "syscall", "golang.org/x/sys", "golang.zx2c4.com", "github.com/vishvananda"},
		"the wire codec knows no crypto and no sockets"},
	{"suite", []string{"net", "syscall", "golang.org/x/sys", "golang.zx2c4.com", "github.com/vishvananda"},
		"the crypto suites know no sockets"},
	{"ike", []string{"net", "syscall", "golang.org/x/sys", "golang.zx2c4.com", "github.com/vishvananda", "os/exec"},
		"the protocol core knows no sockets, TUN or netlink"},
	{"esp", []string{"net", "syscall", "golang.org/x/sys", "golang.zx2c4.com", "github.com/vishvananda"},
		"ESP packet processing does no I/O"},
	{"cert", []string{"net", "syscall", "golang.org/x/sys", "golang.zx2c4.com", "github.com/vishvananda"},
		"certificate validation fetches only through an injected Fetcher"},
	// config uses net only for SplitHostPort; it must reach no device or kernel API.
	{"config", []string{"net/http", "syscall", "golang.org/x/sys", "golang.zx2c4.com", "github.com/vishvananda"},
		"configuration parsing touches no device, kernel or HTTP API"},
}

const module = "github.com/petrel-vpn/petrel"

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
	Standard   bool
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps,Standard"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func forbiddenMatch(imp string, prefixes []string) bool {
	if imp == "net/netip" {
		return false // addresses are values, not sockets
	}
	for _, p := range prefixes {
		if imp == p || strings.HasPrefix(imp, p+"/") {
			return true
		}
	}
	return false
}

func TestLayerImports(t *testing.T) {
	for _, rule := range layerRules {
		t.Run(rule.pkg, func(t *testing.T) {
			root := module + "/" + rule.pkg
			top := goList(t, root)
			if len(top) != 1 {
				t.Fatalf("go list %s: %d packages", root, len(top))
			}
			// The layer and every petrel package it depends on.
			check := []string{root}
			for _, d := range top[0].Deps {
				if strings.HasPrefix(d, module+"/") {
					check = append(check, d)
				}
			}
			for _, p := range goList(t, check...) {
				for _, imp := range p.Imports {
					if forbiddenMatch(imp, rule.forbidden) {
						t.Errorf("%s imports %s, but %s", p.ImportPath, imp, rule.why)
					}
				}
			}
		})
	}
}

// TestForbiddenMatch pins the prefix logic the rules rely on.
func TestForbiddenMatch(t *testing.T) {
	cases := map[string]bool{"net": true, "net/http": true, "net/netip": false, "network": false,
		"crypto/aes": true, "golang.org/x/crypto/chacha20poly1305": true, "encoding/binary": false}
	for imp, want := range cases {
		if got := forbiddenMatch(imp, []string{"net", "crypto", "golang.org/x/crypto"}); got != want {
			t.Errorf("forbiddenMatch(%q) = %v, want %v", imp, got, want)
		}
	}
}
