package dataplane

import (
	"encoding/binary"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/wire"
)

// capture records what crosses a MemBind as Ethernet frames: outer IPv4
// or IPv6, then UDP 4500 (RFC 3948) or IP protocol 50, then the ESP packet.
type capture struct {
	mu  sync.Mutex
	w   *pcapgo.Writer
	err error
}

func (c *capture) tap(pkt []byte, from, to netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l4 []byte
	proto := byte(50)
	if to.Port() != 0 {
		proto = protoUDP
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], from.Port())
		binary.BigEndian.PutUint16(l4[2:], to.Port())
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(pkt)))
	}
	l4 = append(l4, pkt...)
	frame := make([]byte, 14)
	var ip []byte
	if from.Addr().Is4() {
		binary.BigEndian.PutUint16(frame[12:], 0x0800)
		ip = make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		s, d := from.Addr().As4(), to.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	} else {
		binary.BigEndian.PutUint16(frame[12:], 0x86dd)
		ip = make([]byte, 40)
		ip[0], ip[6], ip[7] = 0x60, proto, 64
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		s, d := from.Addr().As16(), to.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	frame = append(append(frame, ip...), l4...)
	if err := c.w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
		c.err = err
	}
}

// TestTsharkDecryptsPetrelESP captures the ESP that two data planes
// exchange, writes the esp_sa key table from the data plane's KeyLog hook
// with package keylog, and has tshark decrypt every packet and check every
// ICV. Skipped when tshark is not installed.
func TestTsharkDecryptsPetrelESP(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	cases := []struct {
		name string
		mod  func(*pairConfig)
	}{
		{"aes256gcm16-udp4500", func(c *pairConfig) {}},
		{"aes128gcm16-ipv6-raw", func(c *pairConfig) {
			c.keyLen, c.encap = 20, false
			c.aTS, c.bTS, c.aInner, c.bInner = "fd00:1::/64", "fd00:2::/64", "fd00:1::1", "fd00:2::1"
			c.aOuter, c.bOuter = "[2001:db8::1]:4500", "[2001:db8::2]:4500"
		}},
		// tshark 4.0's esp_sa table has no ESN column: it checks ICVs of
		// 32-bit sequence number SAs only (ESN is covered by package esp).
		{"aes256cbc-sha256-raw", func(c *pairConfig) {
			c.encr, c.keyLen, c.integ, c.intLen, c.encap = wire.EncrAES_CBC, 32, wire.IntegHMAC_SHA2_256_128, 32, false
		}},
		{"aes128cbc-sha512-udp4500", func(c *pairConfig) {
			c.encr, c.keyLen, c.integ, c.intLen = wire.EncrAES_CBC, 16, wire.IntegHMAC_SHA2_512_256, 64
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := defaultPair()
			tc.mod(&c)
			var mu sync.Mutex
			var lines []string
			opts := Options{KeyLog: func(k KeyInfo) {
				bits := len(k.EncrKey) * 8
				if k.Encr != wire.EncrAES_CBC {
					bits -= 32 // the salt
				}
				line, err := keylog.ESPLine(keylog.ESPSA{IPv6: k.Src.Is6(), Src: k.Src, Dst: k.Dst, SPI: k.SPI,
					Encr: k.Encr, EncrKeyBits: bits, Integ: k.Integ, EncrKey: k.EncrKey, IntegKey: k.IntegKey})
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				lines = append(lines, line)
				mu.Unlock()
			}}
			a, b, ba, bb := newPair(t, c, opts)
			f, err := os.Create(filepath.Join(dir, "esp.pcap"))
			if err != nil {
				t.Fatal(err)
			}
			w := pcapgo.NewWriter(f)
			w.WriteFileHeader(65535, layers.LinkTypeEthernet)
			capt := &capture{w: w}
			ba.Tap, bb.Tap = capt.tap, capt.tap
			if n := udpEcho(t, a, b, 6); n != 6 {
				t.Fatalf("%d/6 echoes", n)
			}
			ba.Tap, bb.Tap = nil, nil
			f.Close()
			if capt.err != nil {
				t.Fatal(capt.err)
			}
			mu.Lock()
			table := strings.Join(lines, "\n") + "\n"
			mu.Unlock()
			if len(lines) != 4 {
				t.Fatalf("key log has %d lines, want 4 (2 SAs per node)", len(lines))
			}
			must(t, os.WriteFile(filepath.Join(dir, keylog.ESPFile), []byte(table), 0o600))
			cmd := exec.Command(tshark, "-n", "-r", filepath.Join(dir, "esp.pcap"),
				"-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
				"-T", "fields", "-E", "separator=;", "-e", "esp.spi", "-e", "esp.icv_good", "-e", "udp.port", "-e", "_ws.malformed")
			cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+dir, "HOME="+dir)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark: %v\n%s%s", err, out, stderr.String())
			}
			rows := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(rows) < 12 {
				t.Fatalf("tshark saw %d packets, want >= 12:\n%s", len(rows), out)
			}
			for _, r := range rows {
				f := strings.Split(r, ";")
				// SPI, ICV good, the UDP ports (outer 4500 if any, then
				// the decrypted inner echo on port 7), malformed.
				if len(f) < 4 || !(f[1] == "1" || f[1] == "True") || !strings.Contains(f[2], "7") || f[3] != "" {
					t.Fatalf("tshark row %q: want ICV good and a decrypted inner UDP echo\n%s\nkeys:\n%s", r, out, table)
				}
			}
			t.Logf("tshark decrypted %d ESP packets, all ICVs good", len(rows))
		})
	}
}
