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
// InstallChild does exactly that for a Child (both directions, as the IKE
// core's install operation describes them) and RemoveChild undoes it;
// Userspace and XFRM also have AllocSPI, the IKE core's SPIAllocator.
// Keys are the Child SA KEYMAT split per RFC 7296 §2.17; for AEAD (AES-GCM,
// ChaCha20-Poly1305) EncrKey is key|4-octet salt and Integ is IntegNONE.
// SA.Local/Remote are the outer addresses; with SA.Encap the ports are the
// NAT-T UDP ports (RFC 3948). SA.LocalTS/RemoteTS are the negotiated traffic
// selectors: inbound packets outside them are dropped and counted
// (esp.Counters.PolicyDrops).
//
// Rekeying is make-before-break: install the new inbound SA, then the new
// outbound SA (the newest outbound SA of a ReqID is used from that moment;
// the responder of a rekey installs it later, once the peer has the pair),
// then DeleteSA the old pair; keys are zeroed on delete. Deleting the
// current outbound SA falls back to the newest remaining one of its ReqID. Counters(dir, spi)
// returns packets, bytes, drops and the last-used time, for lifetimes
// (RFC 7296 §2.8) and dead peer detection. UpdateSA changes outer
// addresses (NAT mapping change, MOBIKE). Options.OnEvent reports Acquire
// (a policy matched but its ReqID has no SA), UnknownSPI (inbound ESP for
// an SPI with no SA, rate-limited, for RFC 7296 INVALID_SPI), SeqSoftLimit
// (an outbound SA used 7/8 of its sequence numbers: rekey now) and
// SeqExhausted (it used the last one and stopped sending, RFC 4303
// §3.3.3). Under XFRM (XFRMOptions.OnEvent) only Acquire exists, from the
// kernel's XFRM_MSG_ACQUIRE; the kernel counts ESP for unknown SPIs
// (XfrmInNoStates) without saying which.
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
// go to a callback, NAT-keepalives are dropped; SendIKE and SendKeepalive
// for the engine), RawBind is plain ESP on IP protocol 50, MultiBind uses
// UDP or raw per SA, MemBind joins two data planes in memory for tests.
// On Linux UDPBind uses recvmmsg/sendmmsg with UDP GSO and GRO and parses
// addresses without allocating (elsewhere, or with PETREL_UDP=std, it runs
// on wireguard-go's conn.StdNetBind).
//
// Performance, as in wireguard-go's device/: crypto runs on a pool of
// worker goroutines (Options.Workers); packets keep their order per device
// and per receive loop (a batch's mutex is held until its crypto is done);
// buffers come from bounded pools of 64 KiB buffers so that TUN GRO and UDP
// GSO can coalesce into them; reads and writes are batched; nothing is
// allocated per packet (BenchmarkDataPath; the namespace test reports heap
// allocations per packet of the whole process).
//
// Deleting an SA takes it out of the tables at once and zeroes its keys
// as soon as the packets already classified to it are through.
//
// XFRM (NewXFRM, Linux) installs states and in/out/fwd policies in the
// kernel through netlink, with UDP encapsulation (EnableUDPDecap sets
// UDP_ENCAP on the daemon's 4500 socket) and if_id for route-based XFRM
// interfaces (AddInterface). ProbeXFRM names the missing kernel feature
// (here: "XFRM but no in-kernel ESP (CONFIG_INET_ESP...)"); Choose picks
// XFRM when the kernel has ESP and otherwise falls back to userspace on TUN
// with that reason; Kind is the config/flag override (auto, xfrm, tun,
// netstack). With XFRM, install a ReqID's outbound SA before its policy
// (the policy templates need the outer addresses); UpdateSA there updates
// the state in place or re-adds it (policy templates are not migrated).
//
// Import rules (docs/architecture.md): package esp, package wire
// (transform IDs only), golang.zx2c4.com/wireguard (tun, tun/netstack,
// conn), github.com/vishvananda/netlink, golang.org/x/sys/unix and the
// standard library. Tests also use keylog, gopacket/pcapgo and x/net/icmp.
package dataplane
