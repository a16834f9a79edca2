package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// brokenConfigs maps each file in testdata/broken to the exact error Load
// must give for it, file and line included (the file is relative to
// testdata/broken). Every file there must be listed and vice versa.
var brokenConfigs = map[string]string{
	// Structure and keys.
	"unknown-top-key.yaml":     `unknown-top-key.yaml:2: conections: unknown key; did you mean "connections"?`,
	"unknown-conn-key.yaml":    `unknown-conn-key.yaml:7: connections.site-b.remote_addr: unknown key; did you mean "remote_addrs"?`,
	"unknown-child-key.yaml":   `unknown-child-key.yaml:11: connections.site-b.children.net.esp_proposal: unknown key; did you mean "esp_proposals"?`,
	"duplicate-child.yaml":     `duplicate-child.yaml:11: connections.site-b.children.net: duplicate key; first given on line 8`,
	"children-as-list.yaml":    `children-as-list.yaml:5: connections.site-b.children: got a list; expected a mapping of children`,
	"no-children.yaml":         `no-children.yaml:2: connections.site-b: no children; expected at least one under children: with local_ts and remote_ts`,
	"yaml-syntax.yaml":         `yaml-syntax.yaml:4: YAML syntax: did not find expected key; expected YAML with consistent space indentation`,
	"not-a-mapping.yaml":       `not-a-mapping.yaml:1: got a list; expected a mapping with connections: (and optionally daemon:, secrets:, include:)`,
	"empty.yaml":               `empty.yaml: the file is empty; expected a mapping with connections: (and optionally daemon:, secrets:, include:)`,
	"two-documents.yaml":       `two-documents.yaml:14: a second YAML document (---); expected one document per file`,
	"include-missing.yaml":     `include-missing.yaml:1: include: "conf.d/site-c.yaml" does not exist; expected a file, a folder or a glob like conf.d/*.yaml (relative to this file)`,
	"include-daemon.yaml":      `inc/daemon.yaml:2: daemon: daemon settings belong in the main file, not in an included one`,
	"include-duplicate.yaml":   `inc/dup-1.yaml:2: connections.site-b: connection defined twice; first at testdata/broken/include-duplicate.yaml:3`,
	"bad-bool.yaml":            `bad-bool.yaml:7: connections.site-b.encap: got "maybe"; expected true or false (yes/no)`,
	"fragmentation-force.yaml": `fragmentation-force.yaml:7: connections.site-b.fragmentation: "force" is not supported yet; expected yes or no`,

	// Proposals.
	"unknown-esp-algorithm.yaml": `unknown-esp-algorithm.yaml:13: connections.site-b.children.net.esp_proposals[1]: unknown algorithm "aes512gcm16" (did you mean "aes128gcm16"?); expected strongSwan-style names like aes256gcm16-prfsha256-x25519 or "default"`,
	"forbidden-des.yaml":         `forbidden-des.yaml:7: connections.site-b.proposals[0]: des (ENCR DES) MUST NOT be used for IKE (RFC 8247 §2.1); expected strongSwan-style names like aes256gcm16-prfsha256-x25519 or "default"`,
	"forbidden-modp768.yaml":     `forbidden-modp768.yaml:7: connections.site-b.proposals[0]: modp768 (KE MODP_768) MUST NOT be used for IKE (RFC 8247 §2.4); expected strongSwan-style names like aes256gcm16-prfsha256-x25519 or "default"`,
	"forbidden-esp-md5.yaml":     `forbidden-esp-md5.yaml:11: connections.site-b.children.net.esp_proposals: md5 (INTEG HMAC_MD5_96) MUST NOT be used for ESP (RFC 8221 §6); expected strongSwan-style names like aes256gcm16-prfsha256-x25519 or "default"`,
	"aead-with-integ.yaml":       `aead-with-integ.yaml:7: connections.site-b.proposals: "aes256gcm16-sha256-x25519" combines AEAD aes256gcm16 with an integrity algorithm; drop it (RFC 7296 §3.3)`,
	"aead-and-cbc.yaml":          `aead-and-cbc.yaml:7: connections.site-b.proposals: "aes256gcm16-aes256-prfsha256-x25519" mixes AEAD aes256gcm16 with aes256; put them in separate proposals (RFC 7296 §3.3)`,
	"ike-no-ke.yaml":             `ike-no-ke.yaml:7: connections.site-b.proposals: "aes256gcm16-prfsha256" needs a key exchange method such as x25519 or ecp256`,
	"cbc-no-integ.yaml":          `cbc-no-integ.yaml:11: connections.site-b.children.net.esp_proposals: "aes256": aes256 needs an integrity algorithm such as sha256`,
	"not-implemented.yaml":       `not-implemented.yaml:7: connections.site-b.proposals: camellia256 (ENCR CAMELLIA_CBC-256) is not implemented by petrel; expected strongSwan-style names like aes256gcm16-prfsha256-x25519 or "default"`,
	"esp-with-prf.yaml":          `esp-with-prf.yaml:11: connections.site-b.children.net.esp_proposals: "aes256gcm16-prfsha256": ESP proposals take no PRF; drop the prf keyword`,

	// Addresses, selectors, values.
	"ts-host-bits.yaml":            `ts-host-bits.yaml:10: connections.site-b.children.net.remote_ts: "10.2.0.5/24": host bits set (the network is 10.2.0.0/24); ` + tsExpected,
	"ts-bad-range.yaml":            `ts-bad-range.yaml:9: connections.site-b.children.net.local_ts[1]: "10.1.1.9-10.1.1.1": range start is above its end; ` + tsExpected,
	"ts-port-without-proto.yaml":   `ts-port-without-proto.yaml:10: connections.site-b.children.net.remote_ts: "10.2.0.0/24[/443]": a port needs a protocol, like [tcp/443]; ` + tsExpected,
	"ts-unknown-proto.yaml":        `ts-unknown-proto.yaml:10: connections.site-b.children.net.remote_ts: "10.2.0.0/24[tpc/443]": unknown protocol "tpc" (tcp, udp, icmp, icmpv6, sctp, gre or a number); ` + tsExpected,
	"hostname-address.yaml":        `hostname-address.yaml:4: connections.site-b.remote_addrs: "vpn.example.com": host names are not supported yet; expected an IP address like 192.0.2.1 or %any`,
	"family-mismatch.yaml":         `family-mismatch.yaml:4: connections.site-b.remote_addrs: 2001:db8::2 and local_addrs 192.0.2.1 are of different IP families; expected both IPv4 or both IPv6`,
	"port-out-of-range.yaml":       `port-out-of-range.yaml:7: connections.site-b.remote_port: 70000 is out of range; expected 1 to 65535`,
	"bad-duration.yaml":            `bad-duration.yaml:7: connections.site-b.rekey_time: "4 hours" is not a duration; expected a number with a unit such as 30s, 15m, 4h or 1d`,
	"bad-byte-size.yaml":           `bad-byte-size.yaml:11: connections.site-b.children.net.rekey_bytes: "10X" is not a size; expected bytes or a number with k, M, G or T (powers of 1024), e.g. 500M`,
	"life-below-rekey.yaml":        `life-below-rekey.yaml:12: connections.site-b.children.net.life_time: 30m0s is not above rekey_time 1h0m0s; expected a life_time longer than rekey_time`,
	"bad-start-action.yaml":        `bad-start-action.yaml:11: connections.site-b.children.net.start_action: "auto" is not allowed; expected none, start or trap`,
	"bad-mode.yaml":                `bad-mode.yaml:11: connections.site-b.children.net.mode: "tunel" is not allowed; expected tunnel or transport`,
	"bad-dpd-action.yaml":          `bad-dpd-action.yaml:11: connections.site-b.children.net.dpd_action: "hold" is not allowed; expected clear, restart or trap`,
	"bad-interface.yaml":           `bad-interface.yaml:11: connections.site-b.children.net.interface: "this-name-is-too-long" is not an interface name; expected 1 to 15 letters, digits, '-', '_' or '.', like xfrm-site-b`,
	"dynamic-with-any.yaml":        `dynamic-with-any.yaml:8: connections.site-b.children.net.remote_ts: missing; the default (dynamic) needs a concrete remote_addrs; expected a subnet like 10.1.0.0/24`,
	"local-not-listened.yaml":      `local-not-listened.yaml:5: connections.site-b.local_addrs: 192.0.2.1 is not among daemon.listen [:: 198.51.100.1]; expected one of those or an unspecified address (0.0.0.0, ::) there`,
	"local-port-not-listened.yaml": `local-port-not-listened.yaml:7: connections.site-b.local_port: 500 is not a port the daemon listens on; expected daemon.ike_port 1500 or daemon.natt_port 4500`,
	"start-without-remote.yaml":    `start-without-remote.yaml:11: connections.site-b.children.net.start_action: start needs a concrete remote_addrs to initiate to; expected none for a responder`,

	// fragment_size.
	"fragment-size-small.yaml":                 `fragment-size-small.yaml:7: connections.site-b.fragment_size: 200 is out of range; ` + fragSizeExpected,
	"fragment-size-large.yaml":                 `fragment-size-large.yaml:7: connections.site-b.fragment_size: 65536 is out of range; ` + fragSizeExpected,
	"fragment-size-negative.yaml":              `fragment-size-negative.yaml:7: connections.site-b.fragment_size: -1280 is out of range; ` + fragSizeExpected,
	"fragment-size-unit.yaml":                  `fragment-size-unit.yaml:7: connections.site-b.fragment_size: got "1280B"; ` + fragSizeExpected,
	"fragment-size-list.yaml":                  `fragment-size-list.yaml:7: connections.site-b.fragment_size: got a list; ` + fragSizeExpected,
	"fragment-size-without-fragmentation.yaml": `fragment-size-without-fragmentation.yaml:8: connections.site-b.fragment_size: only with fragmentation: yes (messages to the peer are never fragmented with no); expected it removed or fragmentation: yes`,

	// Authentication, identities, secrets.
	"auth-pubkey.yaml":           `auth-pubkey.yaml:6: connections.site-b.local: auth: pubkey needs certs:; expected the certificate file (then its intermediates)`,
	"pubkey-no-cacerts.yaml":     `pubkey-no-cacerts.yaml:9: connections.site-b.remote: auth: pubkey needs cacerts:; expected the trust anchors (CA certificate files or folders)`,
	"pubkey-missing-cert.yaml":   `pubkey-missing-cert.yaml:8: connections.site-b.local.certs: cert: open testdata/broken/missing.pem: no such file or directory; expected readable PEM or DER files (relative to this config file)`,
	"pubkey-keys-with-psk.yaml":  `pubkey-keys-with-psk.yaml:8: connections.site-b.local.certs: only with auth: pubkey; expected it removed or auth: pubkey`,
	"pubkey-bad-revocation.yaml": `pubkey-bad-revocation.yaml:11: connections.site-b.remote.revocation: "sometimes" is not allowed; expected none, lenient, ifuri or strict`,
	"pubkey-bad-signature.yaml":  `pubkey-bad-signature.yaml:11: connections.site-b.remote.signatures: "dsa-sha1": unknown signature scheme; expected one like ecdsa-sha256, rsa-pss-sha256, rsa-pkcs1-sha256 or ed25519`,
	"bad-fqdn.yaml":              `bad-fqdn.yaml:6: connections.site-b.local.id: "fqdn:a b.example.com": character " " not allowed in a host name; ` + idExpected,
	"bad-dn.yaml":                `bad-dn.yaml:6: connections.site-b.local.id: "C=CH, X=Example, CN=a": unknown DN attribute "X" (known: C, ST, L, O, OU, CN, SN, DC, E); ` + idExpected,
	"local-wildcard.yaml":        `local-wildcard.yaml:6: connections.site-b.local.id: "*.example.com": a local identity cannot be %any or a wildcard; expected one identity like fqdn:vpn.example.com`,
	"local-any-no-id.yaml":       `local-any-no-id.yaml:2: connections.site-b.local.id: required when local_addrs is %any; expected an identity like fqdn:vpn.example.com or an IP address`,
	"no-matching-secret.yaml":    `no-matching-secret.yaml:5: connections.site-b.local.auth: psk needs a secret, but no entry under secrets: lists fqdn:a.example.com or fqdn:b.example.com (or has no ids); expected a secret with ids: [fqdn:a.example.com]`,
	"no-peer-secret.yaml":        `no-peer-secret.yaml:5: connections.rw.local.auth: psk needs a secret, but no entry under secrets: lists vpn.example.com or *@example.com (or has no ids); expected a secret with ids: [vpn.example.com]`,
	"secret-env-unset.yaml":      `secret-env-unset.yaml:13: secrets.ab.env: environment variable PETREL_TEST_SURELY_UNSET is not set or empty; expected it to hold the PSK`,
	"secret-two-sources.yaml":    `secret-two-sources.yaml:14: secrets.ab.file: a second value source; expected only one of secret:, file: or env:`,
	"secret-file-missing.yaml":   `secret-file-missing.yaml:13: secrets.ab.file: cannot read "missing.psk": no such file or directory; expected a readable file (relative to this config file)`,
	"secret-bad-hex.yaml":        `secret-bad-hex.yaml:13: secrets.ab.secret: the 0x value is not hex; expected 0x followed by hex digits`,

	// Daemon settings.
	"daemon-unknown-subsystem.yaml": `daemon-unknown-subsystem.yaml:4: daemon.log.levels.iek: unknown key; expected one of: config, control, dataplane, esp, ike, keylog, metrics, net`,
	"daemon-bad-level.yaml":         `daemon-bad-level.yaml:3: daemon.log.level: "verbose" is not allowed; expected debug, info, warn or error`,
	"daemon-bad-dataplane.yaml":     `daemon-bad-dataplane.yaml:2: daemon.dataplane: "wireguard" is not allowed; expected auto, userspace-tun, netstack or xfrm`,
	"daemon-relative-socket.yaml":   `daemon-relative-socket.yaml:2: daemon.control_socket: "petrel.sock" is relative; expected an absolute path like /run/petrel/petrel.sock`,
	"daemon-same-ports.yaml":        `daemon-same-ports.yaml:2: daemon.ike_port: ike_port and natt_port are both 4500; expected two different ports`,
	"daemon-bad-metrics.yaml":       `daemon-bad-metrics.yaml:2: daemon.metrics_listen: "localhost": not host:port; expected host:port like 127.0.0.1:9101 or [::1]:9101`,
	"daemon-bad-listen.yaml":        `daemon-bad-listen.yaml:2: daemon.listen[1]: "eth0" is not an IP address; expected e.g. 0.0.0.0, :: or 192.0.2.1`,
}

