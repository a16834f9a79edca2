package node

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/petrel-vpn/petrel/config"
	"github.com/petrel-vpn/petrel/ike"
)

// ErrNoSA is returned by Down when a connection has no IKE SA.
var ErrNoSA = errors.New("node: no IKE SA")

// SetupError says why an IKE SA or Child SA could not be established: the
// peer's error notification (AUTHENTICATION_FAILED, NO_PROPOSAL_CHOSEN,
// TS_UNACCEPTABLE...) or "timeout".
type SetupError struct {
	Conn, Child string // Child is empty when the IKE SA failed
	Reason      string
}

func (e *SetupError) Error() string {
	if e.Child != "" {
		return fmt.Sprintf("node: %s: Child SA %s failed: %s", e.Conn, e.Child, e.Reason)
	}
	return fmt.Sprintf("node: %s: IKE SA failed: %s", e.Conn, e.Reason)
}

// initiateLocked starts a connection in the newest generation (on the loop).
func (n *Node) initiateLocked(now time.Time, name string) (uint64, error) {
	if n.closing {
		return 0, errClosed
	}
	spi, err := n.current().ep.Initiate(now, name, &n.out)
	n.flush(now)
	if err != nil {
		n.log.Warn("node: initiate", "conn", name, "err", err)
	}
	return spi, err
}

// Initiate starts an IKE SA and its Child SAs for the named connection and
// returns its initiator SPI without waiting.
func (n *Node) Initiate(name string) (uint64, error) {
	var spi uint64
	var err error
	if e := n.do(func(now time.Time) { spi, err = n.initiateLocked(now, name) }); e != nil {
		return 0, e
	}
	return spi, err
}

// Up initiates the named connection and waits until its first Child SA is
// installed, or the IKE SA or the Child SA failed (the error says why), or
// ctx ends.
func (n *Node) Up(ctx context.Context, name string) (Event, error) {
	events, cancel := n.Subscribe()
	defer cancel()
	spi, err := n.Initiate(name)
	if err != nil {
		return Event{}, err
	}
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return Event{}, errClosed
			}
			if e.spiI != spi {
				continue
			}
			switch e.Kind {
			case "child-up":
				return e, nil
			case "child-failed":
				return e, &SetupError{Conn: name, Child: e.Child, Reason: e.Reason}
			case "ike-down":
				return e, &SetupError{Conn: name, Reason: e.Reason}
			}
		case <-ctx.Done():
			return Event{}, fmt.Errorf("node: %s: no answer from the peer: %w", name, ctx.Err())
		}
	}
}

// Down deletes every IKE SA of the named connection (INFORMATIONAL with a
// Delete payload, RFC 7296 §1.4.1) and waits until they are gone or ctx
// ends. It returns how many IKE SAs it deleted. Traps that dead peer
// detection left for the connection (dpd_action: trap) go too; those of
// start_action: trap stay.
func (n *Node) Down(ctx context.Context, name string) (int, error) {
	events, cancel := n.Subscribe()
	defer cancel()
	pending := map[uint64]bool{}
	var known bool
	var traps int
	err := n.do(func(now time.Time) {
		_, known = n.current().conns[name]
		traps = n.releaseDPDTraps(name, "down")
		for _, spi := range n.terminateLocked(now, func(c *ike.Connection) bool { return c.Name == name }) {
			pending[spi] = true
		}
	})
	if err != nil {
		return 0, err
	}
	total := len(pending)
	if total == 0 {
		if traps > 0 {
			return 0, nil // it was down already, waiting on a DPD trap; now it waits for nothing
		}
		if !known {
			return 0, fmt.Errorf("%w %q", ike.ErrUnknownConnection, name)
		}
		return 0, fmt.Errorf("%w for connection %q", ErrNoSA, name)
	}
	for len(pending) > 0 {
		select {
		case e, ok := <-events:
			if !ok {
				return total, errClosed
			}
			if e.Kind == "ike-down" {
				delete(pending, e.spiI)
			}
		case <-ctx.Done():
			return total, fmt.Errorf("node: %s: %d IKE SA(s) not yet deleted: %w", name, len(pending), ctx.Err())
		}
	}
	return total, nil
}

