// Package petrel is an IKEv2 (RFC 7296) VPN daemon and library with its own
// userspace ESP data plane. See docs/architecture.md for the package layout;
// this root package holds only repository-wide tests.
package petrel
