// Package node runs one petrel instance: it glues the sans-I/O protocol
// core (package ike) to UDP sockets and to a data plane.
//
// A Node owns the IKE socket(s) on daemon.ike_port, the NAT-T socket on
// daemon.natt_port (a dataplane.UDPBind shared by IKE and ESP-in-UDP,
// RFC 3948 §2.2), a userspace data plane on that bind, and one event-loop
// goroutine that owns every ike.Endpoint, so the core needs no locks.
// The loop feeds datagrams and timers to the core, sends the datagrams it
// produces, applies its ChildOps to the data plane (inbound SPIs come from
// the data plane, SA pairs and policies are installed and deleted, keys are
// zeroed once installed; a pair installed with DeferOut keeps its outbound
// SA parked until OpActivate, traffic on its inbound SA, or the loss of its
// child's last active pair; OpUpdate moves a pair to new outer addresses
// when its IKE SA followed a peer behind a NAT) and fans its events out to
// subscribers.
//
// Reload keeps untouched IKE SAs running: each configuration becomes a
// generation (one ike.Endpoint); a new one takes new IKE_SA_INITs and
// initiations while older ones keep serving their SAs until these are gone.
// Removed and changed connections are deleted (INFORMATIONAL with a Delete
// payload), changed ones re-established in the new generation.
//
// Sessions returns a snapshot of every IKE SA with what `petrel sessions
// --detail` shows: the negotiated algorithms, identities, NAT-T, Child SA
// SPIs, selectors and data-plane counters.
//
// node may import anything below cmd/petrel: config, ike, dataplane, esp,
// keylog, wire and the network packages.
package node
