package dataplane

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// Options configure a userspace data plane.
type Options struct {
	// Logger receives drop reasons at debug level and errors; nil = discard.
	Logger *slog.Logger
	// OnEvent, if set, is called (never with a lock held) for Acquire,
	// UnknownSPI, SeqSoftLimit and SeqExhausted events. It must not block.
	OnEvent func(Event)
	// KeyLog, if set, is called once per installed SA with what a
	// Wireshark esp_sa line needs. Off by default: keys are secrets.
	KeyLog func(KeyInfo)
	// Workers is the number of crypto goroutines; 0 means GOMAXPROCS.
	Workers int
	// PoolBatches bounds the buffers in flight per direction, in batches
	// of up to 128 packets; 0 means 2*Workers+4.
	PoolBatches int
}

// Userspace is the userspace ESP data plane: it reads IP packets from
// attached tun.Devices (a Linux TUN or a gVisor netstack), protects them
// with ESP and sends them through a Bind, and the reverse. Crypto runs on
// Workers goroutines; packet order per device and per Bind receive loop is
// kept.
type Userspace struct {
	opts Options
	log  *slog.Logger
	bind Bind

	mu       sync.RWMutex
	in       map[uint32]*inSA  // by SPI
	out      map[uint32]*outSA // by SPI
	byReqID  map[uint32]*outSA // newest outbound SA per ReqID
	outOrder uint64            // outbound SAs installed so far
	byIfID   map[uint32]*outSA // newest outbound SA per route-based interface
	spis     map[uint32]bool   // allocated inbound SPIs without an SA yet
	policies []Policy          // most specific first
	devices  map[uint32]*device
	acquired map[uint32]time.Time
	unknown  unknownSPIs // ESP for SPIs without an SA: drops, reports (invalidspi_limit.go)
	closed   bool

	work    workers
	inPool  pool
	outPool pool
	wg      sync.WaitGroup // receive loops and device loops
}

type inSA struct {
	*esp.Inbound
	sa       SA            // keys cleared
	inflight *atomic.Int64 // packets classified but not yet opened
}

type outSA struct {
	*esp.Outbound
	sa        SA // keys cleared; replaced as a whole by UpdateSA
	exhausted *atomic.Bool
	inflight  *atomic.Int64 // packets classified but not yet sealed
	order     uint64        // install order: the fallback takes the newest
}

// NewUserspace starts a userspace data plane on bind. Attach devices with
// AttachDevice.
func NewUserspace(bind Bind, opts Options) *Userspace {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.PoolBatches <= 0 {
		opts.PoolBatches = 2*opts.Workers + 4
	}
	u := &Userspace{
		opts: opts, log: opts.Logger, bind: bind,
		in: map[uint32]*inSA{}, out: map[uint32]*outSA{},
		byReqID: map[uint32]*outSA{}, byIfID: map[uint32]*outSA{},
		spis: map[uint32]bool{}, devices: map[uint32]*device{}, acquired: map[uint32]time.Time{},
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	u.inPool.init(opts.PoolBatches)
	u.outPool.init(opts.PoolBatches)
	u.work.start(opts.Workers)
	for _, fn := range bind.ReceiveFuncs() {
		u.wg.Add(1)
		go u.receiveLoop(fn)
	}
	return u
}

// Name implements DataPlane.
func (u *Userspace) Name() string { return "userspace" }

// AllocateSPI implements DataPlane.
func (u *Userspace) AllocateSPI() (uint32, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var b [4]byte
	for range 64 {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("dataplane: SPI: %w", err)
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi < 256 || u.spis[spi] || u.in[spi] != nil { // RFC 4303 §2.1
			continue
		}
		u.spis[spi] = true
		return spi, nil
	}
	return 0, ErrNoSPI
}

// ReleaseSPI implements DataPlane.
func (u *Userspace) ReleaseSPI(spi uint32) {
	u.mu.Lock()
	delete(u.spis, spi)
	u.mu.Unlock()
}

func checkSA(sa *SA) error {
	if sa.Encr == wire.EncrAES_CBC && sa.Integ == wire.IntegNONE {
		return ErrInsecure // RFC 8221 §5: ENCR_AES_CBC needs an INTEG transform
	}
	if !sa.Remote.Addr().IsValid() || !sa.Local.Addr().IsValid() {
		return fmt.Errorf("%w: outer addresses missing", ErrBadSA)
	}
	if sa.Encap && (sa.Remote.Port() == 0 || sa.Local.Port() == 0) {
		return fmt.Errorf("%w: UDP encapsulation needs ports", ErrBadSA)
	}
	return nil
}

// AddSA implements DataPlane.
func (u *Userspace) AddSA(sa SA) error {
	if err := checkSA(&sa); err != nil {
		return err
	}
	cfg := sa.espConfig()
	public := sa
	public.EncrKey, public.IntegKey = nil, nil
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return ErrClosed
	}
	var keys esp.Keys
	switch sa.Dir {
	case In:
		if u.in[sa.SPI] != nil {
			u.mu.Unlock()
			return fmt.Errorf("%w: inbound SPI %#x", ErrExists, sa.SPI)
		}
		e, err := esp.NewInbound(cfg)
		if err != nil {
			u.mu.Unlock()
			return err
		}
		delete(u.spis, sa.SPI)
		u.in[sa.SPI] = &inSA{e, public, new(atomic.Int64)}
		if u.opts.KeyLog != nil {
			keys = e.Keys()
		}
	case Out:
		if u.out[sa.SPI] != nil {
			u.mu.Unlock()
			return fmt.Errorf("%w: outbound SPI %#x", ErrExists, sa.SPI)
		}
		e, err := esp.NewOutbound(cfg)
		if err != nil {
			u.mu.Unlock()
			return err
		}
		u.outOrder++
		o := &outSA{e, public, new(atomic.Bool), new(atomic.Int64), u.outOrder}
		u.out[sa.SPI] = o
		u.byReqID[sa.ReqID] = o // make-before-break: newest wins
		if sa.IfID != 0 {
			u.byIfID[sa.IfID] = o
		}
		delete(u.acquired, sa.ReqID)
		if u.opts.KeyLog != nil {
			keys = e.Keys()
		}
	default:
		u.mu.Unlock()
		return fmt.Errorf("%w: direction %d", ErrBadSA, sa.Dir)
	}
	u.mu.Unlock()
	if u.opts.KeyLog != nil {
		src, dst := sa.Local.Addr(), sa.Remote.Addr()
		if sa.Dir == In {
			src, dst = dst, src
		}
		u.opts.KeyLog(KeyInfo{Src: src, Dst: dst, Keys: keys})
		clear(keys.EncrKey)
		clear(keys.IntegKey)
	}
	return nil
}

