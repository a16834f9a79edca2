// Package config reads petrel's YAML configuration: daemon settings,
// connections with their children, and secrets, in the spirit of
// strongSwan's swanctl.conf so that a migration is mostly renaming.
//
// Load reads one file plus the files its include: entries name (globs or
// folders, relative to the file). Decoding works on yaml.Node trees so
// that every error says FILE:LINE: FIELD.PATH: what was wrong and what was
// expected; unknown keys are errors with a "did you mean" for near misses.
// Everything that can be checked without starting anything is checked:
// addresses, ports, traffic selectors, identities, strongSwan-style
// proposals (mapped to wire transforms and refused when RFC 8247/8221
// forbid them), durations, sizes, enumerations, that every connection
// authenticating with a PSK has a secret, and that the certificate, key and
// trust anchor files of auth: pubkey load (pubkey.go).
//
// YAML anchors and merge keys work; top-level keys starting with "x-" are
// ignored, a place for templates merged with <<: *name.
//
// Defaults are listed in one place, defaults.go. (*Config).Connections in
// ike.go turns the result into the protocol core's ike.Connection values.
//
// config may import wire, suite, ike (ike.go only), cert and the YAML
// decoder; it opens files and reads environment variables but never
// sockets: CRLs, OCSP and hash-and-URL go through the Fetcher the daemon
// puts in Config.
package config
