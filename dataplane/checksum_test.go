package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/petrel-vpn/petrel/esp"
)

// l4Valid checks a TCP/UDP checksum the way a receiving stack does.
func l4Valid(pkt []byte, hl int, v6 bool) bool {
	proto := pkt[9]
	var sum uint32
	if v6 {
		proto = pkt[6]
		sum = sumBytes(pkt[8:40], 0)
	} else {
		sum = sumBytes(pkt[12:20], 0)
	}
	l4 := pkt[hl:]
	sum = sumBytes(l4, sum+uint32(proto)+uint32(len(l4)))
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum) == 0xffff
}

// TestTransportNATChecksum: a transport-mode UDP and TCP segment whose
// checksum the sender computed with its private address (10.0.0.5, before
// a NAT) must be valid again after the receiver rebuilds the IP header
// from the outer addresses it sees (RFC 3948 §3.1.2).
func TestTransportNATChecksum(t *testing.T) {
	for _, tc := range []struct {
		proto   byte
		l4len   int
		outer   string
		private string
	}{
		{protoUDP, 8 + 33, "198.51.100.9:4500", "10.0.0.5"},
		{protoTCP, 20 + 100, "198.51.100.9:4500", "10.0.0.5"},
		{protoUDP, 8 + 10, "[2001:db8::9]:4500", "fd00::5"},
		{protoTCP, 20 + 7, "[2001:db8::9]:4500", "fd00::5"},
	} {
		remote := netip.MustParseAddrPort(tc.outer)
		local := netip.MustParseAddrPort("192.0.2.2:4500")
		if remote.Addr().Is6() {
			local = netip.MustParseAddrPort("[2001:db8::2]:4500")
		}
		sa := SA{Mode: esp.Transport, Encap: true, Local: local, Remote: remote}
		// The segment as the sender built it, with its private source.
		l4 := make([]byte, tc.l4len)
		for i := range l4 {
			l4[i] = byte(i * 7)
		}
		hdr := make([]byte, 64)
		priv := sa
		priv.Remote = netip.AddrPortFrom(netip.MustParseAddr(tc.private), 4500)
		hl := buildIPHeader(hdr, &priv, tc.proto, len(l4))
		pkt := append(append([]byte(nil), hdr[64-hl:]...), l4...)
		fixL4Checksum(pkt, hl)
		if !l4Valid(pkt, hl, remote.Addr().Is6()) {
			t.Fatal("test setup: sender checksum invalid")
		}
		sent := append([]byte(nil), pkt[hl:]...)
		// The receiver rebuilds the header with the NAT's public address.
		got := buildIPHeader(hdr, &sa, tc.proto, len(sent))
		rx := append(append([]byte(nil), hdr[64-got:]...), sent...)
		if l4Valid(rx, got, remote.Addr().Is6()) {
			t.Fatal("checksum unexpectedly valid before the fix-up")
		}
		fixL4Checksum(rx, got)
		if !l4Valid(rx, got, remote.Addr().Is6()) {
			t.Fatalf("proto %d via %s: checksum still invalid", tc.proto, tc.outer)
		}
		if binary.BigEndian.Uint16(rx[got+4:]) == 0 && tc.proto == protoUDP {
			t.Fatal("UDP length clobbered")
		}
	}
}