// UpdateSA implements DataPlane.
func (u *Userspace) UpdateSA(dir Direction, spi uint32, local, remote netip.AddrPort, encap bool) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch dir {
	case In:
		s := u.in[spi]
		if s == nil {
			return ErrNoSA
		}
		n := *s
		n.sa.Local, n.sa.Remote, n.sa.Encap = local, remote, encap
		u.in[spi] = &n
	case Out:
		s := u.out[spi]
		if s == nil {
			return ErrNoSA
		}
		n := &outSA{s.Outbound, s.sa, s.exhausted, s.inflight, s.order}
		n.sa.Local, n.sa.Remote, n.sa.Encap = local, remote, encap
		u.out[spi] = n
		if u.byReqID[n.sa.ReqID] == s {
			u.byReqID[n.sa.ReqID] = n
		}
		if n.sa.IfID != 0 && u.byIfID[n.sa.IfID] == s {
			u.byIfID[n.sa.IfID] = n
		}
	}
	return nil
}

// DeleteSA implements DataPlane. Keys are zeroed.
func (u *Userspace) DeleteSA(dir Direction, spi uint32) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch dir {
	case In:
		s := u.in[spi]
		if s == nil {
			return ErrNoSA
		}
		delete(u.in, spi)
		go retire(s.inflight, s.Close)
	case Out:
		s := u.out[spi]
		if s == nil {
			return ErrNoSA
		}
		delete(u.out, spi)
		if u.byReqID[s.sa.ReqID] == s {
			delete(u.byReqID, s.sa.ReqID)
			u.fallbackLocked(s.sa.ReqID, 0)
		}
		if s.sa.IfID != 0 && u.byIfID[s.sa.IfID] == s {
			delete(u.byIfID, s.sa.IfID)
			u.fallbackLocked(0, s.sa.IfID)
		}
		// Packets already classified to it are sealed, then its keys go.
		go retire(s.inflight, s.Close)
	}
	return nil
}

// retire zeroes a deleted SA's keys once no packet in the pipeline refers
// to it. The SA is already out of the tables, so the count only falls; the
// wait is bounded (buffers in flight are bounded too).
func retire(inflight *atomic.Int64, zero func()) {
	for i := 0; i < 5000 && inflight.Load() > 0; i++ {
		time.Sleep(time.Millisecond)
	}
	zero()
}

