//go:build linux

package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/petrel-vpn/petrel/esp"
	"github.com/petrel-vpn/petrel/wire"
)

// fakeKernel is an in-memory XFRM for the backend's netlink seam
// (xfrmHandle). Like the kernel it keeps its own copy of every key, finds
// states by (destination, SPI, protocol), answers GETSA with the keys and
// refuses an UPDSA that adds or removes the UDP encapsulation or that
// carries keys of the wrong length (it builds the whole state before
// matching it, as xfrm_state_construct does).
type fakeKernel struct {
	mu     sync.Mutex
	states map[string]*netlink.XfrmState
	pols   map[string]*netlink.XfrmPolicy
	// keyLen is the key length of every algorithm the test uses.
	keyLen map[string]int
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{states: map[string]*netlink.XfrmState{}, pols: map[string]*netlink.XfrmPolicy{},
		keyLen: map[string]int{"rfc4106(gcm(aes))": 20, "cbc(aes)": 16, "hmac(sha256)": 32}}
}

func stateID(s *netlink.XfrmState) string { return fmt.Sprint(s.Dst, s.Spi, s.Proto) }

func deepState(s *netlink.XfrmState) *netlink.XfrmState {
	c := *s
	for _, a := range []**netlink.XfrmStateAlgo{&c.Aead, &c.Crypt, &c.Auth} {
		if *a != nil {
			n := **a
			n.Key = bytes.Clone(n.Key)
			*a = &n
		}
	}
	if s.Encap != nil {
		e := *s.Encap
		c.Encap = &e
	}
	if s.Replay != nil {
		r := *s.Replay
		c.Replay = &r
	}
	return &c
}

func (k *fakeKernel) checkKeys(s *netlink.XfrmState) error {
	for _, a := range []*netlink.XfrmStateAlgo{s.Aead, s.Crypt, s.Auth} {
		if a != nil && len(a.Key) != k.keyLen[a.Name] {
			return unix.EINVAL
		}
	}
	return nil
}

func (k *fakeKernel) XfrmStateAdd(s *netlink.XfrmState) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.checkKeys(s); err != nil {
		return err
	}
	if k.states[stateID(s)] != nil {
		return unix.EEXIST
	}
	k.states[stateID(s)] = deepState(s)
	return nil
}

func (k *fakeKernel) XfrmStateUpdate(s *netlink.XfrmState) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.checkKeys(s); err != nil {
		return err
	}
	cur := k.states[stateID(s)]
	if cur == nil {
		return unix.ESRCH
	}
	if (cur.Encap == nil) != (s.Encap == nil) {
		return unix.EINVAL
	}
	if s.Encap != nil {
		e := *s.Encap
		cur.Encap = &e
	}
	return nil
}

func (k *fakeKernel) XfrmStateDel(s *netlink.XfrmState) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.states[stateID(s)] == nil {
		return unix.ESRCH
	}
	delete(k.states, stateID(s))
	return nil
}

func (k *fakeKernel) XfrmStateGet(s *netlink.XfrmState) (*netlink.XfrmState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	cur := k.states[stateID(s)]
	if cur == nil {
		return nil, unix.ESRCH
	}
	return deepState(cur), nil
}

func polID(p *netlink.XfrmPolicy) string { return fmt.Sprint(p.Dir, p.Src, p.Dst, p.Proto, p.Ifid) }

func (k *fakeKernel) XfrmPolicyAdd(p *netlink.XfrmPolicy) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pols[polID(p)] != nil {
		return unix.EEXIST
	}
	c := *p
	k.pols[polID(p)] = &c
	return nil
}

func (k *fakeKernel) XfrmPolicyUpdate(p *netlink.XfrmPolicy) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := *p
	k.pols[polID(p)] = &c
	return nil
}

func (k *fakeKernel) XfrmPolicyDel(p *netlink.XfrmPolicy) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pols[polID(p)] == nil {
		return unix.ENOENT
	}
	delete(k.pols, polID(p))
	return nil
}

