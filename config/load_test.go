package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// writeConfig writes files (name → text) to a temporary folder and returns
// the path of the first name given.
func writeConfig(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i+1 < len(files); i += 2 {
		p := filepath.Join(dir, files[i])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[i+1]), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, files[0])
}

func connByName(t *testing.T, cfg *Config, name string) *Connection {
	t.Helper()
	for _, c := range cfg.Connections {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no connection %q", name)
	return nil
}

func TestExamplePetrelYAML(t *testing.T) {
	t.Setenv("PETREL_PSK_SITE_B", "0sc2l0ZS1iLXNlY3JldA==") // base64 of "site-b-secret"
	cfg, err := Load("../examples/petrel.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Connections) != 2 || cfg.Connections[0].Name != "site-b" || cfg.Connections[1].Name != "roadwarrior" {
		t.Fatalf("connections %v", cfg.Connections)
	}
	if len(cfg.Files) != 2 || !strings.HasSuffix(cfg.Files[1], "00-readme.yaml") {
		t.Errorf("files read: %v", cfg.Files)
	}
	d := cfg.Daemon
	if d.IKEPort != 500 || d.NATTPort != 4500 || d.ControlSocket != "/run/petrel/petrel.sock" || d.Dataplane != "auto" ||
		d.MetricsListen != "" || d.KeylogDir != "" || d.Log.Format != "text" || d.Log.Levels["ike"] != "info" ||
		len(d.Listen) != 2 || !d.Listen[0].Is4() || !d.Listen[1].Is6() {
		t.Errorf("daemon %+v", d)
	}
	site := cfg.Connections[0]
	if site.LocalAddr != netip.MustParseAddr("192.0.2.1") || site.RemoteAddr != netip.MustParseAddr("192.0.2.2") {
		t.Errorf("site-b addresses %v %v", site.LocalAddr, site.RemoteAddr)
	}
	if string(site.PSK.Value) != "site-b-secret" || site.PSK.Source != "env PETREL_PSK_SITE_B" {
		t.Errorf("site-b secret from %s", site.PSK.Source)
	}
	if site.DPDDelay != 30*time.Second || site.RekeyTime != 4*time.Hour {
		t.Errorf("site-b times %v %v", site.DPDDelay, site.RekeyTime)
	}
	ch := site.Children[0]
	if ch.StartAction != "trap" || ch.DPDAction != "restart" || ch.LifeTime != 66*time.Minute {
		t.Errorf("site-b child %+v", ch)
	}
	if got := ch.LocalTS[0].String() + " " + ch.RemoteTS[0].String(); got != "10.1.0.0/24 10.2.0.0/24" {
		t.Errorf("site-b selectors %s", got)
	}
	// 1 explicit proposal + the 2 defaults.
	if len(ch.Proposals) != 1+len(suite.DefaultESPProposals()) {
		t.Errorf("%d ESP proposals", len(ch.Proposals))
	}
	rw := cfg.Connections[1]
	if rw.RemoteAddr.IsValid() || !rw.Remote.ID.Wildcard() || rw.PSK.Name != "roadwarriors" {
		t.Errorf("roadwarrior %+v", rw)
	}
	want, err := os.ReadFile("../examples/roadwarrior.psk")
	if err != nil {
		t.Fatal(err)
	}
	if string(rw.PSK.Value)+"\n" != string(want) {
		t.Errorf("roadwarrior PSK not read from the file (trailing newline dropped)")
	}
	if _, err := cfg.IKEConnections(); err != nil {
		t.Errorf("IKEConnections: %v", err)
	}
}

// The walkthrough pair agrees with itself: the same PSK source, mirrored
// addresses, identities and selectors.
func TestExampleSites(t *testing.T) {
	t.Setenv("PETREL_PSK", "walkthrough")
	a, err := Load("../examples/site-a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load("../examples/site-b.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := a.Connections[0], b.Connections[0]
	if ca.LocalAddr != cb.RemoteAddr || ca.RemoteAddr != cb.LocalAddr {
		t.Errorf("addresses not mirrored: %v-%v vs %v-%v", ca.LocalAddr, ca.RemoteAddr, cb.LocalAddr, cb.RemoteAddr)
	}
	if !ca.Local.ID.Equal(cb.Remote.ID) || !ca.Remote.ID.Equal(cb.Local.ID) {
		t.Errorf("identities not mirrored")
	}
	if ca.Children[0].LocalTS[0] != cb.Children[0].RemoteTS[0] || ca.Children[0].RemoteTS[0] != cb.Children[0].LocalTS[0] {
		t.Errorf("selectors not mirrored")
	}
	if string(ca.PSK.Value) != "walkthrough" || string(cb.PSK.Value) != "walkthrough" {
		t.Errorf("PSKs not from $PETREL_PSK")
	}
	if a.Daemon.ControlSocket == b.Daemon.ControlSocket {
		t.Errorf("both sites use control socket %s", a.Daemon.ControlSocket)
	}
}

func TestIncludes(t *testing.T) {
	t.Setenv("PETREL_TEST_PSK_B", "psk-b")
	cfg, err := Load("testdata/include/main.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cfg.Connections {
		names = append(names, c.Name)
	}
	// main first, then conf.d by name (.yaml and .yml, not .txt), then the
	// glob, then what that file includes.
	if got := strings.Join(names, " "); got != "main b c d e" {
		t.Errorf("connections %q", got)
	}
	wantFiles := []string{"main.yaml", "conf.d/10-b.yaml", "conf.d/20-c.yml", "conf.d/30-empty.yaml", "extra/d.yaml", "extra/../nested/e.yaml"}
	if len(cfg.Files) != len(wantFiles) {
		t.Fatalf("files %v", cfg.Files)
	}
	for i, f := range wantFiles {
		if cfg.Files[i] != filepath.Join("testdata/include", f) {
			t.Errorf("file %d = %s, want %s", i, cfg.Files[i], f)
		}
	}
	// Secrets: by identity, best match, from a file, env, hex; a catch-all.
	for _, tc := range []struct{ conn, secret, value string }{
		{"main", "by-address", "psk-from-a-file"}, // remote address as identity, file relative to main.yaml
		{"b", "b-env", "psk-b"},
		{"c", "c-hex", "\x00\xff\x10"}, // lists both identities: beats a-base64
		{"d", "any", "catch-all"},
		{"e", "any", "catch-all"},
	} {
		c := connByName(t, cfg, tc.conn)
		if c.PSK == nil || c.PSK.Name != tc.secret || string(c.PSK.Value) != tc.value {
			t.Errorf("%s: secret %+v, want %s", tc.conn, c.PSK, tc.secret)
		}
	}
	d := connByName(t, cfg, "d")
	if !d.Children[0].Transport || !d.Children[0].LocalTS[0].Dynamic || d.Children[0].RemoteTS[0].Proto != 17 ||
		d.Children[0].RemoteTS[0].StartPort != 500 {
		t.Errorf("d child %+v", d.Children[0])
	}
}

// A file that includes itself is refused rather than read forever.
func TestIncludeLoop(t *testing.T) {
	p := writeConfig(t, "a.yaml", "include: b.yaml\n", "b.yaml", "include: a.yaml\n")
	_, err := Load(p)
	dir := filepath.Dir(p)
	want := filepath.Join(dir, "b.yaml") + `:1: include: "` + filepath.Join(dir, "a.yaml") + `" was already read (an include loop?); expected each file to be included once`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

const minimal = `connections:
  x:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    children:
      c:
        remote_ts: 10.2.0.0/24
secrets:
  s:
    %s
`

func TestSecretEncodings(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"secret: plain text", "plain text"},
		{"secret: 0x7365637265 ", "secre"},
		{"secret: 0sc2VjcmV0", "secret"},
		{`secret: "0x"`, ""}, // empty after decoding: refused
		{"env: PETREL_TEST_ENV_SECRET", "from-env"},
		{"file: key.txt", "from-file"},
	} {
		t.Setenv("PETREL_TEST_ENV_SECRET", "from-env")
		p := writeConfig(t, "p.yaml", fmt.Sprintf(minimal, tc.line), "key.txt", "from-file\r\n")
		cfg, err := Load(p)
		if tc.want == "" {
			if err == nil || !strings.HasSuffix(err.Error(), "secrets.s.secret: empty secret; expected a PSK (at least 16 random octets are advisable)") {
				t.Errorf("%s: got %v", tc.line, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.line, err)
			continue
		}
		if got := string(cfg.Connections[0].PSK.Value); got != tc.want {
			t.Errorf("%s: value %q, want %q", tc.line, got, tc.want)
		}
	}
}

// Defaults come from defaults.go when a key is left out.
func TestDefaults(t *testing.T) {
	p := writeConfig(t, "p.yaml", fmt.Sprintf(minimal, "secret: s"))
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Daemon
	if d.IKEPort != DefaultIKEPort || d.NATTPort != DefaultNATTPort || d.ControlSocket != DefaultControlSocket ||
		d.CookieThreshold != DefaultCookieThreshold || d.HalfOpenLimit != DefaultHalfOpenLimit ||
		d.HalfOpenPerPeer != DefaultHalfOpenPerPeer || d.Dataplane != DefaultDataplane ||
		d.Log.Format != DefaultLogFormat || d.Log.Level != DefaultLogLevel || len(d.Listen) != len(DefaultListen) ||
		d.Retransmit != (Retransmit{DefaultRetransmitTimeout, DefaultRetransmitBase, DefaultRetransmitTries}) {
		t.Errorf("daemon defaults %+v", d)
	}
	c := cfg.Connections[0]
	if c.LocalPort != DefaultPort || c.RemotePort != DefaultPort || c.RekeyTime != DefaultRekeyTime ||
		c.ReauthTime != DefaultReauthTime || c.DPDDelay != DefaultDPDDelay || c.Encap || c.NoFragmentation ||
		c.FragmentSize != DefaultFragmentSize ||
		c.PreferPeer || c.Proposals != nil || c.Local.Method != DefaultAuth || c.Remote.Method != DefaultAuth {
		t.Errorf("connection defaults %+v", c)
	}
	// The local identity defaults to the local address; remote to %any.
	if c.Local.ID.Type != wire.ID_IPV4_ADDR || string(c.Local.ID.Data) != "\xc0\x00\x02\x01" || !c.Remote.ID.IsAny() {
		t.Errorf("identities %v %v", c.Local.ID, c.Remote.ID)
	}
	ch := c.Children[0]
	if ch.Transport || ch.StartAction != DefaultStartAction || ch.DPDAction != DefaultDPDAction ||
		ch.RekeyTime != DefaultChildRekey || ch.LifeTime != DefaultChildLife || ch.Proposals != nil || ch.Interface != "" {
		t.Errorf("child defaults %+v", ch)
	}
	if len(ch.LocalTS) != 1 || !ch.LocalTS[0].Dynamic {
		t.Errorf("local_ts default %v", ch.LocalTS)
	}
}

// Daemon settings other than the defaults are all read.
func TestDaemonSettings(t *testing.T) {
	text := `daemon:
  listen: 192.0.2.1
  ike_port: 1500
  natt_port: 14500
  control_socket: /tmp/p.sock
  metrics_listen: "[::1]:9101"
  log: {format: json, level: debug, levels: {dataplane: warn, ike: error}}
  cookie_threshold: 0
  half_open_limit: 50
  half_open_per_peer: 2
  dataplane: netstack
  keylog_dir: keys
  retransmit: {timeout: 2s, base: 2, tries: 3}
` + fmt.Sprintf(minimal, "secret: s")
	p := writeConfig(t, "p.yaml", text)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Daemon
	if len(d.Listen) != 1 || d.Listen[0] != netip.MustParseAddr("192.0.2.1") || d.IKEPort != 1500 || d.NATTPort != 14500 ||
		d.ControlSocket != "/tmp/p.sock" || d.MetricsListen != "[::1]:9101" || d.Log.Format != "json" ||
		d.Log.Level != "debug" || d.Log.Levels["dataplane"] != "warn" || d.Log.Levels["ike"] != "error" ||
		d.CookieThreshold != 0 || d.HalfOpenLimit != 50 || d.HalfOpenPerPeer != 2 || d.Dataplane != "netstack" ||
		d.KeylogDir != filepath.Join(filepath.Dir(p), "keys") || d.Retransmit != (Retransmit{2 * time.Second, 2, 3}) {
		t.Errorf("daemon %+v", d)
	}
	if c := cfg.Connections[0]; c.LocalPort != 1500 || c.RemotePort != 500 {
		t.Errorf("ports: local %d (want daemon.ike_port), remote %d", c.LocalPort, c.RemotePort)
	}
}

// A PSK never shows in formatted output or JSON.
func TestSecretRedacted(t *testing.T) {
	s := &Secret{Name: "n", Source: "inline", Value: Redacted("hunter2-very-secret")}
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{string(js)}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, *s), fmt.Sprintf(verb, s.Value))
	}
	for _, o := range outs {
		if strings.Contains(o, "hunter2") || strings.Contains(o, "68756e74657232") || strings.Contains(o, "68 75") {
			t.Errorf("secret leaked: %s", o)
		}
	}
	if !strings.Contains(fmt.Sprintf("%v", s.Value), "redacted") {
		t.Errorf("no redaction marker")
	}
}

