package ike

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// Mode is a Child SA's IPsec mode (RFC 7296 §1.3.1).
type Mode uint8

const (
	ModeTunnel    Mode = iota // the default
	ModeTransport             // negotiated with USE_TRANSPORT_MODE
)

func (m Mode) String() string {
	if m == ModeTransport {
		return "transport"
	}
	return "tunnel"
}

// ProposalPolicy says whose preference order wins when a responder selects
// among the initiator's proposals (RFC 7296 §2.7 leaves this to the
// responder).
type ProposalPolicy uint8

const (
	// PreferLocal walks the responder's own proposals in order and takes
	// the first one the initiator also offers (strongSwan's
	// prefer_configured_proposals = yes, its default).
	PreferLocal ProposalPolicy = iota
	// PreferPeer walks the initiator's proposals in order (the RFC's
	// "first acceptable").
	PreferPeer
)

// Retransmit is the retransmission schedule of requests (RFC 7296 §2.1):
// the n-th retransmission (n = 1..Tries) is sent Timeout·Base^(n-1) after
// the previous send, and the exchange gives up Timeout·Base^Tries after the
// last one. The zero value is strongSwan's default: 4 s × 1.8^n, 5 tries.
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
}

func (r Retransmit) withDefaults() Retransmit {
	if r.Timeout <= 0 {
		r.Timeout = 4 * time.Second
	}
	if r.Base < 1 {
		r.Base = 1.8
	}
	if r.Tries <= 0 {
		r.Tries = 5
	}
	return r
}

// delay is the wait after send number n (0 = the first transmission).
func (r Retransmit) delay(n int) time.Duration {
	d := float64(r.Timeout)
	for i := 0; i < n; i++ {
		d *= r.Base
	}
	return time.Duration(d)
}

// ChildConfig is one Child SA a connection negotiates (the first one in
// IKE_AUTH, RFC 7296 §1.2).
type ChildConfig struct {
	Name string
	// LocalTS and RemoteTS are this side's traffic selectors; as initiator
	// they are proposed, as responder the peer's are narrowed to them
	// (RFC 7296 §2.9).
	LocalTS, RemoteTS []TrafficSelector
	Mode              Mode
	// IPComp asks for IP compression (RFC 7296 §2.22). petrel's data plane
	// has none, so a petrel responder always declines by not answering,
	// and an initiator treats acceptance as a Child SA failure.
	IPComp bool
	// Proposals are ESP proposals; nil means suite.DefaultESPProposals.
	Proposals [][]wire.Transform
	// RekeyTime is the soft limit that starts a rekey (less a random
	// tenth, so both ends rarely start together); LifeTime the hard limit
	// that deletes the pair (0 = RekeyTime plus a tenth). RFC 7296 §2.8.
	RekeyTime, LifeTime time.Duration
	// RekeyBytes/RekeyPackets start a rekey and LifeBytes/LifePackets
	// delete the pair once the data-plane counters reported through
	// Endpoint.ChildUsage reach them (either direction); 0 = no limit.
	RekeyBytes, LifeBytes     uint64
	RekeyPackets, LifePackets uint64
	// DPDAction is what happens to this child when the peer is declared
	// dead (RFC 7296 §2.4).
	DPDAction DPDAction
}

// DPDAction is what to do with a child when its peer is dead.
type DPDAction uint8

const (
	DPDClear   DPDAction = iota // remove it (the default)
	DPDRestart                  // initiate the connection again at once
	DPDTrap                     // leave it to the daemon to initiate on the next packet (EventPeerDead says "trap")
)

func (a DPDAction) String() string {
	return [...]string{"clear", "restart", "trap"}[a%3]
}