func (k *fakeKernel) XfrmPolicyList(int) ([]netlink.XfrmPolicy, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []netlink.XfrmPolicy
	for _, p := range k.pols {
		out = append(out, *p)
	}
	return out, nil
}

func (k *fakeKernel) LinkAdd(netlink.Link) error              { return unix.EOPNOTSUPP }
func (k *fakeKernel) LinkSetUp(netlink.Link) error            { return unix.EOPNOTSUPP }
func (k *fakeKernel) LinkByName(string) (netlink.Link, error) { return nil, unix.ENODEV }
func (k *fakeKernel) LinkDel(netlink.Link) error              { return unix.ENODEV }
func (k *fakeKernel) Close()                                  {}
func (k *fakeKernel) state(dst string, spi uint32) *netlink.XfrmState {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.states {
		if s.Dst.String() == dst && uint32(s.Spi) == spi {
			return deepState(s)
		}
	}
	return nil
}

// setReplay plays the kernel sending packets: the state's sequence
// numbers move on.
func (k *fakeKernel) setReplay(dst string, spi uint32, oseq uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.states {
		if s.Dst.String() == dst && uint32(s.Spi) == spi {
			s.Replay = &netlink.XfrmReplayState{OSeq: oseq}
		}
	}
}

func (k *fakeKernel) policyTmpl(dir netlink.Dir) []netlink.XfrmPolicyTmpl {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.pols {
		if p.Dir == dir {
			return p.Tmpls
		}
	}
	return nil
}

// fakeSA is one direction of a GCM (AEAD) or CBC+HMAC SA of ReqID 7,
// behind a NAT, with keys in buffers the caller owns (as the node's
// ChildOp does).
func fakeSA(dir Direction, spi uint32, aead bool) SA {
	sa := SA{Dir: dir, SPI: spi, ReqID: 7, Mode: esp.Tunnel,
		Local: netip.MustParseAddrPort("192.0.2.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.2:4500"), Encap: true}
	if aead {
		sa.Encr, sa.EncrKey = wire.EncrAES_GCM_16, bytes.Repeat([]byte{0xa5}, 20)
	} else {
		sa.Encr, sa.EncrKey = wire.EncrAES_CBC, bytes.Repeat([]byte{0xc3}, 16)
		sa.Integ, sa.IntegKey = wire.IntegHMAC_SHA2_256_128, bytes.Repeat([]byte{0x3c}, 32)
	}
	return sa
}

func nonZero(t *testing.T, what string, a *netlink.XfrmStateAlgo, want []byte) {
	t.Helper()
	if a == nil || !bytes.Equal(a.Key, want) {
		t.Fatalf("%s: kernel key %x, want %x", what, a.Key, want)
	}
}

