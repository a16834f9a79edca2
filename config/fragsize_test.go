package config

import (
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/ike"
)

// fragConfig is a connection with the given extra connection settings
// (each a "key: value" line) and addresses.
func fragConfig(local, remote string, settings ...string) string {
	var b strings.Builder
	b.WriteString("connections:\n  x:\n    local_addrs: " + local + "\n    remote_addrs: " + remote + "\n")
	for _, s := range settings {
		b.WriteString("    " + s + "\n")
	}
	b.WriteString("    children:\n      c:\n        local_ts: 10.1.0.0/24\n        remote_ts: 10.2.0.0/24\nsecrets:\n  s:\n    secret: s\n")
	return b.String()
}

// fragment_size reaches ike.Connection.FragmentSize; left out (or 0) it is
// 0, which the core reads as the peer's address-family default.
func TestFragmentSizeToIKE(t *testing.T) {
	for _, tc := range []struct {
		name           string
		local, remote  string
		settings       []string
		want           int
		wantNoFragment bool
	}{
		{"300", "192.0.2.1", "192.0.2.2", []string{"fragment_size: 300"}, 300, false},
		{"ipv6-1400", "2001:db8::1", "2001:db8::2", []string{"fragmentation: yes", "fragment_size: 1400"}, 1400, false},
		{"minimum", "192.0.2.1", "192.0.2.2", []string{"fragment_size: 256"}, MinFragmentSize, false},
		{"maximum", "192.0.2.1", "192.0.2.2", []string{"fragment_size: 65535"}, MaxFragmentSize, false},
		{"default", "192.0.2.1", "192.0.2.2", nil, DefaultFragmentSize, false},
		{"default-ipv6", "2001:db8::1", "2001:db8::2", nil, DefaultFragmentSize, false},
		{"zero", "192.0.2.1", "192.0.2.2", []string{"fragment_size: 0"}, 0, false},
		// 0 may stand beside fragmentation: no (to undo a template's size).
		{"zero-without-fragmentation", "192.0.2.1", "192.0.2.2", []string{"fragmentation: no", "fragment_size: 0"}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(writeConfig(t, "p.yaml", fragConfig(tc.local, tc.remote, tc.settings...)))
			if err != nil {
				t.Fatal(err)
			}
			if c := cfg.Connections[0]; c.FragmentSize != tc.want || c.NoFragmentation != tc.wantNoFragment {
				t.Errorf("config: fragment size %d nofrag %v, want %d %v", c.FragmentSize, c.NoFragmentation, tc.want, tc.wantNoFragment)
			}
			ec, err := cfg.EndpointConfig()
			if err != nil {
				t.Fatal(err)
			}
			if ic := ec.Connections[0]; ic.FragmentSize != tc.want || ic.NoFragmentation != tc.wantNoFragment {
				t.Errorf("ike: fragment size %d nofrag %v, want %d %v", ic.FragmentSize, ic.NoFragmentation, tc.want, tc.wantNoFragment)
			}
			if _, err := ike.NewEndpoint(ec, time.Unix(0, 0)); err != nil {
				t.Errorf("ike.NewEndpoint: %v", err)
			}
		})
	}
}

// A template's fragment_size is merged like any other connection setting.
func TestFragmentSizeTemplate(t *testing.T) {
	cfg, err := Load(writeConfig(t, "p.yaml", `x-small: &small
  fragment_size: 576
connections:
  x:
    <<: *small
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    children:
      c:
        remote_ts: 10.2.0.0/24
  y:
    <<: *small
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.3
    fragmentation: no
    fragment_size: 0
    children:
      c:
        remote_ts: 10.3.0.0/24
secrets:
  s:
    secret: s
`))
	if err != nil {
		t.Fatal(err)
	}
	if x, y := connByName(t, cfg, "x"), connByName(t, cfg, "y"); x.FragmentSize != 576 || y.FragmentSize != 0 || !y.NoFragmentation {
		t.Errorf("x %d, y %d nofrag %v", x.FragmentSize, y.FragmentSize, y.NoFragmentation)
	}
}
