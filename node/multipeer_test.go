package node

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/config"
)

// TestGatewayTwoPeersOneConnection: a gateway whose one connection admits
// any peer under *.petrel.test and protects 10.2.0.0/24 toward 10.0.0.0/8;
// two peers, each protecting its own /24, connect to it. The gateway's two
// Child SAs come from one child configuration but must not share their
// outbound SA: a packet for 10.1.0.1 goes to peer 1 and one for 10.3.0.1
// to peer 2, whichever peer connected last (like strongSwan, whose
// reqids follow the negotiated selectors).
//
//	peer1 (10.1.0.0/24) ──IKE/ESP──┐
//	                               gw (10.2.0.0/24, conn "spokes")
//	peer2 (10.3.0.0/24) ──IKE/ESP──┘
func TestGatewayTwoPeersOneConnection(t *testing.T) {
	ports, err := freeUDPPorts(6)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) *config.Config {
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	head := func(ike, natt int) string {
		return fmt.Sprintf("daemon:\n  listen: 127.0.0.1\n  ike_port: %d\n  natt_port: %d\n", ike, natt)
	}
	const secret = "secrets:\n  all:\n    secret: two-peers-one-connection\n"
	gw := write("gw", head(ports[0], ports[1])+`connections:
  spokes:
    local_addrs: 127.0.0.1
    encap: yes
    proposals: aes256gcm16-prfsha256-x25519
    local: {auth: psk, id: fqdn:gw.petrel.test}
    remote: {auth: psk, id: "*.petrel.test"}
    children:
      net:
        local_ts: 10.2.0.0/24
        remote_ts: 10.0.0.0/8
        esp_proposals: aes256gcm16
`+secret)
	peer := func(i int, inner string) *config.Config {
		return write(fmt.Sprintf("peer%d", i), head(ports[2*i], ports[2*i+1])+fmt.Sprintf(`connections:
  gw:
    local_addrs: 127.0.0.1
    remote_addrs: 127.0.0.1
    local_port: %d
    remote_port: %d
    encap: yes
    proposals: aes256gcm16-prfsha256-x25519
    local: {auth: psk, id: fqdn:peer%d.petrel.test}
    remote: {auth: psk, id: fqdn:gw.petrel.test}
    children:
      net:
        local_ts: %s
        remote_ts: 10.2.0.0/24
        esp_proposals: aes256gcm16
`, ports[2*i+1], ports[1], i, inner)+secret)
	}
	start := func(name string, cfg *config.Config) *Node {
		n, err := New(Options{Config: cfg, Logger: testLogger(t).With("node", name)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		return n
	}
	g := start("gw", gw)
	p1, p2 := start("peer1", peer(1, "10.1.0.0/24")), start("peer2", peer(2, "10.3.0.0/24"))
	nsG, err := g.AttachNetstack([]netip.Addr{netip.MustParseAddr("10.2.0.1")}, 1400)
	if err != nil {
		t.Fatal(err)
	}
	var listeners []net.PacketConn
	for i, p := range []*Node{p1, p2} {
		addr := []string{"10.1.0.1", "10.3.0.1"}[i]
		ns, err := p.AttachNetstack([]netip.Addr{netip.MustParseAddr(addr)}, 1400)
		if err != nil {
			t.Fatal(err)
		}
		l, err := ns.ListenUDP(&net.UDPAddr{IP: net.ParseIP(addr), Port: 9})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		listeners = append(listeners, l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range []*Node{p1, p2} {
		if _, err := p.Up(ctx, "gw"); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := g.Sessions(); len(s) != 2 {
		t.Fatalf("gateway has %d IKE SAs, want 2", len(s))
	}
	// From the gateway to each peer, peer 1 first (peer 2 connected last).
	for i, dst := range []string{"10.1.0.1", "10.3.0.1"} {
		c, err := nsG.DialUDP(nil, &net.UDPAddr{IP: net.ParseIP(dst), Port: 9})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for try := 0; try < 10 && got == 0; try++ {
			if _, err := c.Write([]byte("hello " + dst)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			listeners[i].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, _, err := listeners[i].ReadFrom(buf); err == nil && string(buf[:n]) == "hello "+dst {
				got++
			}
		}
		c.Close()
		if got == 0 {
			t.Errorf("a packet from the gateway to %s never reached peer %d", dst, i+1)
		}
	}
	var ids int
	if err := g.do(func(time.Time) { ids = len(g.reqIDs) }); err != nil || ids != 2 {
		t.Fatalf("gateway ReqIDs: %d (%v), want one per peer", ids, err)
	}
	// Peers that leave take their ReqIDs with them.
	for _, p := range []*Node{p1, p2} {
		if _, err := p.Down(ctx, "gw"); err != nil {
			t.Fatal(err)
		}
	}
	for try := 0; try < 100; try++ {
		if err := g.do(func(time.Time) { ids = len(g.reqIDs) + len(g.reqConn) + len(g.reqUse) + len(g.reqKey) }); err != nil || ids == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ids != 0 {
		t.Fatalf("gateway still holds %d ReqID entries after both peers left", ids)
	}
}