// TestXFRMUpdateSAKeepsKeys moves installed states the ways a NAT
// mapping change and MOBIKE do (RFC 7296 §2.23, RFC 4555) after the
// caller zeroed the key buffers it passed to AddSA, and checks that the
// kernel's states still have the real keys, encapsulation switched on and
// off, the outbound sequence number carried, and the policy templates
// following the outer addresses.
func TestXFRMUpdateSAKeepsKeys(t *testing.T) {
	for _, aead := range []bool{true, false} {
		t.Run(fmt.Sprint("aead=", aead), func(t *testing.T) {
			k := newFakeKernel()
			x := newXFRM(k)
			out, in := fakeSA(Out, 0x1001, aead), fakeSA(In, 0x2002, aead)
			in.EncrKey[0], out.EncrKey[0] = 0x11, 0x22 // the two directions differ
			wantOut := [2][]byte{bytes.Clone(out.EncrKey), bytes.Clone(out.IntegKey)}
			wantIn := [2][]byte{bytes.Clone(in.EncrKey), bytes.Clone(in.IntegKey)}
			must(t, x.AddSA(in))
			must(t, x.AddSA(out))
			must(t, x.AddPolicy(Policy{Local: MustSelector("10.1.0.0/24"), Remote: MustSelector("10.2.0.0/24"), ReqID: 7, Action: Protect}))
			for _, sa := range []SA{in, out} { // node/ops.go apply zeroes the op's keys
				clear(sa.EncrKey)
				clear(sa.IntegKey)
			}
			for _, st := range x.states {
				for _, a := range []*netlink.XfrmStateAlgo{st.Aead, st.Crypt, st.Auth} {
					if a != nil && a.Key != nil {
						t.Fatalf("backend keeps keys in its heap: %s", a.Name)
					}
				}
			}
			k.setReplay("198.51.100.2", 0x1001, 500)
			check := func(step, outDst, inDst string, encap bool) {
				t.Helper()
				so, si := k.state(outDst, 0x1001), k.state(inDst, 0x2002)
				if so == nil || si == nil {
					t.Fatalf("%s: states out %v in %v; kernel has %d", step, so != nil, si != nil, len(k.states))
				}
				if len(k.states) != 2 {
					t.Fatalf("%s: kernel has %d states, want 2", step, len(k.states))
				}
				for _, c := range []struct {
					st   *netlink.XfrmState
					want [2][]byte
					name string
				}{{so, wantOut, "out"}, {si, wantIn, "in"}} {
					if aead {
						nonZero(t, step+" "+c.name+" aead", c.st.Aead, c.want[0])
					} else {
						nonZero(t, step+" "+c.name+" crypt", c.st.Crypt, c.want[0])
						nonZero(t, step+" "+c.name+" auth", c.st.Auth, c.want[1])
					}
					if (c.st.Encap != nil) != encap {
						t.Fatalf("%s %s: encap %v, want %v", step, c.name, c.st.Encap, encap)
					}
				}
			}
			move := func(local, remote string, encap bool) {
				t.Helper()
				l, r := netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)
				must(t, x.UpdateSA(Out, 0x1001, l, r, encap))
				must(t, x.UpdateSA(In, 0x2002, l, r, encap))
			}
			// The NAT box moved the peer's port: UPDSA in place.
			move("192.0.2.1:4500", "198.51.100.2:14500", true)
			check("new port", "198.51.100.2", "192.0.2.1", true)
			// The peer moved (MOBIKE): new destination, add then delete.
			move("192.0.2.1:4500", "203.0.113.9:4500", true)
			check("new peer", "203.0.113.9", "192.0.2.1", true)
			if so := k.state("203.0.113.9", 0x1001); so.Replay == nil || so.Replay.OSeq != 500 {
				t.Fatalf("outbound sequence number not carried: %v", so.Replay)
			}
			// No NAT any more: encapsulation off, same addresses.
			move("192.0.2.1:4500", "203.0.113.9:4500", false)
			check("encap off", "203.0.113.9", "192.0.2.1", false)
			// We moved (new source), behind a NAT again.
			move("192.0.2.77:4500", "203.0.113.9:4500", true)
			check("new source", "203.0.113.9", "192.0.2.77", true)
			if so := k.state("203.0.113.9", 0x1001); !so.Src.Equal(netip.MustParseAddr("192.0.2.77").AsSlice()) {
				t.Fatalf("outbound source %v", so.Src)
			}
			if o := x.outer[7]; o != [2]netip.Addr{netip.MustParseAddr("192.0.2.77"), netip.MustParseAddr("203.0.113.9")} {
				t.Fatalf("outer %v", o)
			}
			if tm := k.policyTmpl(netlink.XFRM_DIR_OUT); len(tm) != 1 || tm[0].Src.String() != "192.0.2.77" || tm[0].Dst.String() != "203.0.113.9" {
				t.Fatalf("out policy template %v", tm)
			}
			if tm := k.policyTmpl(netlink.XFRM_DIR_IN); len(tm) != 1 || tm[0].Src.String() != "203.0.113.9" || tm[0].Dst.String() != "192.0.2.77" {
				t.Fatalf("in policy template %v", tm)
			}
			must(t, x.DeleteSA(Out, 0x1001))
			must(t, x.DeleteSA(In, 0x2002))
			if len(k.states) != 0 {
				t.Fatalf("kernel keeps %d states", len(k.states))
			}
		})
	}
}

