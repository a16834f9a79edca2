package config

import (
	"net/netip"
	"time"
)

// Every default petrel applies to a setting left out of the file. The
// example configuration (examples/petrel.yaml) repeats them in comments.
const (
	// daemon:
	DefaultIKEPort         = 500                       // daemon.ike_port (RFC 7296 §2)
	DefaultNATTPort        = 4500                      // daemon.natt_port (RFC 3948, RFC 7296 §2.23)
	DefaultControlSocket   = "/run/petrel/petrel.sock" // daemon.control_socket
	DefaultLogFormat       = "text"                    // daemon.log.format: text | json
	DefaultLogLevel        = "info"                    // daemon.log.level: debug | info | warn | error
	DefaultCookieThreshold = 30                        // daemon.cookie_threshold: half-open SAs before COOKIEs are demanded (RFC 7296 §2.6)
	DefaultHalfOpenLimit   = 10000                     // daemon.half_open_limit: half-open IKE SAs in all, beyond which IKE_SA_INIT is dropped
	DefaultHalfOpenPerPeer = 5                         // daemon.half_open_per_peer: half-open IKE SAs from one address before it must return a COOKIE
	DefaultDataplane       = "auto"                    // daemon.dataplane: auto | userspace-tun | netstack | xfrm
	// daemon.retransmit: strongSwan's schedule, timeout·base^n, tries times.
	DefaultRetransmitTimeout = 4 * time.Second
	DefaultRetransmitBase    = 1.8
	DefaultRetransmitTries   = 5

	// connections.NAME:
	DefaultPort          = 500           // remote_port; local_port defaults to daemon.ike_port
	DefaultRekeyTime     = 4 * time.Hour // rekey_time of the IKE SA
	DefaultReauthTime    = 0             // reauth_time: 0 = no reauthentication
	DefaultDPDDelay      = 0             // dpd_delay: 0 = no dead peer detection
	DefaultFragmentation = "yes"         // fragmentation: yes | no (RFC 7383)
	DefaultFragmentSize  = 0             // fragment_size: 0 = ike.DefaultFragmentSizeIPv4 (1280) or ike.DefaultFragmentSizeIPv6 (1232) by the peer's family
	DefaultEncap         = false         // encap: force UDP encapsulation
	DefaultPrefer        = "local"       // prefer: local | peer, whose proposal order wins as responder
	DefaultAuth          = "psk"         // local.auth, remote.auth

	// connections.NAME.children.NAME:
	DefaultMode        = "tunnel"         // mode: tunnel | transport
	DefaultStartAction = "none"           // start_action: none | start | trap
	DefaultDPDAction   = "clear"          // dpd_action: clear | restart | trap
	DefaultTS          = "dynamic"        // local_ts, remote_ts: the IKE address of that side
	DefaultChildRekey  = time.Hour        // rekey_time
	DefaultChildLife   = 66 * time.Minute // life_time: rekey_time + 10%, strongSwan's rule
)

// The range of fragment_size (besides 0), in octets of UDP payload: the
// IKE message plus the non-ESP marker on port 4500. The minimum still
// leaves each SKF fragment 159 octets of inner payloads with the largest
// overhead petrel negotiates (IKE header 28, SKF header 8, AES-CBC IV 16
// and padding, HMAC-SHA2-512-256 ICV 32, marker 4); at the maximum, the
// largest UDP length, messages are in effect never fragmented. A peer
// reassembles a bounded number of fragments (petrel: 32), so sizes near
// the minimum only suit small messages.
const (
	MinFragmentSize = 256
	MaxFragmentSize = 65535
)

// DefaultListen are the addresses the daemon binds IKE sockets to.
var DefaultListen = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}

// Proposals written as "default" (or left out) are suite.DefaultIKEProposals
// and suite.DefaultESPProposals: AES-GCM-16/ChaCha20-Poly1305 first, then
// AES-CBC with HMAC-SHA2; X25519, ECP and MODP ≥ 2048 for IKE; no PFS and no
// ESN for ESP.
