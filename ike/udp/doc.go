// Package udp runs ike Endpoints over UDP sockets: one socket for IKE (port
// 500 by default) and one for NAT-T (port 4500, RFC 3948) per address, over
// IPv4 and IPv6, any ports in tests.
//
// On the NAT-T socket every IKE message carries a four-octet zero non-ESP
// marker (RFC 3948 §2.2), which the Server adds and strips; datagrams
// without it are ESP-in-UDP and go to Config.ESP for the data plane, and
// one-octet 0xFF datagrams are NAT-keepalives (RFC 3948 §2.3), which the
// Server also sends every Config.Keepalive for SAs behind a NAT.
//
// The SAs are sharded over Config.Shards event loops; each shard is one
// goroutine that owns one sans-I/O ike.Endpoint, so each IKE SA is owned by
// exactly one goroutine and the core needs no locks. A datagram is routed to
// its shard by the SPI this side chose (low bits of the SPI name the shard),
// an IKE_SA_INIT request by a hash of its source and initiator SPI (so a
// retry with a COOKIE reaches the same shard). Half-open limits and cookie
// thresholds apply per shard.
//
// This package may import net; the core package ike may not.
package udp