// TestXFRMReleaseReqID: ReqIDs of a road-warrior gateway come and go (a
// pair and a policy each, released by the node when it forgets them); the
// backend keeps nothing for them afterwards. A trap's ReqID released early
// keeps its endpoints while its policy is there, and an SA of its ReqID
// coming and going does not take them.
func TestXFRMReleaseReqID(t *testing.T) {
	k := newFakeKernel()
	x := newXFRM(k)
	for i := range 300 {
		id := uint32(100 + i)
		p := Policy{Local: MustSelector("10.1.0.0/24"), Remote: PrefixSelector(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 32)), ReqID: id, Action: Protect}
		if i%2 == 1 {
			// A trap that never got an SA: endpoints, a policy, an Acquire.
			must(t, x.SetTunnelEndpoints(id, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2"), esp.Tunnel))
			must(t, x.AddPolicy(p))
			if !x.admitAcquire(xfrmAcquire{reqID: id}, time.Now()) {
				t.Fatalf("acquire for reqid %d not admitted", id)
			}
			must(t, x.DeletePolicy(p))
			x.ReleaseReqID(id)
			continue
		}
		out, in := fakeSA(Out, uint32(0x10000+i), true), fakeSA(In, uint32(0x20000+i), true)
		out.ReqID, in.ReqID = id, id
		must(t, x.AddSA(in))
		must(t, x.AddSA(out))
		must(t, x.AddPolicy(p))
		must(t, x.DeletePolicy(p))
		must(t, x.DeleteSA(Out, out.SPI))
		x.ReleaseReqID(id)
		must(t, x.DeleteSA(In, in.SPI)) // lingering inbound SAs go later
	}
	if n := len(x.outer) + len(x.modes) + len(x.users) + len(x.released) + len(x.acquired) + len(x.states); n != 0 {
		t.Fatalf("after 300 ReqIDs: outer %d modes %d users %d released %d acquired %d states %d",
			len(x.outer), len(x.modes), len(x.users), len(x.released), len(x.acquired), len(x.states))
	}

	// A trap: endpoints, then policies, no SA yet.
	local, remote := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	must(t, x.SetTunnelEndpoints(7, local, remote, esp.Tunnel))
	trap := Policy{Local: MustSelector("10.1.0.0/24"), Remote: MustSelector("10.2.0.0/24"), ReqID: 7, Action: Protect}
	must(t, x.AddPolicy(trap))
	// The peer came, and went again.
	out := fakeSA(Out, 0x1001, true)
	must(t, x.AddSA(out))
	must(t, x.DeleteSA(Out, 0x1001))
	if o, ok := x.outer[7]; !ok || o != [2]netip.Addr{local, remote} {
		t.Fatalf("trap endpoints after its SA went: %v %v", o, ok)
	}
	// Released while the trap's policy is still in: kept for it, so a
	// second policy of the ReqID still gets its templates.
	x.ReleaseReqID(7)
	if _, ok := x.outer[7]; !ok {
		t.Fatal("released ReqID lost its endpoints while its policy is installed")
	}
	trap2 := Policy{Local: MustSelector("10.1.0.0/24"), Remote: MustSelector("10.3.0.0/24"), ReqID: 7, Action: Protect}
	must(t, x.AddPolicy(trap2))
	must(t, x.DeletePolicy(trap))
	if _, ok := x.outer[7]; !ok {
		t.Fatal("endpoints gone while a policy of the ReqID is installed")
	}
	// AddPolicy after the release took the ReqID up again: the owner
	// uses it, so it is kept until released once more.
	must(t, x.DeletePolicy(trap2))
	if _, ok := x.outer[7]; !ok {
		t.Fatal("a ReqID used again after its release was dropped without a new release")
	}
	x.ReleaseReqID(7)
	if len(x.outer)+len(x.modes)+len(x.users)+len(x.released) != 0 {
		t.Fatalf("after the trap went: outer %v modes %v users %v released %v", x.outer, x.modes, x.users, x.released)
	}
}