// fragSizeExpected ends the errors for a bad fragment_size.
const fragSizeExpected = "expected 0 (the default: 1280 for an IPv4 peer, 1232 for IPv6) or octets of UDP payload per IKE datagram from 256 to 65535"

func TestBrokenConfigs(t *testing.T) {
	t.Setenv("PETREL_TEST_SURELY_UNSET", "")
	const dir = "testdata/broken/"
	for name, want := range brokenConfigs {
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			cfg, err := Load(dir + name)
			if err == nil {
				t.Fatalf("loaded without error: %d connections", len(cfg.Connections))
			}
			if got := err.Error(); got != dir+want {
				t.Errorf("error\n got: %s\nwant: %s", got, dir+want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File == "" {
				t.Errorf("%T is not a positioned *config.Error", err)
			}
		})
	}
}

// Every broken file has an expected message, and every message a file.
func TestBrokenConfigsListed(t *testing.T) {
	files, err := filepath.Glob("testdata/broken/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Errorf("only %d broken configs", len(files))
	}
	for _, f := range files {
		if _, ok := brokenConfigs[filepath.Base(f)]; !ok {
			t.Errorf("%s has no expected error in brokenConfigs", f)
		}
	}
	for name := range brokenConfigs {
		if _, err := os.Stat("testdata/broken/" + name); err != nil {
			t.Errorf("brokenConfigs lists %s: %v", name, err)
		}
	}
}
