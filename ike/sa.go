package ike

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// saState is where an IKE SA is in its life.
type saState uint8

const (
	stateCreated     saState = iota // nothing exchanged yet
	stateInitDone                   // IKE_SA_INIT done, keys derived
	stateEstablished                // authenticated (RFC 7296 §1.2)
	stateDeleting                   // a delete is in flight or answered
	stateDead                       // destroyed; the endpoint drops it
)

func (s saState) String() string {
	return [...]string{"created", "init-done", "established", "deleting", "dead"}[s]
}

// SA is one IKE SA and its Child SAs. It is owned by its Endpoint and
// touched only through it (one goroutine at a time). Fields are the facts
// tasks share; tasks never read each other's payloads.
type SA struct {
	ep        *Endpoint
	conn      *Connection // nil for a responder until IKE_AUTH selects one
	initiator bool        // we are the original initiator (RFC 7296 §2.2)
	state     saState

	spiI, spiR    uint64
	local, remote netip.AddrPort

	// Negotiated in IKE_SA_INIT.
	suite    suite.Suite
	prot     *suite.SKProtector
	skd      []byte
	skpi     []byte // freed after IKE_AUTH
	skpr     []byte // freed after IKE_AUTH
	ni, nr   []byte // freed after the first Child SA is keyed
	initReq  []byte // IKE_SA_INIT request octets, freed after IKE_AUTH (RFC 7296 §2.15)
	initResp []byte // IKE_SA_INIT response octets, likewise
	keID     wire.KEID
	proposal []wire.Transform // the negotiated IKE proposal, for connection selection; freed after IKE_AUTH

	// Facts from IKE_SA_INIT that later tasks use.
	natLocal, natRemote bool // we / the peer are behind a NAT (RFC 7296 §2.23)
	forcedEncap         bool
	peerFrag            bool   // peer sent IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383)
	peerSigHashes       uint16 // bit h set: the peer accepts hash h in RFC 7427 signatures
	peerID              Identity
	auth                AuthInfo // how each side authenticated (task_auth.go)
	peerRefused         bool     // the initiator refused our AUTH (RFC 7296 §2.21.2)

	tm       taskManager
	children []*ChildSA

	// IKE SA rekeying (task_ike_rekey.go, RFC 7296 §2.18).
	rekeyFrom      *SA           // the old SA whose SK_d keys this one; nil once keyed
	rekeyingIKE    bool          // our rekey of this SA is in flight
	replaced       *SA           // the new SA that took over the children
	peerIKE        *peerIKERekey // the peer's rekey that crossed ours (§2.8.1)
	spawned        []*SA         // new SAs for the endpoint to adopt
	collisionLoser bool          // a redundant SA of a rekey collision
	ikeTimers      ikeTimers     // lifetime.go
	lastRecv       time.Time     // last authenticated message from the peer (task_dpd.go)
	restart        bool          // initiate the connection again once destroyed (DPD restart)
	reauth         bool          // start a fresh IKE SA replacing this one (lifetime.go)
	reauthOf       *SA           // the SA this one replaces once established
	kick           bool          // work was handed over: start it (ep.run)
	handedTo       *SA           // where a dying replaced SA handed its work
	pendingOld     *SA           // a peer's rekey SA awaiting our collision decision: the old SA

	// out collects events and data-plane operations while the endpoint
	// runs one input through this SA; nil otherwise.
	out *Output
	now time.Time // of the input being run

	// Endpoint bookkeeping.
	halfOpen   bool           // counted in the endpoint's half-open limits
	halfOpenIP netip.AddrPort // source of the IKE_SA_INIT, key of Endpoint.inits
	deadline   time.Time      // next timer; zero if none
	heapIdx    int
	created    time.Time
}

