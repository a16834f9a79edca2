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
// forbid them), durations, sizes, enumerations, and that every connection
// authenticating with a PSK has a secret.
//
// YAML anchors and merge keys work; top-level keys starting with "x-" are
// ignored, a place for templates merged with <<: *name.
//
// Defaults are listed in one place, defaults.go. (*Config).Connections in
// ike.go turns the result into the protocol core's ike.Connection values.
//
// config may import wire, suite and ike (ike.go only), and the YAML
// decoder; it opens files and reads environment variables but never
// sockets.
package config
