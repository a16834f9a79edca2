package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/petrel-vpn/petrel/ike"
	"github.com/petrel-vpn/petrel/wire"
)

// Config configures a Server.
type Config struct {
	// Endpoint is the core configuration shared by every shard (its
	// Rand, if set, must be safe for concurrent use; nil = crypto/rand).
	Endpoint ike.EndpointConfig
	// IKE are the addresses for plain IKE (port 500 in production), NATT
	// those for NAT-T (port 4500). Port 0 picks a free port; see Addrs.
	// Endpoint.NATTPort is set from the first NATT address.
	IKE, NATT []netip.AddrPort
	// Shards is the number of event loops; 0 = 1.
	Shards int
	// Keepalive is the NAT-T keepalive interval (RFC 3948 §4); 0 = 20 s,
	// negative disables.
	Keepalive time.Duration
	// ESP receives ESP-in-UDP datagrams from the NAT-T sockets (called on
	// the socket's reader goroutine; b is reused after it returns).
	ESP func(src, dst netip.AddrPort, b []byte)
	// Output receives each shard's data-plane operations and events, on
	// the shard's goroutine, in order. The slices are reused once it
	// returns; the keys in install operations are the receiver's to keep
	// and zero.
	Output func(ops []ike.ChildOp, events []ike.Event)
	// Wrap, if set, wraps every socket (tests inject loss here).
	Wrap func(PacketConn) PacketConn
}

// Server runs ike Endpoints on UDP sockets.
type Server struct {
	cfg    Config
	socks  []*socket
	shards []*shard
	seed   maphash.Seed
	next   uint32 // round-robin shard for Initiate
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed chan struct{}
	once   sync.Once
}

// New binds the sockets and starts the shards and readers.
func New(cfg Config) (*Server, error) {
	if cfg.Shards <= 0 {
		cfg.Shards = 1
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = 20 * time.Second
	}
	if cfg.Shards&(cfg.Shards-1) != 0 || cfg.Shards > 256 {
		return nil, errors.New("ike/udp: Shards must be a power of two up to 256")
	}
	s := &Server{cfg: cfg, seed: maphash.MakeSeed(), closed: make(chan struct{})}
	bind := func(aps []netip.AddrPort, natt bool) error {
		for _, ap := range aps {
			c, local, err := listen(ap)
			if err != nil {
				return fmt.Errorf("ike/udp: listen %v: %w", ap, err)
			}
			var pc PacketConn = c
			if cfg.Wrap != nil {
				pc = cfg.Wrap(pc)
			}
			s.socks = append(s.socks, &socket{conn: pc, local: local, natt: natt})
		}
		return nil
	}
	if err := bind(cfg.IKE, false); err != nil {
		s.closeSockets()
		return nil, err
	}
	if err := bind(cfg.NATT, true); err != nil {
		s.closeSockets()
		return nil, err
	}
	ecfg := cfg.Endpoint
	for _, so := range s.socks {
		if so.natt {
			ecfg.NATTPort = so.local.Port()
			break
		}
	}
	now := time.Now()
	mask := uint64(cfg.Shards - 1)
	for i := 0; i < cfg.Shards; i++ {
		c := ecfg
		c.SPIMask, c.SPIValue = mask, uint64(i)
		ep, err := ike.NewEndpoint(c, now)
		if err != nil {
			s.closeSockets()
			return nil, err
		}
		s.shards = append(s.shards, newShard(s, ep))
	}
	for _, sh := range s.shards {
		s.wg.Add(1)
		go sh.loop()
	}
	for _, so := range s.socks {
		s.wg.Add(1)
		go s.read(so)
	}
	return s, nil
}

// Addrs returns the bound IKE and NAT-T addresses (useful with port 0).
func (s *Server) Addrs() (ikeAddrs, natt []netip.AddrPort) {
	for _, so := range s.socks {
		if so.natt {
			natt = append(natt, so.local)
		} else {
			ikeAddrs = append(ikeAddrs, so.local)
		}
	}
	return ikeAddrs, natt
}

func (s *Server) closeSockets() {
	for _, so := range s.socks {
		so.conn.Close()
	}
}

