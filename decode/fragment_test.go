package decode

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// On port 4500: an IKE_AUTH request sent as SKF fragments behind the non-ESP
// marker (out of order), an ESP-in-UDP packet and a NAT keepalive (RFC 3948).
// The decoder tells them apart and reassembles the message.
func TestNATTPortFragmentsESPKeepalive(t *testing.T) {
	encr, _ := suite.LookupEncr(wire.EncrAES_GCM_16, 256)
	prf, _ := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
	s := suite.Suite{Encr: encr, PRF: prf}
	ni, nr := randBytes(32), randBytes(32)
	const spiI, spiR = 0xaaaa, 0xbbbb
	keys, err := suite.DeriveIKEKeys(s, suite.SKEYSEED(prf, ni, nr, randBytes(32)), ni, nr, spiI, spiR)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := suite.NewIKEProtector(s, keys, true)
	long := strings.Repeat("x", 900)
	m := &wire.Message{Header: wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.IKE_AUTH, Flags: wire.FlagInitiator, MessageID: 1},
		Inner: []wire.Payload{&wire.ID{IDType: wire.ID_FQDN, Data: []byte(long)}, &wire.Auth{Method: wire.AuthSharedKeyMIC, Data: randBytes(32)}}}
	frags, err := m.EncodeFragments(p, 400)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) < 3 {
		t.Fatalf("%d fragments, want at least 3", len(frags))
	}
	path := filepath.Join(t.TempDir(), "natt.pcap")
	f, _ := os.Create(path)
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	src, dst := netip.MustParseAddrPort("203.0.113.5:4500"), netip.MustParseAddrPort("198.51.100.1:4500")
	n := 0
	send := func(b []byte) { n++; writeUDP(t, w, n, src, dst, b) }
	marker := func(b []byte) []byte { return append([]byte{0, 0, 0, 0}, b...) }
	send(marker(frags[len(frags)-1])) // last first: reordering
	for _, fr := range frags[:len(frags)-1] {
		send(marker(fr))
	}
	send([]byte{0x12, 0x34, 0x56, 0x78, 0, 0, 0, 9, 1, 2, 3, 4}) // ESP SPI 0x12345678 seq 9
	send([]byte{0xff})
	f.Close()

	f, _ = os.Open(path)
	defer f.Close()
	d := NewDecoder([]keylog.IKESA{{SPIi: spiI, SPIr: spiR, Encr: wire.EncrAES_GCM_16, EncrKeyBits: 256, SKei: keys.SKei, SKer: keys.SKer}})
	var recs []Record
	ReadUDP(f, func(dg Datagram) {
		if r, ok := d.Decode(dg); ok {
			recs = append(recs, r)
		}
	}, func(int, error) {})
	if len(recs) != len(frags)+2 {
		t.Fatalf("%d records, want %d", len(recs), len(frags)+2)
	}
	var whole *Record
	for i := range recs[:len(frags)] {
		r := &recs[i]
		if r.Error != "" || !r.Decrypted || r.Fragment == nil {
			t.Errorf("fragment record %d: %+v", i, r)
		}
		if r.Fragment != nil && r.Fragment.Reassembled {
			whole = r
		}
	}
	if whole == nil || whole != &recs[len(frags)-1] {
		t.Fatalf("message not reassembled on the last fragment to arrive")
	}
	if len(whole.Inner) != 2 || whole.Inner[0].Fields["id"] != long || whole.Inner[1].Type != "AUTH" {
		t.Errorf("reassembled inner payloads: %+v", whole.Inner)
	}
	if esp := recs[len(frags)]; esp.Kind != KindESP || esp.SPI != 0x12345678 || esp.Seq != 9 {
		t.Errorf("ESP record: %+v", esp)
	}
	if ka := recs[len(frags)+1]; ka.Kind != KindKeepalive {
		t.Errorf("keepalive record: %+v", ka)
	}
}