// ChildSA is an installed ESP SA pair. Keys are not kept: they went to the
// data plane in the install operation.
type ChildSA struct {
	Name              string
	InSPI, OutSPI     uint32
	Mode              Mode
	ESN               bool
	Encr              wire.EncrID
	EncrKeyBits       int
	Integ             wire.IntegID
	LocalTS, RemoteTS []TrafficSelector

	cfg      *ChildConfig
	deleting bool        // our delete of this pair is in flight (RFC 7296 §1.4.1)
	rekeying bool        // our rekey of this pair is in flight (§1.3.3)
	rekeyed  bool        // replaced: a delete by one side is under way (§2.8)
	peerNew  *peerRekey  // the peer rekeyed this pair while our rekey was in flight (§2.8.1)
	timers   childTimers // lifetimes (lifetime.go)
	// volumeRekey: a rekey was started for the byte/packet limit (usage.go)
	volumeRekey bool
	// outDeferred: installed as the responder of a rekey with DeferOut;
	// replaces is the inbound SPI of the pair whose removal activates it
	// (0 once a collision made this pair the redundant one).
	outDeferred bool
	replaces    uint32
}

// peerRekey is what a responder remembers of a rekey of a pair it was
// rekeying itself, for the lowest-nonce rule (RFC 7296 §2.8.1).
type peerRekey struct {
	child  *ChildSA
	ni, nr []byte // that exchange's nonces (peer's, ours)
}

// SPIs returns the IKE SA's initiator and responder SPIs.
func (sa *SA) SPIs() (spiI, spiR uint64) { return sa.spiI, sa.spiR }

// Initiator reports whether this side is the IKE SA's original initiator.
func (sa *SA) Initiator() bool { return sa.initiator }

// LocalSPI is the SPI this side chose: the key of the Endpoint's table.
func (sa *SA) LocalSPI() uint64 { return sa.ourSPI() }

// Algorithms returns the negotiated IKE SA transforms; integ is the zero
// Transform for AEAD suites, and all are zero before IKE_SA_INIT completes.
func (sa *SA) Algorithms() (encr, prf, integ wire.Transform, ke wire.KEID) {
	if sa.suite.Encr != nil {
		encr = sa.suite.Encr.Transform()
	}
	if sa.suite.PRF != nil {
		prf = sa.suite.PRF.Transform()
	}
	if sa.suite.Integ != nil {
		integ = sa.suite.Integ.Transform()
	}
	return encr, prf, integ, sa.keID
}

// Established reports whether the IKE SA is authenticated and usable.
func (sa *SA) Established() bool { return sa.state == stateEstablished }

// Deleting reports whether a Delete of this IKE SA is in flight: it was
// established (or set up by a rekey) and is kept only until the peer answers
// or the retransmission schedule runs out (RFC 7296 §1.4.1). An IKE SA
// replaced by a rekey whose Delete answer was lost stays here for the whole
// schedule, since a peer that already dropped it answers nothing.
func (sa *SA) Deleting() bool { return sa.state == stateDeleting }

// Children returns the installed Child SAs.
func (sa *SA) Children() []ChildSA {
	out := make([]ChildSA, len(sa.children))
	for i, c := range sa.children {
		out[i] = *c
	}
	return out
}

// PeerID is the authenticated identity of the peer.
func (sa *SA) PeerID() Identity { return sa.peerID }

// Conn is the connection the SA belongs to (nil before a responder has
// picked one).
func (sa *SA) Conn() *Connection { return sa.conn }

// Addrs returns the current local and remote IKE endpoints.
func (sa *SA) Addrs() (local, remote netip.AddrPort) { return sa.local, sa.remote }

// NATDetected reports whether NAT was detected (or faked) on the path.
func (sa *SA) NATDetected() bool { return sa.natLocal || sa.natRemote || sa.forcedEncap }

// PeerSignatureHash reports whether the peer announced hash h in
// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4), for signature authenticators.
func (sa *SA) PeerSignatureHash(h wire.HashAlgorithm) bool {
	return h < 16 && sa.peerSigHashes&(1<<h) != 0
}

// BehindNAT reports whether this side is behind a NAT and so must send
// NAT-T keepalives (RFC 3948 §4).
func (sa *SA) BehindNAT() bool { return sa.natLocal }