// Close stops the shards (destroying their SAs without telling peers) and
// the readers, and waits for every goroutine to end.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.closed)
		s.closeSockets()
	})
	s.wg.Wait()
	return nil
}

// read is one socket's reader goroutine.
func (s *Server) read(so *socket) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := so.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP errors reported on the socket
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		b := buf[:n]
		if so.natt {
			kind, msg := classify(b)
			switch kind {
			case kindESP:
				if s.cfg.ESP != nil {
					s.cfg.ESP(src, so.local, b)
				}
				continue
			case kindIKE:
				b = msg
			default:
				continue
			}
		}
		sh := s.route(b, src)
		if sh == nil {
			continue
		}
		d := ike.Datagram{Src: src, Dst: so.local, Data: append([]byte(nil), b...)}
		select {
		case sh.in <- input{d: d}:
		case <-s.closed:
			return
		default:
			// Shard overloaded: drop, as a full socket buffer would.
		}
	}
}

// route picks the shard owning a datagram: by the SPI this side chose, or
// for an IKE_SA_INIT request by a hash of its source and SPIi.
func (s *Server) route(b []byte, src netip.AddrPort) *shard {
	if len(b) < wire.HeaderLen {
		return nil
	}
	spiI := binary.BigEndian.Uint64(b[0:8])
	spiR := binary.BigEndian.Uint64(b[8:16])
	flags := wire.Flags(b[19])
	mask := uint64(len(s.shards) - 1)
	if spiR == 0 && !flags.Response() && flags.Initiator() {
		var h maphash.Hash
		h.SetSeed(s.seed)
		a := src.Addr().As16()
		h.Write(a[:])
		h.Write(b[0:8])
		return s.shards[h.Sum64()&mask]
	}
	our := spiI
	if flags.Initiator() {
		our = spiR
	}
	return s.shards[our&mask]
}

// send writes a datagram from the socket bound to d.Src (or one with its
// port and family), adding the non-ESP marker on NAT-T sockets.
func (s *Server) send(d ike.Datagram) {
	so := s.socketFor(d.Src)
	if so == nil {
		return
	}
	b := d.Data
	if so.natt {
		b = make([]byte, 0, 4+len(d.Data))
		b = append(append(b, nonESPMarker[:]...), d.Data...)
	}
	_, _ = so.conn.WriteToUDPAddrPort(b, d.Dst)
}

func (s *Server) socketFor(src netip.AddrPort) *socket {
	var fallback *socket
	for _, so := range s.socks {
		if so.local == src {
			return so
		}
		if so.local.Port() == src.Port() && so.local.Addr().Is4() == src.Addr().Is4() && so.local.Addr().IsUnspecified() {
			fallback = so
		}
	}
	return fallback
}

// Initiate starts the named connection on one of the shards and returns
// the IKE SA's SPI.
func (s *Server) Initiate(conn string) (uint64, error) {
	s.mu.Lock()
	sh := s.shards[s.next%uint32(len(s.shards))]
	s.next++
	s.mu.Unlock()
	return sh.call(func(now time.Time, ep *ike.Endpoint, out *ike.Output) (uint64, error) {
		return ep.Initiate(now, conn, out)
	})
}

// Terminate deletes the IKE SA with local SPI spi.
func (s *Server) Terminate(spi uint64) error {
	sh := s.shards[spi&uint64(len(s.shards)-1)]
	_, err := sh.call(func(now time.Time, ep *ike.Endpoint, out *ike.Output) (uint64, error) {
		return 0, ep.Terminate(now, spi, out)
	})
	return err
}

// Stats sums the shards' counters and SA counts.
func (s *Server) Stats() (st ike.Stats, sas, timers int) {
	for _, sh := range s.shards {
		sh.call(func(now time.Time, ep *ike.Endpoint, out *ike.Output) (uint64, error) {
			st.Add(ep.Stats())
			sas += ep.Len()
			if _, ok := ep.NextDeadline(); ok {
				timers++
			}
			return 0, nil
		})
	}
	return st, sas, timers
}

var errClosed = errors.New("ike/udp: closed")