// Connection is one configured peering: addresses, IKE proposals, local and
// remote authentication configured independently, and the children.
type Connection struct {
	Name string
	// Local and Remote are the IKE endpoints. As a responder, an invalid
	// Remote address matches any peer, and an invalid Local any address
	// the datagram arrived on.
	Local, Remote netip.AddrPort
	// Proposals are the IKE SA proposals; nil means suite.DefaultIKEProposals.
	Proposals [][]wire.Transform
	Policy    ProposalPolicy

	// LocalAuth proves our identity; RemoteAuth verifies the peer's.
	LocalAuth  Authenticator
	RemoteAuth Verifier
	LocalID    Identity
	// RemoteID is what the peer must authenticate as; the zero Identity
	// matches any (the peer's proof still has to verify).
	RemoteID Identity
	// SendIDr makes the initiator send IDr (RFC 7296 §3.5) so a responder
	// with several identities can pick.
	SendIDr bool

	Children []ChildConfig

	// ForceEncap pretends a NAT is present (RFC 7296 §2.23: fake NAT-D),
	// moving to UDP encapsulation on port 4500.
	ForceEncap bool
	// NoFragmentation disables IKE fragmentation (RFC 7383): neither
	// advertised nor used.
	NoFragmentation bool
	// FragmentSize is the largest UDP payload (the IKE message plus the
	// non-ESP marker on the NAT-T port) of any datagram carrying a
	// protected message to a peer that supports fragmentation (RFC 7383):
	// larger messages go as SKF fragments that each fit. 0 = the default
	// for the peer's address family, DefaultFragmentSizeIPv4 or
	// DefaultFragmentSizeIPv6.
	FragmentSize int
	// RemoteNATTPort is the peer's NAT-T port, where IKE moves when a NAT
	// is detected (RFC 7296 §2.23); 0 = 4500.
	RemoteNATTPort uint16
	// Retransmit schedule of requests this side sends.
	Retransmit Retransmit
	// RekeyTime starts an IKE SA rekey (RFC 7296 §2.18); ReauthTime a
	// reauthentication: a fresh IKE SA and children, made before the old
	// one is deleted (§2.8.3). Both less a random tenth; 0 = never.
	RekeyTime, ReauthTime time.Duration
	// DPDDelay is the quiet interval after which an empty INFORMATIONAL
	// checks that the peer is alive (RFC 7296 §2.4); 0 = only when
	// something else is sent. A peer that answers nothing before the
	// retransmission schedule runs out is dead.
	DPDDelay time.Duration
}

func (c *Connection) ikeProposals() [][]wire.Transform {
	if c.Proposals != nil {
		return c.Proposals
	}
	return defaultIKEProposals
}

func (c *ChildConfig) espProposals() [][]wire.Transform {
	if c.Proposals != nil {
		return c.Proposals
	}
	return defaultESPProposals
}

var (
	defaultIKEProposals = suite.DefaultIKEProposals()
	defaultESPProposals = suite.DefaultESPProposals()
)

func (c *Connection) remoteNATTPort() uint16 {
	if c.RemoteNATTPort != 0 {
		return c.RemoteNATTPort
	}
	return 4500
}

// validate checks what the core relies on.
func (c *Connection) validate() error {
	if c.Name == "" {
		return fmt.Errorf("%w: connection without a name", ErrConfig)
	}
	if c.LocalAuth == nil || c.RemoteAuth == nil {
		return fmt.Errorf("%w: connection %q needs LocalAuth and RemoteAuth", ErrConfig, c.Name)
	}
	if len(c.ikeProposals()) == 0 {
		return fmt.Errorf("%w: connection %q has no IKE proposals", ErrConfig, c.Name)
	}
	for _, p := range c.ikeProposals() {
		if firstOfType(p, wire.TransformKE) == nil {
			return fmt.Errorf("%w: connection %q: IKE proposal without a KE transform", ErrConfig, c.Name)
		}
	}
	return nil
}

// firstOfType returns the first transform of type t in ts, or nil.
func firstOfType(ts []wire.Transform, t wire.TransformType) *wire.Transform {
	for i := range ts {
		if ts[i].Type == t {
			return &ts[i]
		}
	}
	return nil
}
