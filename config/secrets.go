package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// secret decodes one secrets: entry. Exactly one of secret: (inline;
// 0x... is hex and 0s... base64, as in swanctl.conf), file: (relative to
// the config file; one trailing newline is dropped) or env: (a variable
// name) gives the value.
func (d *decoder) secret(se entry) (*Secret, error) {
	s := &Secret{Name: se.key}
	f, err := d.fields(se.val, se.path, "ids", "secret", "file", "env")
	if err != nil {
		return nil, err
	}
	if e, ok := f["ids"]; ok {
		items, err := d.strList(e)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			id, err := ParseIdentity(it.val)
			if err != nil {
				return nil, d.errf(it.node, it.path, "%q: %v; %s", it.val, err, idExpected)
			}
			if id.IsAny() {
				return nil, d.errf(it.node, it.path, "%%any matches everyone; expected a specific identity, or leave ids out for a catch-all secret")
			}
			s.IDs = append(s.IDs, id)
		}
	}
	var given []entry
	for _, k := range []string{"secret", "file", "env"} {
		if e, ok := f[k]; ok {
			given = append(given, e)
		}
	}
	switch len(given) {
	case 0:
		return nil, d.errf(se.kn, se.path, "no value; expected one of secret:, file: or env:")
	case 1:
	default:
		return nil, d.errf(given[1].kn, given[1].path, "a second value source; expected only one of secret:, file: or env:")
	}
	e := given[0]
	v, err := d.str(e)
	if err != nil {
		return nil, err
	}
	switch e.key {
	case "secret":
		s.Source = "inline"
		b, err := decodeSecret(v)
		if err != nil {
			return nil, d.errf(e.val, e.path, "%v", err)
		}
		s.Value = b
	case "file":
		p := v
		if !filepath.IsAbs(p) {
			p = filepath.Join(d.dir, p)
		}
		s.Source = "file " + p
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, d.errf(e.val, e.path, "cannot read %q: %v; expected a readable file (relative to this config file)", v, unwrapPath(err))
		}
		b = []byte(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"))
		if s.Value, err = decodeSecret(string(b)); err != nil {
			return nil, d.errf(e.val, e.path, "%q: %v", v, err)
		}
	case "env":
		if !validEnvName(v) {
			return nil, d.errf(e.val, e.path, "%q is not a variable name; expected letters, digits and _ like PETREL_PSK_SITE_B", v)
		}
		s.Source = "env " + v
		val, ok := os.LookupEnv(v)
		if !ok || val == "" {
			return nil, d.errf(e.val, e.path, "environment variable %s is not set or empty; expected it to hold the PSK", v)
		}
		if s.Value, err = decodeSecret(val); err != nil {
			return nil, d.errf(e.val, e.path, "$%s: %v", v, err)
		}
	}
	return s, nil
}

// decodeSecret applies swanctl.conf's encodings: 0x... hex, 0s... base64,
// anything else the literal octets. Error texts never include the value.
func decodeSecret(v string) (Redacted, error) {
	var b []byte
	var err error
	switch {
	case strings.HasPrefix(v, "0x"):
		if b, err = hex.DecodeString(v[2:]); err != nil {
			return nil, fmt.Errorf("the 0x value is not hex; expected 0x followed by hex digits")
		}
	case strings.HasPrefix(v, "0s"):
		if b, err = base64.StdEncoding.DecodeString(v[2:]); err != nil {
			return nil, fmt.Errorf("the 0s value is not base64; expected 0s followed by base64")
		}
	default:
		b = []byte(v)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("empty secret; expected a PSK (at least 16 random octets are advisable)")
	}
	return b, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}

// pickSecrets gives each connection with a PSK side its secret, ranked by
// scoreSecret (both identities, then the remote one, then the local one,
// then no ids); the first in file order wins a tie. The remote identity is remote.id, or the remote
// address when remote.id is %any.
func (c *Config) pickSecrets() error {
	for _, conn := range c.Connections {
		if conn.Local.Method != "psk" && conn.Remote.Method != "psk" {
			continue
		}
		local := []Identity{conn.Local.ID}
		var remote []Identity
		if !conn.Remote.ID.IsAny() {
			remote = append(remote, conn.Remote.ID)
		} else if conn.RemoteAddr.IsValid() {
			remote = append(remote, addrID(conn.RemoteAddr))
		}
		best, bestScore := (*Secret)(nil), 0
		for _, s := range c.Secrets {
			if score := scoreSecret(s, local, remote); score > bestScore {
				best, bestScore = s, score
			}
		}
		if conn.Remote.ID.IsAny() || conn.Remote.ID.Wildcard() {
			conn.PeerPSKs = peerSecrets(c.Secrets, conn.Remote.ID)
		}
		if best == nil && len(conn.PeerPSKs) == 0 {
			var want []string
			for _, id := range append(local, remote...) {
				want = append(want, id.String())
			}
			return conn.localPos.errorf("connections."+conn.Name+".local.auth",
				"psk needs a secret, but no entry under secrets: lists %s (or has no ids); expected a secret with ids: [%s]",
				strings.Join(want, " or "), want[0])
		}
		conn.PSK = best
	}
	return nil
}

func matchAny(ids, want []Identity) int {
	for _, a := range ids {
		for _, b := range want {
			if a.Equal(b) {
				return 1
			}
		}
	}
	return 0
}

// peerSecrets are the secrets listing a concrete identity the pattern
// admits.
func peerSecrets(secrets []*Secret, pattern Identity) []*Secret {
	var out []*Secret
	for _, s := range secrets {
		for _, id := range s.IDs {
			if !id.Wildcard() && pattern.Matches(id) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// scoreSecret ranks a secret for a pair of identities: listing both beats
// listing the remote one (the more specific: per-user keys), which beats
// listing the local one, which beats having no ids; 0 means it does not
// apply.
func scoreSecret(s *Secret, local, remote []Identity) int {
	if len(s.IDs) == 0 {
		return 1
	}
	return 2*matchAny(s.IDs, local) + 4*matchAny(s.IDs, remote)
}
