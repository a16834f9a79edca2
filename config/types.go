package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/wire"
)

// Config is a loaded, validated configuration.
type Config struct {
	File        string // the path given to Load
	Files       []string
	Daemon      Daemon
	Connections []*Connection // in file order, includes after the including file
	Secrets     []*Secret
	// Fetcher fetches CRLs, OCSP responses and hash-and-URL certificates
	// for auth: pubkey; the daemon sets it (cert/httpfetch) before
	// IKEConnections. Without one every fetch fails, and the revocation
	// policy decides.
	Fetcher cert.Fetcher
	// CertLog receives revocation warnings (data unreachable but accepted
	// by the policy); nil means slog.Default().
	CertLog *slog.Logger
}

// Daemon holds the daemon-wide settings (the daemon: section).
type Daemon struct {
	// Listen are the addresses IKE sockets bind to, on IKEPort and NATTPort.
	Listen            []netip.Addr
	IKEPort, NATTPort uint16
	// ControlSocket is the unix socket of the local API.
	ControlSocket string
	// MetricsListen is host:port for the Prometheus endpoint; "" = off.
	MetricsListen string
	Log           Log
	// CookieThreshold is how many half-open IKE SAs make the responder
	// demand COOKIEs (RFC 7296 §2.6). It is daemon-wide because the
	// decision comes before any connection is selected.
	CookieThreshold int
	// HalfOpenLimit bounds half-open IKE SAs (beyond it IKE_SA_INIT
	// requests are dropped); from HalfOpenPerPeer half-open SAs one
	// address must return a COOKIE.
	HalfOpenLimit, HalfOpenPerPeer int
	// Dataplane is auto, userspace-tun, netstack or xfrm.
	Dataplane string
	// KeylogDir, when set, is where Wireshark key logs are written
	// (opt-in: they hold session keys). Resolved against the config file.
	KeylogDir  string
	Retransmit Retransmit
}

// Log configures log/slog output.
type Log struct {
	Format string            // text or json
	Level  string            // debug, info, warn or error
	Levels map[string]string // per subsystem (LogSubsystems), overriding Level
}

// LogSubsystems are the names daemon.log.levels accepts.
var LogSubsystems = []string{"config", "control", "dataplane", "esp", "ike", "keylog", "metrics", "net"}

// Retransmit is the retransmission schedule of IKE requests (RFC 7296 §2.1).
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
}

// Connection is one connections: entry.
type Connection struct {
	Name string
	// LocalAddr and RemoteAddr are invalid for %any.
	LocalAddr, RemoteAddr netip.Addr
	// LocalPort defaults to daemon.ike_port, RemotePort to 500.
	LocalPort, RemotePort uint16
	// Proposals are the IKE proposals, nil for the defaults; ProposalText
	// is what the file said, for display.
	Proposals    [][]wire.Transform
	ProposalText []string
	PreferPeer   bool
	Local        Auth
	Remote       Auth
	RekeyTime    time.Duration
	ReauthTime   time.Duration
	// DPDDelay is the dead peer detection interval; 0 = off.
	DPDDelay        time.Duration
	Encap           bool
	NoFragmentation bool
	// FragmentSize (fragment_size) is the largest UDP payload of an IKE
	// datagram to a peer that supports fragmentation (RFC 7383): the IKE
	// message plus the non-ESP marker on port 4500, not counting the IP
	// and UDP headers (strongSwan's fragment_size counts them). Larger
	// protected messages go as SKF fragments that each fit. 0 = the
	// default for the peer's address family: 1280 for IPv4, 1232 for
	// IPv6. Only with fragmentation: yes.
	FragmentSize int
	Children     []*Child
	// PSK is the secret chosen for this connection (see Secret.IDs), nil
	// when neither side authenticates with a PSK.
	PSK *Secret
	// PeerPSKs are, when remote.id is %any or a wildcard, the secrets that
	// list an identity the pattern matches (per-user PSKs of road
	// warriors); the one to use is picked at authentication time from the
	// identity the peer claims, as strongSwan does.
	PeerPSKs []*Secret

	pos, localPos, addrPos, portPos pos
	fetcher                         cert.Fetcher // Config.Fetcher, for pubkey
	certLog                         *slog.Logger // Config.CertLog
}

// Auth is one side's authentication round (local: or remote:).
type Auth struct {
	Method string // "psk" or "pubkey"; eap comes later
	// ID is this side's identity; the zero ID is %any (remote only). For
	// local, an unset id defaults to the local address, or with pubkey to
	// the certificate's subject DN.
	ID Identity
	// Pubkey holds the certificate settings and what they loaded, for
	// auth: pubkey (pubkey.go).
	Pubkey *Pubkey
}

// Child is one children: entry of a connection.
type Child struct {
	Name              string
	LocalTS, RemoteTS []TrafficSelector
	Transport         bool
	// Proposals are the ESP proposals, nil for the defaults.
	Proposals    [][]wire.Transform
	ProposalText []string
	StartAction  string // none, start or trap
	DPDAction    string // clear, restart or trap
	// Interface names the XFRM/TUN interface of a route-based child; ""
	// means policy-based.
	Interface           string
	RekeyTime, LifeTime time.Duration
	RekeyBytes          uint64
	LifeBytes           uint64

	pos pos
}

// Secret is one secrets: entry: a pre-shared key for the identities in IDs
// (none = any identity). The value never appears in String or %v output.
type Secret struct {
	Name string
	IDs  []Identity
	// Source says where the value came from: "inline", "file PATH" or
	// "env NAME"; never the value.
	Source string
	Value  Redacted
}

// Redacted holds secret octets; every fmt verb prints "<redacted>".
type Redacted []byte

// String hides the value.
func (Redacted) String() string { return "<redacted>" }

// GoString hides the value from %#v.
func (Redacted) GoString() string { return "<redacted>" }

// Format hides the value from every verb (%x, %s, %v, %q, ...).
func (r Redacted) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// MarshalText keeps the value out of JSON and YAML dumps.
func (Redacted) MarshalText() ([]byte, error) { return []byte("<redacted>"), nil }
