package decode

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/petrel-vpn/petrel/keylog"
	"github.com/petrel-vpn/petrel/suite"
	"github.com/petrel-vpn/petrel/wire"
)

// The foundation's end-to-end check: IKE messages built by the codec and
// encrypted by the suites, written to a pcap with the key log petrel writes,
// decrypt cleanly in tshark (no malformed packet, no expert warning or error,
// every SK payload decrypted) and in petrel's own decoder.
func TestCodecSuiteKeylogInTshark(t *testing.T) {
	type alg struct {
		encr  wire.EncrID
		bits  int
		integ wire.IntegID
	}
	algs := []alg{
		{wire.EncrAES_GCM_16, 256, wire.IntegNONE},
		{wire.EncrAES_GCM_8, 128, wire.IntegNONE},
		{wire.EncrAES_CCM_16, 256, wire.IntegNONE},
		{wire.EncrAES_CBC, 256, wire.IntegHMAC_SHA2_256_128},
		{wire.EncrAES_CBC, 128, wire.IntegHMAC_SHA2_512_256},
		{wire.EncrAES_CTR, 192, wire.IntegHMAC_SHA2_384_192},
		{wire.EncrAES_CBC, 128, wire.IntegHMAC_SHA1_96},
	}
	dir := t.TempDir()
	kl, err := keylog.Open(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	pcapPath := filepath.Join(dir, "petrel.pcap")
	pf, err := os.Create(pcapPath)
	if err != nil {
		t.Fatal(err)
	}
	pw := pcapgo.NewWriter(pf)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ini, resp := netip.MustParseAddrPort("192.0.2.1:500"), netip.MustParseAddrPort("192.0.2.2:500")
	frames := 0
	write := func(b []byte, fromInit bool) {
		src, dst := ini, resp
		if !fromInit {
			src, dst = resp, ini
		}
		frames++
		writeUDP(t, pw, frames, src, dst, b)
	}
	for i, a := range algs {
		encr, err := suite.LookupEncr(a.encr, a.bits)
		if err != nil {
			t.Fatal(err)
		}
		var integ *suite.Integ
		if a.integ != wire.IntegNONE {
			if integ, err = suite.LookupInteg(a.integ); err != nil {
				t.Fatal(err)
			}
		}
		prf, _ := suite.LookupPRF(wire.PRF_HMAC_SHA2_256)
		ke, _ := suite.LookupKE(wire.KECurve25519)
		s := suite.Suite{Encr: encr, PRF: prf, Integ: integ}
		spiI, spiR := uint64(0x1111111100000000)+uint64(i), uint64(0x2222222200000000)+uint64(i)

		// IKE_SA_INIT, both directions, in the clear.
		st, err := ke.Initiate()
		if err != nil {
			t.Fatal(err)
		}
		ni, nr := randBytes(32), randBytes(32)
		transforms := []wire.ProposalTransform{{Transform: encr.Transform()}, {Transform: prf.Transform()}}
		if integ != nil {
			transforms = append(transforms, wire.ProposalTransform{Transform: integ.Transform()})
		}
		transforms = append(transforms, wire.ProposalTransform{Transform: ke.Transform()})
		sa := &wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, Transforms: transforms}}}
		req := &wire.Message{Header: wire.Header{SPIi: spiI, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator},
			Payloads: []wire.Payload{sa, &wire.KE{Group: wire.KECurve25519, Data: st.Public()}, &wire.Nonce{Data: ni}}}
		b, err := req.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		write(b, true)
		rdata, gir, err := ke.Respond(st.Public())
		if err != nil {
			t.Fatal(err)
		}
		res := &wire.Message{Header: wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagResponse},
			Payloads: []wire.Payload{sa, &wire.KE{Group: wire.KECurve25519, Data: rdata}, &wire.Nonce{Data: nr}}}
		if b, err = res.Encode(nil); err != nil {
			t.Fatal(err)
		}
		write(b, false)

		keys, err := suite.DeriveIKEKeys(s, suite.SKEYSEED(prf, ni, nr, gir), ni, nr, spiI, spiR)
		if err != nil {
			t.Fatal(err)
		}
		if err := kl.LogIKE(keylog.IKESA{SPIi: spiI, SPIr: spiR, Encr: a.encr, EncrKeyBits: a.bits, Integ: a.integ,
			SKei: keys.SKei, SKer: keys.SKer, SKai: keys.SKai, SKar: keys.SKar}); err != nil {
			t.Fatal(err)
		}
		// IKE_AUTH request and response, sealed by each side.
		for _, fromInit := range []bool{true, false} {
			p, err := suite.NewIKEProtector(s, keys, fromInit)
			if err != nil {
				t.Fatal(err)
			}
			flags, id := wire.FlagInitiator, &wire.ID{IDType: wire.ID_FQDN, Data: []byte("initiator.petrel.test")}
			if !fromInit {
				flags, id = wire.FlagResponse, &wire.ID{Responder: true, IDType: wire.ID_FQDN, Data: []byte("responder.petrel.test")}
			}
			m := &wire.Message{Header: wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.IKE_AUTH, Flags: flags, MessageID: 1},
				Inner: []wire.Payload{id, &wire.Auth{Method: wire.AuthSharedKeyMIC, Data: randBytes(32)}}}
			if b, err = m.Encode(p); err != nil {
				t.Fatal(err)
			}
			write(b, fromInit)
		}
	}
	if err := kl.Close(); err != nil {
		t.Fatal(err)
	}
	pf.Close()

	// petrel's own decoder.
	keyFile := filepath.Join(dir, "keys", keylog.IKEFile)
	kf, _ := os.Open(keyFile)
	table, err := keylog.ParseIKETable(kf)
	kf.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(pcapPath)
	d := NewDecoder(table)
	decrypted := 0
	_ = ReadUDP(f, func(dg Datagram) {
		r, _ := d.Decode(dg)
		if r.Error != "" {
			t.Errorf("petrel decode frame %d: %s", r.Frame, r.Error)
		}
		if r.Decrypted {
			decrypted++
		}
	}, func(frame int, err error) { t.Errorf("frame %d: %v", frame, err) })
	f.Close()
	if decrypted != 2*len(algs) {
		t.Errorf("petrel decrypted %d SK payloads, want %d", decrypted, 2*len(algs))
	}

	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed; petrel's own decoder checked only")
	}
	args := []string{"-n", "-r", pcapPath}
	lines, _ := os.ReadFile(keyFile)
	for _, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		args = append(args, "-o", "uat:ikev2_decryption_table:"+l)
	}
	args = append(args, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|",
		"-e", "frame.number", "-e", "_ws.malformed", "-e", "_ws.expert.severity", "-e", "_ws.expert.message",
		"-e", "isakmp.exchangetype", "-e", "isakmp.enc.decrypted")
	var stderr bytes.Buffer
	cmd := exec.Command(tshark, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	rows := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(rows) != frames {
		t.Fatalf("tshark printed %d frames, want %d", len(rows), frames)
	}
	for _, row := range rows {
		f := strings.Split(row, "\t")
		for len(f) < 6 {
			f = append(f, "")
		}
		if f[1] != "" {
			t.Errorf("tshark frame %s: malformed", f[0])
		}
		for _, sev := range strings.Split(f[2], "|") {
			if v, err := strconv.Atoi(sev); err == nil && v >= 6291456 { // PI_WARN (0x600000) or worse
				t.Errorf("tshark frame %s: expert severity %s: %s", f[0], sev, f[3])
			}
		}
		if f[4] == "35" && f[5] == "" {
			t.Errorf("tshark frame %s: IKE_AUTH not decrypted", f[0])
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func writeUDP(t *testing.T, w *pcapgo.Writer, n int, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(n), 0), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
	if err := w.WritePacket(ci, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
}