// DownNow deletes a connection's IKE SAs without waiting for the peer: each
// sends its Delete once and is gone with its Child SAs before DownNow
// returns (ike.Endpoint.TerminateNow). For a peer that no longer answers,
// where Down would wait out the retransmission schedule.
func (n *Node) DownNow(name string) (int, error) {
	var known bool
	var traps, total int
	err := n.do(func(now time.Time) {
		_, known = n.current().conns[name]
		traps = n.releaseDPDTraps(name, "down")
		for _, g := range n.gens {
			var spis []uint64
			g.ep.Range(func(sa *ike.SA) bool {
				if c := sa.Conn(); c != nil && c.Name == name {
					spis = append(spis, sa.LocalSPI())
				}
				return true
			})
			for _, spi := range spis {
				if err := g.ep.TerminateNow(now, spi, &n.out); err != nil {
					n.log.Warn("node: terminate", "spi", hex64(spi), "err", err)
					continue
				}
				total++
				n.flush(now)
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case total > 0 || traps > 0:
		return total, nil
	case !known:
		return 0, fmt.Errorf("%w %q", ike.ErrUnknownConnection, name)
	}
	return 0, fmt.Errorf("%w for connection %q", ErrNoSA, name)
}

// terminateLocked deletes the IKE SAs whose connection matches and returns
// their initiator SPIs.
func (n *Node) terminateLocked(now time.Time, match func(*ike.Connection) bool) []uint64 {
	var out []uint64
	for _, g := range n.gens {
		var spis []uint64
		g.ep.Range(func(sa *ike.SA) bool {
			if c := sa.Conn(); c != nil && match(c) {
				spis = append(spis, sa.LocalSPI())
				i, _ := sa.SPIs()
				out = append(out, i)
			}
			return true
		})
		for _, spi := range spis {
			if err := g.ep.Terminate(now, spi, &n.out); err != nil {
				n.log.Warn("node: terminate", "spi", hex64(spi), "err", err)
			}
			n.flush(now)
		}
	}
	return out
}

// ConnInfo describes a configured connection for listings.
type ConnInfo struct {
	Name     string      `json:"name"`
	Local    string      `json:"local"`
	Remote   string      `json:"remote"`
	LocalID  string      `json:"local_id"`
	RemoteID string      `json:"remote_id"`
	Children []ChildInfo `json:"children"`
	SAs      int         `json:"ike_sas"`
}

// ChildInfo is one configured child.
type ChildInfo struct {
	Name        string   `json:"name"`
	LocalTS     []string `json:"local_ts"`
	RemoteTS    []string `json:"remote_ts"`
	StartAction string   `json:"start_action"`
}

// Connections lists the configured connections in file order with the
// number of IKE SAs each has.
func (n *Node) Connections() ([]ConnInfo, error) {
	var out []ConnInfo
	err := n.do(func(time.Time) {
		count := map[string]int{}
		for _, g := range n.gens {
			g.ep.Range(func(sa *ike.SA) bool {
				if c := sa.Conn(); c != nil {
					count[c.Name]++
				}
				return true
			})
		}
		cur := n.current()
		for _, cc := range n.cfg.Connections {
			c := cur.conns[cc.Name]
			ci := ConnInfo{Name: c.Name, Local: c.Local.String(), Remote: c.Remote.String(), LocalID: c.LocalID.String(),
				RemoteID: c.RemoteID.String(), SAs: count[c.Name]}
			for i, ch := range c.Children {
				ci.Children = append(ci.Children, ChildInfo{Name: ch.Name, LocalTS: tsStrings(ch.LocalTS),
					RemoteTS: tsStrings(ch.RemoteTS), StartAction: cc.Children[i].StartAction})
			}
			out = append(out, ci)
		}
	})
	return out, err
}

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	Unchanged []string `json:"unchanged"`
}

func (r ReloadResult) String() string {
	part := func(k string, v []string) string {
		if len(v) == 0 {
			return k + ": -"
		}
		return k + ": " + strings.Join(v, ",")
	}
	return strings.Join([]string{part("added", r.Added), part("removed", r.Removed), part("changed", r.Changed),
		part("unchanged", r.Unchanged)}, "; ")
}

// Reload applies a new configuration: removed connections' IKE SAs are
// deleted, changed ones deleted and re-established (if they had an SA or
// start on boot), added ones started if their start_action says so, and
// untouched SAs keep running in their generation. Daemon-level settings
// (listen addresses, ports) need a restart and are not changed.
func (n *Node) Reload(cfg *config.Config) (ReloadResult, error) {
	var res ReloadResult
	var rerr error
	err := n.do(func(now time.Time) {
		g, err := n.newGen(cfg, now)
		if err != nil {
			rerr = err
			return
		}
		old := n.current()
		changed := map[string]bool{}
		for name, oc := range old.conns {
			nc, ok := g.conns[name]
			switch {
			case !ok:
				res.Removed = append(res.Removed, name)
				changed[name] = true
			case !sameConn(oc, nc, old.cfg[name], g.cfg[name]):
				res.Changed = append(res.Changed, name)
				changed[name] = true
			default:
				res.Unchanged = append(res.Unchanged, name)
			}
		}
		for name := range g.conns {
			if _, ok := old.conns[name]; !ok {
				res.Added = append(res.Added, name)
			}
		}
		had := map[string]bool{}
		for _, g := range n.gens {
			g.ep.Range(func(sa *ike.SA) bool {
				if c := sa.Conn(); c != nil {
					had[c.Name] = true
				}
				return true
			})
		}
		n.terminateLocked(now, func(c *ike.Connection) bool { return changed[c.Name] })
		for name := range changed {
			n.releaseDPDTraps(name, "reload")
		}
		if d, o := cfg.Daemon, n.cfg.Daemon; d.IKEPort != o.IKEPort || d.NATTPort != o.NATTPort ||
			!slices.Equal(d.Listen, o.Listen) || d.Dataplane != o.Dataplane || d.ControlSocket != o.ControlSocket ||
			d.MetricsListen != o.MetricsListen || d.KeylogDir != o.KeylogDir {
			n.log.Warn("node: reload: daemon settings (listen, ports, data plane, sockets, key log) changed; they apply after a restart")
		}
		n.gens = append(n.gens, g)
		n.cfg = cfg
		n.applyTraps()
		for _, cc := range cfg.Connections {
			name := cc.Name
			restart := slices.Contains(res.Changed, name) && (had[name] || startsAtBoot(cc))
			if restart || slices.Contains(res.Added, name) && startsAtBoot(cc) {
				_, _ = n.initiateLocked(now, name)
			}
		}
		for _, l := range [][]string{res.Added, res.Removed, res.Changed, res.Unchanged} {
			sort.Strings(l)
		}
	})
	if err != nil {
		return res, err
	}
	if rerr == nil {
		n.log.Info("node: reloaded", "result", res.String())
	}
	return res, rerr
}

// sameConn compares two versions of a connection as the core and the node
// use them (secrets included, file positions not).
func sameConn(a, b *ike.Connection, ac, bc *config.Connection) bool {
	if !reflect.DeepEqual(withoutCertAuth(a), withoutCertAuth(b)) {
		return false
	}
	// Certificate authenticators hold caches (x509.CertPool, CRLs) that
	// DeepEqual cannot compare: compare what they were loaded from.
	if !ac.Local.Pubkey.Same(bc.Local.Pubkey) || !ac.Remote.Pubkey.Same(bc.Remote.Pubkey) {
		return false
	}
	if len(ac.Children) != len(bc.Children) {
		return false
	}
	for i := range ac.Children {
		if ac.Children[i].StartAction != bc.Children[i].StartAction || ac.Children[i].Interface != bc.Children[i].Interface {
			return false
		}
	}
	return true
}

// withoutCertAuth is c with certificate authentication left out (sameConn
// compares it through config.Pubkey.Same).
func withoutCertAuth(c *ike.Connection) ike.Connection {
	out := *c
	if _, ok := out.LocalAuth.(*ike.CertAuth); ok {
		out.LocalAuth = nil
	}
	if _, ok := out.RemoteAuth.(*ike.CertVerifier); ok {
		out.RemoteAuth = nil
	}
	return out
}