// fallbackLocked points a ReqID or IfID at the most recently installed
// other outbound SA with the same id, if any (the current SA deleted
// before an older one, as when a rekey collision's redundant pair goes).
func (u *Userspace) fallbackLocked(reqID, ifID uint32) {
	var byReq, byIf *outSA
	for _, o := range u.out {
		if reqID != 0 && o.sa.ReqID == reqID && (byReq == nil || o.order > byReq.order) {
			byReq = o
		}
		if ifID != 0 && o.sa.IfID == ifID && (byIf == nil || o.order > byIf.order) {
			byIf = o
		}
	}
	if byReq != nil {
		u.byReqID[reqID] = byReq
	}
	if byIf != nil {
		u.byIfID[ifID] = byIf
	}
}

// ReleaseReqID implements DataPlane. The only thing kept per ReqID beyond
// its SAs and policies is the time of its last Acquire; byReqID goes with
// the ReqID's last outbound SA.
func (u *Userspace) ReleaseReqID(reqID uint32) {
	u.mu.Lock()
	delete(u.acquired, reqID)
	u.mu.Unlock()
}

// AddPolicy implements DataPlane.
func (u *Userspace) AddPolicy(p Policy) error {
	if p.Local.Start.Is4() != p.Remote.Start.Is4() {
		return fmt.Errorf("%w: policy mixes address families", ErrBadSA)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, q := range u.policies {
		if q.Local == p.Local && q.Remote == p.Remote {
			return ErrExists
		}
	}
	ps := append(append([]Policy(nil), u.policies...), p)
	sort.SliceStable(ps, func(i, j int) bool {
		less, eq := ps[i].Remote.narrower(ps[j].Remote)
		if !eq {
			return less
		}
		less, _ = ps[i].Local.narrower(ps[j].Local)
		return less
	})
	u.policies = ps
	return nil
}

// DeletePolicy implements DataPlane.
func (u *Userspace) DeletePolicy(p Policy) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, q := range u.policies {
		if q.Local == p.Local && q.Remote == p.Remote {
			u.policies = append(append([]Policy(nil), u.policies[:i]...), u.policies[i+1:]...)
			return nil
		}
	}
	return ErrNoPolicy
}

// LookupPolicy returns the most specific policy matching the flow.
func (u *Userspace) LookupPolicy(f Flow) (Policy, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	p := u.lookupLocked(&f)
	if p == nil {
		return Policy{}, false
	}
	return *p, true
}

func (u *Userspace) lookupLocked(f *Flow) *Policy {
	for i := range u.policies {
		p := &u.policies[i]
		if p.Remote.Contains(f.Dst, f.Proto, f.DstPort) && p.Local.Contains(f.Src, f.Proto, f.SrcPort) {
			return p
		}
	}
	return nil
}

// Counters implements DataPlane.
func (u *Userspace) Counters(dir Direction, spi uint32) (esp.Counters, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if dir == In {
		if s := u.in[spi]; s != nil {
			return s.Counters(), nil
		}
	} else if s := u.out[spi]; s != nil {
		return s.Counters(), nil
	}
	return esp.Counters{}, ErrNoSA
}

// SAKeys returns an installed SA's keys for a key log (copies; zero them).
func (u *Userspace) SAKeys(dir Direction, spi uint32) (esp.Keys, error) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if dir == In {
		if s := u.in[spi]; s != nil {
			return s.Keys(), nil
		}
	} else if s := u.out[spi]; s != nil {
		return s.Keys(), nil
	}
	return esp.Keys{}, ErrNoSA
}

func (u *Userspace) event(e Event) {
	if u.opts.OnEvent != nil {
		u.opts.OnEvent(e)
	}
}

// AttachDevice starts moving packets between dev and ESP. With ifID 0 the
// device is policy-based: outbound packets pick their SA by policy (most
// specific first). With a non-zero ifID it is route-based (like a VTI):
// every packet read from it is sealed with the newest outbound SA whose
// IfID matches, and inbound SAs with that IfID deliver to it. At most one
// device per ifID. The data plane closes attached devices on Close.
func (u *Userspace) AttachDevice(dev tun.Device, ifID uint32) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return ErrClosed
	}
	if u.devices[ifID] != nil {
		return fmt.Errorf("%w: device for if_id %d", ErrExists, ifID)
	}
	d := newDevice(dev, ifID)
	u.devices[ifID] = d
	u.wg.Add(2)
	go u.readLoop(d)
	go u.sendLoop(d)
	return nil
}

// Close stops the data plane: closes the bind and the attached devices,
// waits for packets in flight and zeroes every SA's keys.
func (u *Userspace) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	devs := u.devices
	u.mu.Unlock()
	u.bind.Close()
	for _, d := range devs {
		d.tun.Close()
	}
	u.wg.Wait()
	u.work.stop()
	u.mu.Lock()
	for _, s := range u.in {
		s.Close()
	}
	for _, s := range u.out {
		s.Close()
	}
	u.mu.Unlock()
	return nil
}
