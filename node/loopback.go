package node

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/petrel-vpn/petrel/config"
)

// LoopbackPeer is one side of a loopback pair: its configuration file and
// the inner prefix it protects.
type LoopbackPeer struct {
	File   string
	Config *config.Config
	Inner  string // the protected prefix, e.g. 10.1.0.0/24
	Addr   string // the inner host address its netstack owns, e.g. 10.1.0.1
}

// LoopbackOptions shape WriteLoopbackPair's configurations.
type LoopbackOptions struct {
	// Socket, if set, adds daemon.control_socket: DIR/NAME-SOCKET.
	Socket bool
	// StartAction of peer a's child (b is always "none").
	StartAction string
	// Extra YAML appended to each connections: map (entries indented by
	// two spaces), for tests that add connections; LOCAL_PORT and
	// REMOTE_PORT in it become the peers' NAT-T ports.
	ExtraA, ExtraB string
}

// WriteLoopbackPair writes two configurations into dir for peers "a" and
// "b" on 127.0.0.1 with free UDP ports, a fresh random PSK, PSK
// authentication, X25519 and AES-GCM-256, and forced UDP encapsulation so
// that ESP travels in UDP on the NAT-T ports (raw ESP needs root). Peer a
// protects 10.1.0.0/24, b 10.2.0.0/24. It loads both with config.Load.
func WriteLoopbackPair(dir string, o LoopbackOptions) (a, b LoopbackPeer, err error) {
	ports, err := freeUDPPorts(4)
	if err != nil {
		return a, b, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return a, b, fmt.Errorf("node: PSK: %w", err)
	}
	if o.StartAction == "" {
		o.StartAction = "none"
	}
	write := func(name, peer string, ike, natt, peerNATT int, inner, remoteInner, start, extra string) (LoopbackPeer, error) {
		sock := ""
		if o.Socket {
			sock = fmt.Sprintf("  control_socket: %s\n", filepath.Join(dir, name+".sock"))
		}
		text := fmt.Sprintf(`# petrel loopback peer %[1]s (written by petrel demo / tests)
daemon:
  listen: 127.0.0.1
  ike_port: %[3]d
  natt_port: %[4]d
%[9]s  log:
    level: info
connections:
  %[2]s:
    local_addrs: 127.0.0.1
    remote_addrs: 127.0.0.1
    local_port: %[4]d        # IKE on the NAT-T ports from the start (RFC 7296 §2.23)
    remote_port: %[5]d
    encap: yes               # ESP in UDP: no root needed
    proposals: aes256gcm16-prfsha256-x25519
    local:
      auth: psk
      id: fqdn:%[1]s.petrel.test
    remote:
      auth: psk
      id: fqdn:%[2]s.petrel.test
    children:
      net:
        local_ts: %[6]s
        remote_ts: %[7]s
        esp_proposals: aes256gcm16
        start_action: %[8]s
%[10]s
secrets:
  demo:                      # no ids: for every connection here
    secret: 0x%[11]s
`, name, peer, ike, natt, peerNATT, inner, remoteInner, start, sock, extra, hex.EncodeToString(key))
		text = strings.NewReplacer("LOCAL_PORT", fmt.Sprint(natt), "REMOTE_PORT", fmt.Sprint(peerNATT)).Replace(text)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			return LoopbackPeer{}, fmt.Errorf("node: %w", err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			return LoopbackPeer{}, err
		}
		addr := inner[:len(inner)-len("0/24")] + "1"
		return LoopbackPeer{File: path, Config: cfg, Inner: inner, Addr: addr}, nil
	}
	if a, err = write("a", "b", ports[0], ports[1], ports[3], "10.1.0.0/24", "10.2.0.0/24", o.StartAction, o.ExtraA); err != nil {
		return a, b, err
	}
	b, err = write("b", "a", ports[2], ports[3], ports[1], "10.2.0.0/24", "10.1.0.0/24", "none", o.ExtraB)
	return a, b, err
}

// freeUDPPorts finds n distinct UDP ports free on IPv4 and IPv6 right now.
func freeUDPPorts(n int) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for tries := 0; len(ports) < n && tries < 100; tries++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			return nil, fmt.Errorf("node: finding a free port: %w", err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c6, err6 := net.ListenUDP("udp6", &net.UDPAddr{Port: p})
		c.Close()
		if err6 == nil {
			c6.Close()
		}
		inUse := err6 != nil && strings.Contains(err6.Error(), "address already in use")
		if !inUse && !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		return nil, fmt.Errorf("node: no %d free UDP ports", n)
	}
	return ports, nil
}
