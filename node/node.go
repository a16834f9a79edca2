package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/petrel-vpn/petrel/cert"
	"github.com/petrel-vpn/petrel/cert/httpfetch"
	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/dataplane"
	"github.com/petrel-vpn/petrel/ike"
)

// Options configure a Node.
type Options struct {
	// Config is the loaded configuration (daemon settings and connections).
	Config *config.Config
	// Logger receives the node's logs; nil discards them. IKE logs go to
	// Logger.With("subsystem", "ike"), data-plane logs to "dataplane".
	Logger *slog.Logger
	// KeyLog, if set, receives IKE and ESP keys for Wireshark (opt-in:
	// they are session secrets).
	KeyLog ike.KeyLogger
	// NoAutoStart skips initiating children with start_action: start.
	NoAutoStart bool
	// NoRawESP skips opening raw ESP sockets (IP protocol 50) even where
	// the process may (tests, the demo): ESP then travels only in UDP.
	NoRawESP bool
	// Fetcher fetches CRLs, OCSP responses and hash-and-URL certificates
	// for auth: pubkey; nil means cert/httpfetch with its default timeout.
	Fetcher cert.Fetcher
}

// Node is one running petrel instance. Its methods are safe for concurrent
// use; the IKE state is owned by one goroutine (the loop) and every call
// that touches it runs there.
type Node struct {
	log    *slog.Logger
	ikeLog *slog.Logger
	dpLog  *slog.Logger
	keyLog ike.KeyLogger
	fetch  *certFetcher // for configurations that name none

	ikeSocks []*net.UDPConn
	bind     *dataplane.UDPBind
	dp       dataplane.DataPlane
	us       *dataplane.Userspace // dp when userspace, else nil
	xfrm     xfrmIfaces           // dp when XFRM, else nil
	kind     dataplane.Kind       // the backend that runs (backend.go)
	drainWG  sync.WaitGroup       // bind readers under XFRM
	ikePort  uint16
	nattPort uint16
	listen   []netip.Addr

	in   chan input
	quit chan struct{}
	wg   sync.WaitGroup // the loop and the IKE socket readers

	// Owned by the loop goroutine.
	cfg       *config.Config
	gens      []*gen
	out       ike.Output
	sas       map[spiPair]*saInfo
	children  map[uint32]*installed   // by inbound SPI
	parked    map[uint32]*installed   // children with a deferred outbound SA, by inbound SPI
	pairsOf   map[uint32][]*installed // children by ReqID (a rekey's overlap: two or three)
	lingering []lingering             // inbound SAs of deleted pairs, oldest first (ops.go)
	nextReqID uint32
	reqIDs    map[string]uint32 // "conn/child|selectors" -> ReqID (policy.go reqIDFor)
	reqConn   map[uint32]string // ReqID -> connection
	reqKey    map[uint32]string // ReqID -> its key in reqIDs
	reqUse    map[uint32]int    // ReqID -> installed pairs and policies using it
	policies  map[polKey]*policyRef
	traps     map[string][]polKey  // "conn/child" -> trap policies held
	routes    map[string]*routeDev // "conn/child" -> route-based device
	nextIfID  uint32
	nextIndex int
	closing   bool
	dpdTraps  map[connChild][]polKey // trap policies held after DPD (trap_dpd.go)
	// retiredEP holds the counters of generations pruned after a reload,
	// so that Stats never goes backwards.
	retiredEP ike.Stats

	hub   hub
	stats stats

	closeOnce sync.Once
	closeErr  error
}

// input is a datagram for the loop or a call to run on it.
type input struct {
	d    ike.Datagram
	call func(now time.Time)
}

// gen is one configuration generation: an Endpoint and the connections it
// was built with (see the package comment).
type gen struct {
	ep    *ike.Endpoint
	conns map[string]*ike.Connection
	cfg   map[string]*config.Connection
}

type spiPair struct{ i, r uint64 }

// saInfo is what the node knows about an IKE SA beyond the core.
type saInfo struct {
	index int
	upAt  time.Time
}

// installed is a Child SA pair applied to the data plane.
type installed struct {
	pair          spiPair
	name          string
	reqID         uint32
	inSPI, outSPI uint32
	ifID          uint32 // route-based: the device's if_id; 0: policies
	policies      []polKey
	at            time.Time
	// pendingOut is the outbound SA of a pair installed with DeferOut
	// (the responder of a Child rekey), with its own copy of the keys,
	// until activate installs it (ops.go).
	pendingOut *dataplane.SA
	// outGone: our Delete of the pair is on its way; its outbound SA is
	// removed already (ike.OpDeactivate), the inbound one stays.
	outGone bool
}

// errClosed is returned by calls on a closed node.
var errClosed = errors.New("node: closed")