// YAML anchors under x- keys work as connection templates.
func TestTemplates(t *testing.T) {
	cfg, err := Load("testdata/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, c := connByName(t, cfg, "b"), connByName(t, cfg, "c")
	for _, conn := range []*Connection{b, c} {
		if conn.LocalAddr != netip.MustParseAddr("192.0.2.1") || conn.Local.ID.String() != "fqdn:a.example.com" ||
			conn.DPDDelay != 30*time.Second || conn.Children[0].LocalTS[0].String() != "10.1.0.0/24" {
			t.Errorf("%s did not get the template: %+v", conn.Name, conn)
		}
	}
	if len(b.Proposals) != 1 || c.Proposals != nil {
		t.Errorf("proposals b=%v c=%v", b.Proposals, c.Proposals)
	}
	if b.Children[0].StartAction != "trap" || c.Children[0].StartAction != "none" {
		t.Errorf("start actions %s %s", b.Children[0].StartAction, c.Children[0].StartAction)
	}
	// A typo inside a template is reported where the template says it.
	p := writeConfig(t, "p.yaml", "x-t: &t\n  dpd_dealy: 30s\nconnections:\n  b:\n    <<: *t\n")
	_, err = Load(p)
	if want := p + `:2: connections.b.dpd_dealy: unknown key; did you mean "dpd_delay"?`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// swanctl.conf values paste over: comma-separated lists are lists.
func TestCommaLists(t *testing.T) {
	text := `connections:
  x:
    local_addrs: 192.0.2.1
    remote_addrs: 192.0.2.2
    proposals: aes128-sha256-x25519,aes256gcm16-prfsha256-ecp256
    children:
      c:
        local_ts: 10.1.0.0/24,10.1.1.0/24
        remote_ts: [10.2.0.0/24, "10.3.0.0/24, 10.4.0.0/24"]
        esp_proposals: aes128gcm16, aes256-sha256
secrets:
  s:
    secret: s
`
	cfg, err := Load(writeConfig(t, "p.yaml", text))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connections[0]
	ch := c.Children[0]
	if len(c.Proposals) != 2 || len(ch.Proposals) != 2 || len(ch.LocalTS) != 2 || len(ch.RemoteTS) != 3 ||
		ch.RemoteTS[2].String() != "10.4.0.0/24" {
		t.Errorf("proposals %d/%d, selectors %v %v", len(c.Proposals), len(ch.Proposals), ch.LocalTS, ch.RemoteTS)
	}
	p := writeConfig(t, "p.yaml", strings.Replace(text, "192.0.2.1\n", "192.0.2.1,192.0.2.9\n", 1))
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), ":3: connections.x.local_addrs: 2 addresses; expected exactly one IP address or %any (several are not supported yet)") {
		t.Errorf("two local addresses: %v", err)
	}
}
