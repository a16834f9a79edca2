// Package interop is petrel's interoperability harness: it builds small
// network topologies out of Linux network namespaces joined by veth pairs,
// starts IKEv2 daemons in them (strongSwan's charon today, the petrel binary
// once it exists) and judges each scenario only by what crosses the wire and
// what each side reports: ping and iperf3 through the tunnel, each daemon's
// own SA listing, and a tshark capture of the link decrypted with both
// sides' key logs.
//
// Everything here needs root and a Debian 12 userland with strongSwan 5.9.x
// (kernel-libipsec for ESP), tshark, iperf3, ping and nftables; see
// scripts/install-test-deps.sh. The tests run only when PETREL_INTEROP=1 and
// the process is root; otherwise they skip with a message saying so.
//
// Addresses used: 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 on the
// links, 10.x/32 host addresses on each namespace's lo for the protected
// subnets. Every namespace is named pi-<pid>-<scenario>-<role>, so stale
// ones from a killed run can be recognised and removed.
//
// The package may import anything (see docs/architecture.md); it imports
// no other petrel package so that it builds before the IKE engine does.
package interop