// New binds the sockets, starts the data plane and the loop, and initiates
// the children whose start_action is start.
func New(opts Options) (*Node, error) {
	if opts.Config == nil {
		return nil, errors.New("node: no configuration")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := opts.Config.Daemon
	n := &Node{
		log: log.With("subsystem", "net"), ikeLog: log.With("subsystem", "ike"), dpLog: log.With("subsystem", "dataplane"),
		keyLog:  opts.KeyLog,
		ikePort: d.IKEPort, nattPort: d.NATTPort, listen: d.Listen,
		in: make(chan input, 1024), quit: make(chan struct{}),
		sas: map[spiPair]*saInfo{}, reqIDs: map[string]uint32{}, reqConn: map[uint32]string{},
		reqKey: map[uint32]string{}, reqUse: map[uint32]int{},
		policies: map[polKey]*policyRef{}, traps: map[string][]polKey{}, routes: map[string]*routeDev{}, children: map[uint32]*installed{},
		parked: map[uint32]*installed{}, pairsOf: map[uint32][]*installed{},
		hub: hub{subs: map[*subscriber]struct{}{}},
	}
	n.stats.failures = map[string]uint64{}
	var next cert.Fetcher = &httpfetch.Fetcher{}
	if opts.Fetcher != nil {
		next = opts.Fetcher
	}
	n.fetch = newCertFetcher(next, certRefresh)
	if len(n.listen) == 0 {
		n.listen = config.DefaultListen
	}
	for _, a := range n.listen {
		network := "udp4" // one socket per family: [::] must not take IPv4 too
		if a.Is6() && !a.Is4In6() {
			network = "udp6"
		}
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, n.ikePort)))
		if err != nil {
			n.closeSockets()
			return nil, fmt.Errorf("node: IKE socket on %v: %w", netip.AddrPortFrom(a, n.ikePort), err)
		}
		n.ikeSocks = append(n.ikeSocks, c)
	}
	bind, err := dataplane.NewUDPBindOn(n.listen, n.nattPort, n.onNATTIKE)
	if err != nil {
		n.closeSockets()
		return nil, fmt.Errorf("node: NAT-T socket: %w", err)
	}
	n.bind = bind
	kind, err := n.chooseBackend(d.Dataplane)
	if err == nil {
		err = n.openDataPlane(kind, opts.NoRawESP)
	}
	if err != nil {
		n.closeSockets()
		return nil, err
	}
	g, err := n.newGen(opts.Config, time.Now())
	if err != nil {
		n.closeDataPlane()
		n.closeSockets()
		return nil, err
	}
	n.cfg, n.gens = opts.Config, []*gen{g}
	for _, c := range n.ikeSocks {
		n.wg.Add(1)
		go n.readIKE(c)
	}
	n.wg.Add(1)
	go n.loop()
	n.do(func(time.Time) { n.applyTraps() })
	if !opts.NoAutoStart {
		n.do(func(now time.Time) {
			for _, c := range opts.Config.Connections {
				if startsAtBoot(c) {
					n.initiateLocked(now, c.Name)
				}
			}
		})
	}
	return n, nil
}

func startsAtBoot(c *config.Connection) bool {
	for _, ch := range c.Children {
		if ch.StartAction == "start" {
			return true
		}
	}
	return false
}

// newGen builds an Endpoint for cfg. The peer's NAT-T port is not in the
// configuration: a connection whose local port is our NAT-T port runs IKE
// on NAT-T ports from the start (RFC 7296 §2.23), so its remote port is the
// peer's NAT-T port too; otherwise the peer's is 4500.
func (n *Node) newGen(cfg *config.Config, now time.Time) (*gen, error) {
	if cfg.Fetcher == nil {
		cfg.Fetcher = n.fetch
	}
	if cfg.CertLog == nil {
		cfg.CertLog = n.ikeLog
	}
	ec, err := cfg.EndpointConfig()
	if err != nil {
		return nil, err
	}
	g := &gen{conns: map[string]*ike.Connection{}, cfg: map[string]*config.Connection{}}
	for i, c := range ec.Connections {
		if c.Local.Port() == n.nattPort && c.Remote.Port() != 0 {
			c.RemoteNATTPort = c.Remote.Port()
		}
		g.conns[c.Name] = c
		g.cfg[c.Name] = cfg.Connections[i]
	}
	ec.NATTPort = n.nattPort
	ec.SPIs = spiAllocator{n.dpOrNil}
	ec.KeyLog = n.keyLog
	ec.Logger = n.ikeLog
	ep, err := ike.NewEndpoint(ec, now)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	g.ep = ep
	return g, nil
}

func (n *Node) dpOrNil() dataplane.DataPlane { return n.dp }

// spiAllocator hands the core inbound ESP SPIs from the data plane, so they
// are unique there (RFC 4303 §2.1).
type spiAllocator struct{ dp func() dataplane.DataPlane }

func (a spiAllocator) AllocSPI() (uint32, error) { return a.dp().AllocateSPI() }

// NATTPort and IKEPort are the bound ports (useful when configured as 0).
func (n *Node) NATTPort() uint16 { return n.bind.Port() }

