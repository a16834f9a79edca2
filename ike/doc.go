// Package ike is petrel's sans-I/O IKEv2 protocol core (RFC 7296): an
// Endpoint that owns a table of IKE SAs by SPI, and for each IKE SA its
// Child SAs, its tasks and its task manager.
//
// Nothing in this package does I/O. Inputs are values — "datagram from A to
// B at time T" (Endpoint.HandleDatagram), "time is now T" (Endpoint.Tick),
// "bring connection C up" (Endpoint.Initiate) — and outputs are values
// appended to an *Output: datagrams to send, data-plane operations (install
// or delete a Child SA with its keys and traffic selectors) and events. The
// caller asks Endpoint.NextDeadline when to call Tick again. Randomness comes
// from an injected io.Reader and time from the caller, so every exchange can
// be driven message by message in tests with a fake clock.
//
// Design (after strongSwan's libcharon, improved as docs/architecture.md
// and STYLE.md ask):
//
//   - Each concern of an exchange is a task (task_*.go, one per file) with a
//     fixed initiator or responder role and build/process methods. The order
//     in which tasks see a message is an explicit table (taskOrder).
//   - Only the task manager (taskmgr.go) touches message IDs, the window,
//     retransmission, the response cache and the choice of exchange.
//   - Facts that tasks share live as typed fields on the SA (NAT detected,
//     peer supports fragmentation, negotiated suite), never as tasks peeking
//     at each other's payloads.
//   - The SA lifecycle composes tasks instead of copying them: the Child SA
//     rekey wraps the CREATE_CHILD_SA child create, the IKE SA rekey wraps
//     ikeInit (task_child_rekey.go, task_ike_rekey.go); collisions follow
//     RFC 7296 §2.8.1/§2.25. Lifetimes with jitter, delayed retries, liveness
//     checks and fragment reassembly are timers of the SA (lifetime.go,
//     task_dpd.go, fragment.go); byte/packet limits and unknown ESP SPIs come
//     in from the daemon (Endpoint.ChildUsage, Endpoint.UnknownESPSPI).
//   - Make-before-break on both ends: the initiator of a Child rekey (or of
//     a reauthentication) installs the new pair and sends on it at once;
//     the responder installs it with ChildOp.DeferOut, keeping the old pair
//     as the outbound one until the core sends OpActivate (the old pair's
//     delete) or the daemon sees traffic on the new pair, because the
//     initiator has the pair only once the response reaches it (§2.8).
//     The side that deletes a pair stops sending on it with its Delete
//     (OpDeactivate) and keeps receiving on it until the answer (§1.4.1).
//   - A side that is not behind a NAT follows a peer that is to the source
//     of the peer's latest message that passed its integrity check, and
//     moves the Child SAs with it (OpUpdate, once per pair per change); a
//     side behind a NAT, or with none detected, stays (§2.23, natfollow.go).
//   - Certificate checks never wait on the network in the loop: a peer's
//     IKE_AUTH whose check needs a CRL, OCSP answer or hash-and-URL
//     certificate not fetched yet is set aside before any task sees it
//     (certwait.go) and tried again when the daemon's fetcher has the data,
//     with the same verdict as if we had waited.
//   - Local and remote authentication are configured independently through
//     the Authenticator interface (auth.go); PSK is the first implementation.
//
// Import rules (enforced by layers_test.go at the module root): ike imports
// wire, suite and keylog, and no socket, TUN or netlink package. The UDP
// transport lives in the sub-package ike/udp.
package ike
