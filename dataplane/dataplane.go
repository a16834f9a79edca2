package dataplane

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// DataPlane is what the IKE engine drives. Every backend (userspace ESP on
// a TUN device or a gVisor netstack, Linux XFRM) implements it. Methods are
// safe for concurrent use.
type DataPlane interface {
	// AllocateSPI reserves a fresh inbound SPI (RFC 4303 §2.1: never
	// 0..255, never one in use) for a Child SA being negotiated. It is
	// released by DeleteSA, or by ReleaseSPI if negotiation fails.
	AllocateSPI() (uint32, error)
	ReleaseSPI(spi uint32)
	// AddSA installs one direction of a Child SA. Installing an outbound SA
	// makes it the one used for its ReqID (make-before-break rekeying: the
	// old SA keeps working inbound until it is deleted).
	AddSA(sa SA) error
	// UpdateSA changes the outer addresses and encapsulation of an
	// installed SA (NAT mapping changed, MOBIKE), keeping keys and counters.
	UpdateSA(dir Direction, spi uint32, local, remote netip.AddrPort, encap bool) error
	// DeleteSA removes an SA and zeroes its keys.
	DeleteSA(dir Direction, spi uint32) error
	// AddPolicy installs an outbound policy: packets matching it are
	// protected with the current outbound SA of its ReqID (policy-based
	// mode). DeletePolicy removes the policy with the same selectors.
	AddPolicy(p Policy) error
	DeletePolicy(p Policy) error
	// Counters reads an SA's counters (lifetimes, DPD, session listing).
	Counters(dir Direction, spi uint32) (esp.Counters, error)
	// ReleaseReqID says the caller is done with reqID: what the backend
	// keeps per ReqID (tunnel endpoints, the last Acquire's time) goes, at
	// once or, while an outbound SA or a policy of reqID is still
	// installed, with the last of them. A ReqID used again after it starts
	// afresh. ReqIDs come and go with a gateway's peers: without this the
	// backend would keep something for every one it ever saw.
	ReleaseReqID(reqID uint32)
	// Name says which backend this is, for logs and session listings.
	Name() string
	Close() error
}

// Direction of an SA or policy.
type Direction uint8

const (
	In Direction = iota
	Out
)

func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// SA is one direction of a Child SA as the engine installs it.
type SA struct {
	Dir Direction
	SPI uint32
	// ReqID ties the SA to its policies (like XFRM's reqid): the two
	// directions of one Child SA, and of its rekeyed successors, share it.
	ReqID uint32
	// IfID, when non-zero, binds the SA to a route-based interface (like
	// XFRM's if_id, a Cisco VTI): everything routed to that interface is
	// protected by it, without policies. See Userspace.AttachDevice.
	IfID uint32
	Mode esp.Mode
	// Local and Remote are the outer (tunnel endpoint) addresses; with
	// Encap the ports are the UDP ports (RFC 3948), normally 4500.
	Local, Remote netip.AddrPort
	Encap         bool
	// Keys from the Child SA KEYMAT (RFC 7296 §2.17); for AEAD the
	// encryption key includes the 4-octet salt.
	Encr     wire.EncrID
	EncrKey  []byte
	Integ    wire.IntegID
	IntegKey []byte
	ESN      bool
	// ReplayWindow in packets (inbound); 0 means esp.DefaultReplayWindow.
	ReplayWindow int
	// LocalTS and RemoteTS are the negotiated traffic selectors (RFC 7296
	// §2.9). Inbound packets whose inner source is outside RemoteTS or inner
	// destination outside LocalTS are dropped and counted (RFC 4301 §5.2).
	LocalTS, RemoteTS []Selector
}

func (sa *SA) espConfig() esp.Config {
	return esp.Config{SPI: sa.SPI, Encr: sa.Encr, EncrKey: sa.EncrKey, Integ: sa.Integ,
		IntegKey: sa.IntegKey, ESN: sa.ESN, Mode: sa.Mode, ReplayWindow: sa.ReplayWindow}
}

// Policy selects outbound traffic for a Child SA (RFC 4301 §4.4.1).
type Policy struct {
	Local, Remote Selector
	ReqID         uint32
	Action        Action
}

// Action is what a policy does with matching packets.
type Action uint8

const (
	Protect Action = iota // seal with the ReqID's outbound SA
	Bypass                // pass in clear: not supported by userspace backends, which only see tunnel traffic
	Discard               // drop
)

// Event tells the engine about something the data plane saw.
type Event struct {
	Kind  EventKind
	Dir   Direction
	SPI   uint32
	ReqID uint32
	// Packet is set for Acquire: the 5-tuple that had no SA.
	Packet Flow
	// Peer is set for UnknownSPI: the outer source address of the ESP
	// packet (the peer to tell, RFC 7296 §2.4).
	Peer netip.Addr
}

// EventKind names an Event.
type EventKind uint8

const (
	// SeqExhausted: an outbound SA ran out of sequence numbers and stopped
	// sending; rekey it (RFC 4303 §3.3.3).
	SeqExhausted EventKind = iota + 1
	// Acquire: a packet matched a Protect policy whose ReqID has no
	// outbound SA yet (like XFRM_MSG_ACQUIRE). Sent at most once a second
	// per ReqID.
	Acquire
	// SeqSoftLimit: an outbound SA used seven eighths of its sequence
	// numbers (esp.Outbound.SeqSoftLimit); rekey now, before SeqExhausted.
	SeqSoftLimit
	// UnknownSPI: an ESP packet arrived (from Peer) for an SPI with no
	// inbound SA and none being negotiated; it was dropped. The engine
	// may tell the peer with N(INVALID_SPI) (RFC 7296 §2.4, §3.10.1).
	// Rate-limited: at most once a second per SPI and a few a second in
	// all (Userspace).
	UnknownSPI
)

func (k EventKind) String() string {
	switch k {
	case SeqExhausted:
		return "seq-exhausted"
	case Acquire:
		return "acquire"
	case SeqSoftLimit:
		return "seq-soft-limit"
	case UnknownSPI:
		return "unknown-spi"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// KeyInfo is what a Wireshark esp_sa key log line needs, handed to
// Options.KeyLog when an SA is installed. keylog.ESPSA is built from it.
type KeyInfo struct {
	Src, Dst netip.Addr // outer addresses as the packet travels
	esp.Keys
}

// Errors.
var (
	ErrNoSA       = errors.New("dataplane: no such SA")
	ErrExists     = errors.New("dataplane: SA or policy already installed")
	ErrNoPolicy   = errors.New("dataplane: no such policy")
	ErrClosed     = errors.New("dataplane: closed")
	ErrNoSPI      = errors.New("dataplane: no free SPI")
	ErrInsecure   = errors.New("dataplane: encryption without integrity is refused")
	ErrBadSA      = errors.New("dataplane: invalid SA")
	ErrNoBackend  = errors.New("dataplane: backend not available")
	ErrNoDevice   = errors.New("dataplane: no device for this SA")
	ErrNotSupport = errors.New("dataplane: not supported by this backend")
)