// ourSPI is the SPI this side chose.
func (sa *SA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

func (sa *SA) log() *slog.Logger { return sa.ep.log }

// info logs at Info level with the SA's attributes, building them only
// when the level is enabled (the handshake path stays allocation-lean).
func (sa *SA) info(msg string, args ...any) {
	if l := sa.log(); l.Enabled(context.Background(), slog.LevelInfo) {
		l.Info(msg, append(sa.logAttrs(), args...)...)
	}
}

func (sa *SA) logAttrs() []any {
	name := ""
	if sa.conn != nil {
		name = sa.conn.Name
	}
	return []any{"conn", name, "spi_i", hex64(sa.spiI), "spi_r", hex64(sa.spiR), "remote", sa.remote}
}

func hex64(v uint64) string {
	const h = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = h[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

func (sa *SA) event(out *Output, k EventKind, reason string) {
	name := ""
	if sa.conn != nil {
		name = sa.conn.Name
	}
	out.Events = append(out.Events, Event{
		Kind: k, Conn: name, SPIi: sa.spiI, SPIr: sa.spiR, Local: sa.local, Remote: sa.remote,
		PeerID: sa.peerID, Initiator: sa.initiator, Reason: reason,
	})
}

// udpEncap says whether ESP goes in UDP (RFC 3948): a NAT was detected or
// faked.
func (sa *SA) udpEncap() bool { return sa.NATDetected() }

// destroy tears the SA down locally: Child SAs are removed from the data
// plane, secrets zeroed, events emitted. The endpoint drops it afterwards.
func (sa *SA) destroy(out *Output, reason string) {
	if sa.state == stateDead {
		return
	}
	for _, c := range sa.children {
		out.Ops = append(out.Ops, ChildOp{
			Kind: OpDelete, Name: c.Name, SPIi: sa.spiI, SPIr: sa.spiR, InSPI: c.InSPI, OutSPI: c.OutSPI,
			Local: sa.local, Remote: sa.remote,
		})
		ev := Event{Kind: EventChildDown, Child: c.Name, InSPI: c.InSPI, OutSPI: c.OutSPI, Reason: reason}
		sa.fillEvent(&ev)
		out.Events = append(out.Events, ev)
	}
	sa.children = nil
	sa.handOver()
	switch {
	case sa.replaced != nil && (reason == "deleted" || reason == "deleted-by-peer"):
		reason = "rekeyed"
	case sa.collisionLoser && (reason == "deleted" || reason == "deleted-by-peer"):
		reason = "rekey-collision"
	}
	if sa.state >= stateEstablished || sa.initiator {
		sa.event(out, EventIKEDown, reason)
	}
	sa.state = stateDead
	sa.zero()
	sa.abandonTasks()
	sa.tm.clear()
	sa.rekeyFrom, sa.replaced, sa.peerIKE = nil, nil, nil
}

func (sa *SA) fillEvent(ev *Event) {
	if sa.conn != nil {
		ev.Conn = sa.conn.Name
	}
	ev.SPIi, ev.SPIr, ev.Local, ev.Remote = sa.spiI, sa.spiR, sa.local, sa.remote
	ev.PeerID, ev.Initiator = sa.peerID, sa.initiator
}

// zero destroys every secret the SA holds.
func (sa *SA) zero() {
	if sa.prot != nil {
		sa.prot.Zero()
		sa.prot = nil
	}
	for _, b := range [][]byte{sa.skd, sa.skpi, sa.skpr, sa.ni, sa.nr} {
		clear(b)
	}
	sa.skd, sa.skpi, sa.skpr, sa.ni, sa.nr = nil, nil, nil, nil, nil
	sa.initReq, sa.initResp = nil, nil
	sa.proposal = nil
}

// authDone frees what only IKE_AUTH needed.
func (sa *SA) authDone() {
	clear(sa.skpi)
	clear(sa.skpr)
	sa.skpi, sa.skpr = nil, nil
	clear(sa.ni)
	clear(sa.nr)
	sa.ni, sa.nr = nil, nil
	sa.initReq, sa.initResp = nil, nil
	sa.proposal = nil
}
