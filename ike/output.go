package ike

import (
	"net/netip"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/wire"
)

// Datagram is one UDP datagram carrying an IKE message, without the
// non-ESP marker: the transport adds the marker on the NAT-T port and
// strips it on receipt (RFC 3948 §2.2).
type Datagram struct {
	Src, Dst netip.AddrPort
	Data     []byte
}

// ChildOpKind is what a data-plane operation does.
type ChildOpKind uint8

const (
	// OpInstall installs an inbound/outbound SA pair and its policies.
	OpInstall ChildOpKind = iota + 1
	// OpDelete removes the pair (by InSPI/OutSPI).
	OpDelete
	// OpActivate installs the outbound SA of a pair installed with
	// DeferOut (by InSPI/OutSPI); the daemon keeps its keys until then.
	OpActivate
	// OpDeactivate removes only the outbound SA of a pair we are deleting
	// (our INFORMATIONAL Delete is on its way): the peer may drop its
	// inbound SA as soon as the request arrives, so we stop sending on the
	// pair now and keep receiving on it until the OpDelete that follows
	// the answer (RFC 7296 §1.4.1).
	OpDeactivate
	// OpUpdate moves both SAs of an installed pair (by InSPI/OutSPI) to
	// new outer addresses, keeping keys, sequence numbers and counters:
	// Local, Remote and UDPEncap are the IKE SA's now. The core sends it
	// once per pair each time its IKE SA follows a peer behind a NAT to a
	// new address or port (RFC 7296 §2.23; ESP in UDP uses the ports of
	// IKE, RFC 3948 §2.1). A pair whose outbound SA is not installed yet
	// (DeferOut) gets it at the new addresses when activated.
	OpUpdate
)

func (k ChildOpKind) String() string {
	switch k {
	case OpInstall:
		return "install"
	case OpDelete:
		return "delete"
	case OpActivate:
		return "activate"
	case OpDeactivate:
		return "deactivate"
	case OpUpdate:
		return "update"
	}
	return "op?"
}

// ChildOp is a data-plane operation for the daemon to apply (the core does
// not import the data plane). Keys belong to the receiver, which must zero
// them once installed; the core keeps no copy.
type ChildOp struct {
	Kind       ChildOpKind
	Name       string // Child config name
	SPIi, SPIr uint64 // the IKE SA it belongs to
	// InSPI is ours (peer → us), OutSPI the peer's (us → peer).
	InSPI, OutSPI uint32
	Mode          Mode
	ESN           bool
	Encr          wire.EncrID
	EncrKeyBits   int
	Integ         wire.IntegID // IntegNONE for AEAD
	// EncrIn/IntegIn decrypt inbound traffic, EncrOut/IntegOut protect
	// outbound traffic (RFC 7296 §2.17 order already resolved for this side).
	EncrIn, IntegIn, EncrOut, IntegOut []byte
	LocalTS, RemoteTS                  []TrafficSelector
	// Local and Remote are the outer addresses; UDPEncap means ESP in UDP
	// between these ports (RFC 3948).
	Local, Remote netip.AddrPort
	UDPEncap      bool
	// DeferOut (OpInstall): install only the inbound SA now and keep the
	// outbound one until the core sends OpActivate for the pair, or until
	// the inbound SA has received a packet, whichever comes first. Set for
	// the responder of a Child SA rekey (RFC 7296 §2.8): the rekey's
	// initiator installs the new pair only when our response reaches it, so
	// sending on it earlier would lose packets. The old pair stays the
	// outbound one until the initiator deletes it (when the core sends
	// OpActivate) or starts sending on the new pair.
	DeferOut bool
}

// EventKind names what happened.
type EventKind uint8

const (
	EventIKEUp EventKind = iota + 1
	EventIKEDown
	EventChildUp
	EventChildDown
	// EventChildFailed: the Child SA was refused (the IKE SA stays up,
	// RFC 7296 §1.2).
	EventChildFailed
	// EventChildRekeyed: a new pair (InSPI/OutSPI) replaces the old one
	// (OldInSPI/OldOutSPI), whose child-down follows (RFC 7296 §2.8).
	EventChildRekeyed
	// EventIKERekeyed: a new IKE SA (SPIi/SPIr) replaces the old one
	// (OldSPIi/OldSPIr), its Child SAs moved to it (RFC 7296 §2.18).
	EventIKERekeyed
	// EventPeerDead: liveness checks went unanswered (RFC 7296 §2.4);
	// an ike-down with Reason "dead-peer" follows.
	EventPeerDead
)

func (k EventKind) String() string {
	switch k {
	case EventIKEUp:
		return "ike-up"
	case EventIKEDown:
		return "ike-down"
	case EventChildUp:
		return "child-up"
	case EventChildDown:
		return "child-down"
	case EventChildFailed:
		return "child-failed"
	case EventChildRekeyed:
		return "child-rekeyed"
	case EventIKERekeyed:
		return "ike-rekeyed"
	case EventPeerDead:
		return "peer-dead"
	}
	return "event?"
}

// Event tells the rest of the daemon about an IKE or Child SA. Reason is a
// short machine-readable cause for down/failed events ("timeout",
// "deleted-by-peer", "AUTHENTICATION_FAILED", "TS_UNACCEPTABLE", ...).
type Event struct {
	Kind          EventKind
	Conn          string
	Child         string
	SPIi, SPIr    uint64
	InSPI, OutSPI uint32
	Local, Remote netip.AddrPort
	PeerID        Identity
	Initiator     bool
	Reason        string
	// For rekeyed events: the SPIs of what was replaced.
	OldInSPI, OldOutSPI uint32
	OldSPIi, OldSPIr    uint64
}

// Output collects what one input produced. Reuse it across calls with Reset
// to avoid allocations.
type Output struct {
	Datagrams []Datagram
	Ops       []ChildOp
	Events    []Event
}

// Reset empties the output, keeping capacity.
func (o *Output) Reset() {
	clear(o.Datagrams)
	o.Datagrams = o.Datagrams[:0]
	clear(o.Ops)
	o.Ops = o.Ops[:0]
	clear(o.Events)
	o.Events = o.Events[:0]
}

// KeyLogger receives IKE and Child SA keys as they are derived, for
// Wireshark key logs (keylog.Writer implements it). Opt-in; never set it in
// production without meaning to.
type KeyLogger interface {
	LogIKE(keylog.IKESA) error
	LogESP(keylog.ESPSA) error
}

// SPIAllocator hands out inbound ESP SPIs; the daemon wires it to its data
// plane so that SPIs are unique there. The default draws random SPIs.
type SPIAllocator interface {
	AllocSPI() (uint32, error)
}
