// Package dataplane is what carries a Child SA's traffic once IKE has
// negotiated it: the DataPlane interface that the IKE engine drives, and its
// backends.
//
// # The interface (for the IKE engine)
//
// The engine, after a CREATE_CHILD_SA or IKE_AUTH exchange:
//
//	spi, _ := dp.AllocateSPI()          // our inbound SPI, sent in the SA payload
//	dp.AddSA(dataplane.SA{Dir: dataplane.In,  SPI: spi,     ReqID: id, ...keys for peer->us})
//	dp.AddSA(dataplane.SA{Dir: dataplane.Out, SPI: peerSPI, ReqID: id, ...keys for us->peer})
//	dp.AddPolicy(dataplane.Policy{Local: tsi, Remote: tsr, ReqID: id}) // policy-based mode
//
// Keys are the Child SA KEYMAT split per RFC 7296 §2.17; for AEAD (AES-GCM,
// ChaCha20-Poly1305) EncrKey is key|4-octet salt and Integ is IntegNONE.
// SA.Local/Remote are the outer addresses; with SA.Encap the ports are the
// NAT-T UDP ports (RFC 3948). SA.LocalTS/RemoteTS are the negotiated traffic
// selectors: inbound packets outside them are dropped and counted
// (esp.Counters.PolicyDrops).
//
// Rekeying is make-before-break: install the new inbound SA, then the new
// outbound SA (the newest outbound SA of a ReqID is used from that moment),
// then DeleteSA the old pair; keys are zeroed on delete. Counters(dir, spi)
// returns packets, bytes, drops and the last-used time, for lifetimes
// (RFC 7296 §2.8) and dead peer detection. UpdateSA changes outer
// addresses (NAT mapping change, MOBIKE). Options.OnEvent reports Acquire
// (a policy matched but its ReqID has no SA) and SeqExhausted (an outbound
// SA used its last sequence number and stopped: rekey, RFC 4303 §3.3.3).
// Options.KeyLog (opt-in) gets a KeyInfo per installed SA: SPI, transforms,
// key|salt and integrity key, which package keylog turns into a Wireshark
// esp_sa line; Userspace.SAKeys reads them later.
//
// Modes. Policy-based: a device attached with if_id 0 sends each packet to
// the SA chosen by the most specific matching Policy (RFC 4301 §4.4.1).
// Route-based (like a Cisco VTI or XFRM interface): a device attached with
// a non-zero if_id sends everything routed to it through the newest
// outbound SA with that SA.IfID, and receives from inbound SAs with it; no
// policies needed.
//
// # Backends
//
// Userspace (NewUserspace) runs ESP in this process on any tun.Device:
//   - a Linux TUN device (NewTUN, with the kernel's offloads when offered),
//   - a gVisor netstack (Userspace.AttachNetstack), which needs no root.
//
// It sends and receives ESP through a Bind: UDPBind is the NAT-T port 4500
// socket shared with IKE (RFC 3948 §2.2 non-ESP-marker demux: IKE messages
// go to a callback, NAT-keepalives are dropped), MemBind joins two data
// planes in memory for tests. Crypto runs on a pool of worker goroutines,
// packets keep their order per device and per receive loop, buffers come
// from bounded pools, and the hot path does not allocate.
//
// XFRM (NewXFRM, Linux) installs states and policies in the kernel through
// netlink, with UDP encapsulation and marks/if_id. Choose picks XFRM when
// the kernel has ESP and otherwise says what is missing and falls back to
// userspace; Kind is the config/flag override.
//
// Import rules (enforced at the module root): package esp, package wire
// (transform IDs only), golang.zx2c4.com/wireguard (tun, netstack, conn),
// github.com/vishvananda/netlink and the standard library.
package dataplane