// IKEAddrs are the bound IKE socket addresses.
func (n *Node) IKEAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range n.ikeSocks {
		out = append(out, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	return out
}

// DataPlane is the node's userspace data plane (for counters and attaching
// devices); nil when the kernel's XFRM runs ESP (Backend says which).
func (n *Node) DataPlane() *dataplane.Userspace { return n.us }

// AttachNetstack gives the protected side a gVisor netstack owning addrs
// (no root needed): dial and listen through ESP with the returned Net.
func (n *Node) AttachNetstack(addrs []netip.Addr, mtu int) (*netstack.Net, error) {
	if n.us == nil {
		return nil, fmt.Errorf("node: %w: netstack needs the userspace data plane, not %s", dataplane.ErrNotSupport, n.Backend())
	}
	return n.us.AttachNetstack(addrs, mtu, 0)
}

// do runs f on the loop and waits for it; it reports errClosed if the node
// is closed first.
func (n *Node) do(f func(now time.Time)) error {
	done := make(chan struct{})
	select {
	case n.in <- input{call: func(now time.Time) { f(now); close(done) }}:
	case <-n.quit:
		return errClosed
	}
	select {
	case <-done:
		return nil
	case <-n.quit:
		return errClosed
	}
}

func (n *Node) loop() {
	defer n.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	keepalive := time.NewTicker(keepaliveInterval)
	defer keepalive.Stop()
	usage := time.NewTicker(usageInterval)
	defer usage.Stop()
	activate := time.NewTicker(activateInterval)
	defer activate.Stop()
	for {
		if d, ok := n.deadline(); ok {
			timer.Reset(max(time.Until(d), 0))
		} else {
			timer.Stop()
		}
		select {
		case in := <-n.in:
			now := time.Now()
			if in.call != nil {
				in.call(now)
			} else {
				n.handle(now, in.d)
			}
		case now := <-timer.C:
			for _, g := range n.gens {
				g.ep.Tick(now, &n.out)
				n.flush(now)
			}
		case <-keepalive.C:
			n.keepalives()
		case now := <-usage.C:
			n.reportUsage(now)
		case now := <-activate.C:
			n.activateOnTraffic()
			n.expireLingering(now)
		case <-n.quit:
			return
		}
		n.pruneGens()
	}
}

func (n *Node) deadline() (time.Time, bool) {
	var best time.Time
	ok := false
	for _, g := range n.gens {
		if d, has := g.ep.NextDeadline(); has && (!ok || d.Before(best)) {
			best, ok = d, true
		}
	}
	return best, ok
}

// pruneGens drops old generations that no longer hold SAs.
func (n *Node) pruneGens() {
	keep := n.gens[:0]
	for i, g := range n.gens {
		if i == len(n.gens)-1 || g.ep.Len() > 0 {
			keep = append(keep, g)
		} else {
			n.retiredEP.Add(g.ep.Stats())
		}
	}
	clear(n.gens[len(keep):])
	n.gens = keep
}

func (n *Node) current() *gen { return n.gens[len(n.gens)-1] }

// Close deletes every IKE SA with an INFORMATIONAL exchange (waiting up to
// ctx's deadline, at most 5 s, for the peers' answers), then stops the loop,
// removes what is left from the data plane and closes the sockets.
func (n *Node) Close(ctx context.Context) error {
	n.closeOnce.Do(func() { n.closeErr = n.close(ctx) })
	return n.closeErr
}

func (n *Node) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	defer n.fetch.Close()
	_ = n.do(func(now time.Time) {
		// No new SAs from here on: not from Initiate, not from a trap
		// that the peers' last packets would spring.
		n.closing = true
		for _, keys := range n.traps {
			n.releasePolicies(keys)
		}
		clear(n.traps)
		for _, g := range n.gens {
			var spis []uint64
			g.ep.Range(func(sa *ike.SA) bool {
				spis = append(spis, sa.LocalSPI())
				return true
			})
			for _, spi := range spis {
				_ = g.ep.Terminate(now, spi, &n.out)
				n.flush(now)
			}
		}
	})
	for i := 0; i < 500 && n.liveSAs() > 0 && ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(n.quit)
	for _, c := range n.ikeSocks {
		c.Close()
	}
	n.wg.Wait()
	now := time.Now()
	for _, g := range n.gens {
		g.ep.Close(&n.out)
		n.flush(now)
	}
	for _, l := range n.lingering {
		n.deleteInbound(l.spi)
	}
	n.lingering = nil
	n.hub.closeAll()
	return n.closeDataPlane()
}

func (n *Node) liveSAs() int {
	total := 0
	if n.do(func(time.Time) {
		for _, g := range n.gens {
			total += g.ep.Len()
		}
	}) != nil {
		return 0
	}
	return total
}

func (n *Node) closeSockets() {
	for _, c := range n.ikeSocks {
		c.Close()
	}
	if n.bind != nil {
		n.bind.Close()
	}
}
