package node

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/config"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// attachEcho attaches a netstack to each node at its loopback peer's
// inner address, runs a UDP echo service on port 7 of b's (closed when the
// test ends) and returns a's netstack to send from.
func attachEcho(t *testing.T, a, b *Node, addrA, addrB string) *netstack.Net {
	t.Helper()
	nsA, err := a.AttachNetstack([]netip.Addr{netip.MustParseAddr(addrA)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	nsB, err := b.AttachNetstack([]netip.Addr{netip.MustParseAddr(addrB)}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	echo, err := nsB.ListenUDP(&net.UDPAddr{IP: net.ParseIP(addrB), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = echo.WriteTo(buf[:n], from)
		}
	}()
	return nsA
}

// withLifetime rewrites a loopback peer's configuration so that its child
// rekeys every d (what "child"), or its IKE SA is reauthenticated every d
// ("reauth").
func withLifetime(t *testing.T, p *LoopbackPeer, what, d string) {
	t.Helper()
	b, err := os.ReadFile(p.File)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "        start_action:", "        rekey_time: "+d+"\n        life_time: 1h\n        start_action:", 1)
	if what == "reauth" {
		text = strings.Replace(string(b), "    children:", "    reauth_time: "+d+"\n    children:", 1)
	}
	if err := os.WriteFile(p.File, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if p.Config, err = config.Load(p.File); err != nil {
		t.Fatal(err)
	}
}

// TestChildRekeyUnderTraffic: Child SA rekeys started by one node while a
// UDP echo runs through the tunnel every 10 ms. The other node is the
// rekey's responder: it installs the new pair's outbound SA only once the
// initiator has the pair (the old pair's delete, or traffic on the new
// one; RFC 7296 §2.8), so no echo is lost. Run with each node rekeying.
//
//	rekeyer: CREATE_CHILD_SA {N(REKEY_SA), SA, Ni, TS}  →  responder installs in, parks out
//	                                                     ←  {SA, Nr, TS}
//	rekeyer installs both, sends on the new pair; D(old) →  responder activates out, deletes old
//
// The same with reauthentication (a fresh IKE SA and Child SA made before
// the old ones go): the IKE_AUTH responder parks its new outbound SA while
// the old pair lives.
func TestChildRekeyUnderTraffic(t *testing.T) {
	for _, tc := range []struct{ what, rekeyer, event string }{
		{"child", "a", "child-rekeyed"}, {"child", "b", "child-rekeyed"},
		{"reauth", "a", "ike-up"}, {"reauth", "b", "ike-up"},
	} {
		rekeyer := tc.rekeyer
		t.Run(tc.what+"-by-"+rekeyer, func(t *testing.T) {
			pa, pb, err := WriteLoopbackPair(t.TempDir(), LoopbackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rekeyer == "a" {
				withLifetime(t, &pa, tc.what, "1s")
			} else {
				withLifetime(t, &pb, tc.what, "1s")
			}
			a, b := startNodes(t, pa, pb)
			nsA := attachEcho(t, a, b, pa.Addr, pb.Addr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := a.Up(ctx, "b"); err != nil {
				t.Fatal(err)
			}
			events, stop := a.Subscribe()
			defer stop()
			conn, err := nsA.DialUDP(nil, &net.UDPAddr{IP: net.ParseIP(pb.Addr), Port: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const sends = 350 // 3.5 s at 10 ms
			got := make(chan uint32, sends)
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					if n == 4 {
						got <- binary.BigEndian.Uint32(buf)
					}
				}
			}()
			sentAt := make([]time.Time, sends)
			var evlog []string
			tick := time.NewTicker(10 * time.Millisecond)
			rekeys := 0
			for i := uint32(0); i < sends; i++ {
				<-tick.C
				sentAt[i] = time.Now()
				if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, i)); err != nil {
					t.Fatal(err)
				}
			drain:
				for {
					select {
					case e := <-events:
						evlog = append(evlog, time.Now().Format("05.000000")+" "+e.Kind+" "+e.Reason+" in="+e.InSPI+" out="+e.OutSPI)
						if e.Kind == tc.event {
							rekeys++
						}
					default:
						break drain
					}
				}
			}
			tick.Stop()
			seen := map[uint32]bool{}
			for deadline := time.After(2 * time.Second); len(seen) < sends; {
				select {
				case v := <-got:
					seen[v] = true
					continue
				case <-deadline:
				}
				break
			}
			// A broken switch loses many echoes (every one sent while a
			// side sends on a pair the other lacks); none may be lost.
			// (The single echo once lost about one run in ten under the
			// race detector was a reply the reauthentication's IKE_AUTH
			// responder read while removing the old pair: its outbound
			// SA went before the parked heir's was installed, see
			// TestHeirActivatedBeforeRemovedPairsOutboundGoes.)
			if lost := sends - len(seen); lost > 0 {
				for i := uint32(0); i < sends; i++ {
					if !seen[i] {
						t.Logf("missing %d sent at %v", i, sentAt[i].Format("05.000000"))
					}
				}
				for _, e := range evlog {
					t.Log(e)
				}
				t.Fatalf("%d of %d echoes came back across %d %s", len(seen), sends, rekeys, tc.event)
			}
			if rekeys < 2 {
				t.Fatalf("%d %s in 3.5 s, want at least 2", rekeys, tc.event)
			}
			var pending int
			if err := a.do(func(time.Time) { pending = len(a.parked) }); err != nil {
				t.Fatal(err)
			}
			if err := b.do(func(time.Time) { pending += len(b.parked) }); err != nil {
				t.Fatal(err)
			}
			// The last rekey's old pair may still be on its way out.
			if pending > 1 {
				t.Errorf("%d pairs still wait for activation", pending)
			}
			t.Logf("%d/%d echoes across %d %s by %s", len(seen), sends, rekeys, tc.event, rekeyer)
		})
	}
}
