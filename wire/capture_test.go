package wire

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// ikeDatagram is the IKE message of one captured UDP datagram.
type ikeDatagram struct {
	srcPort, dstPort uint16
	msg              []byte
}

// readIKE returns the IKE messages on UDP 500/4500 in a pcap or pcapng
// file, with the non-ESP marker of port 4500 removed and ESP skipped
// (RFC 3948 §2.2).
func readIKE(t testing.TB, path string) []ikeDatagram {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var first gopacket.Decoder
	if strings.HasSuffix(path, ".pcapng") {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		src, first = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		src, first = r, r.LinkType()
		if lt := r.LinkType(); lt == layers.LinkTypeRaw || lt == 228 /* IPv4 */ {
			first = layers.LayerTypeIPv4
		}
	}
	var out []ikeDatagram
	for i := 0; i < 10000; i++ {
		data, _, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, first, gopacket.Default)
		udp, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if !ok {
			continue
		}
		payload := udp.Payload
		if udp.SrcPort == 4500 || udp.DstPort == 4500 {
			if len(payload) < 4 || !bytes.Equal(payload[:4], []byte{0, 0, 0, 0}) {
				continue // ESP in UDP
			}
			payload = payload[4:]
		} else if udp.SrcPort != 500 && udp.DstPort != 500 {
			continue
		}
		out = append(out, ikeDatagram{uint16(udp.SrcPort), uint16(udp.DstPort), payload})
	}
	return out
}

// want describes one message as tshark shows it.
type wantMsg struct {
	exchange   ExchangeType
	flags      Flags
	msgID      uint32
	length     int
	payloads   string // outer payload sequence
	notifies   []NotifyType
	encrKeyLen uint16
}

func TestCaptures(t *testing.T) {
	tests := []struct {
		file string
		msgs []wantMsg
	}{
		{"ikev2-decrypt-aes256cbc.pcapng", []wantMsg{
			{IKE_SA_INIT, FlagInitiator, 0, 256, "SA KE No N N N", []NotifyType{NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP, SIGNATURE_HASH_ALGORITHMS}, 256},
			{IKE_SA_INIT, FlagResponse, 0, 248, "SA KE No N N N", []NotifyType{NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP, MULTIPLE_AUTH_SUPPORTED}, 256},
			{IKE_AUTH, FlagInitiator, 1, 256, "SK", nil, 0},
			{IKE_AUTH, FlagResponse, 1, 224, "SK", nil, 0},
		}},
		{"ikev2-decrypt-aes256ccm16.pcapng", []wantMsg{
			{IKE_SA_INIT, FlagInitiator, 0, 232, "SA KE No N N", []NotifyType{NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP}, 256},
			{IKE_SA_INIT, FlagResponse, 0, 240, "SA KE No N N N", []NotifyType{NAT_DETECTION_SOURCE_IP, NAT_DETECTION_DESTINATION_IP, MULTIPLE_AUTH_SUPPORTED}, 256},
			{IKE_AUTH, FlagInitiator, 1, 237, "SK", nil, 0},
			{IKE_AUTH, FlagResponse, 1, 213, "SK", nil, 0},
		}},
		{"rfc7634-ikev2-example.pcap", []wantMsg{
			{INFORMATIONAL, 0, 9, 69, "SK", nil, 0},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			dgrams := readIKE(t, filepath.Join("testdata", "captures", tc.file))
			if len(dgrams) != len(tc.msgs) {
				t.Fatalf("%d IKE datagrams, want %d", len(dgrams), len(tc.msgs))
			}
			for i, w := range tc.msgs {
				m, err := Parse(dgrams[i].msg)
				if err != nil {
					t.Fatalf("message %d: %v", i+1, err)
				}
				h := m.Header
				if h.Exchange != w.exchange || h.Flags != w.flags || h.MessageID != w.msgID || int(h.Length) != w.length {
					t.Errorf("message %d: header %+v", i+1, h)
				}
				if got := payloadTypes(m.Payloads); got != w.payloads {
					t.Errorf("message %d: payloads %q, want %q", i+1, got, w.payloads)
				}
				var notes []NotifyType
				for _, n := range Notifies(m.Payloads) {
					notes = append(notes, n.NotifyType)
				}
				if !equalNotifies(notes, w.notifies) {
					t.Errorf("message %d: notifies %v, want %v", i+1, notes, w.notifies)
				}
				if sa, ok := Find(m.Payloads, PayloadSA).(*SA); ok {
					checkCaptureSA(t, i+1, sa, w.encrKeyLen)
				}
				if e := m.Encrypted(); e != nil && e.bodyOff != HeaderLen+4 {
					t.Errorf("message %d: SK body at %d", i+1, e.bodyOff)
				}
				// Only payloads outside SK are checked: the inner ones need keys.
				if w.exchange == IKE_SA_INIT {
					if err := CheckRules(m); err != nil {
						t.Errorf("message %d: %v", i+1, err)
					}
				}
				// Real messages re-encode octet for octet.
				b, err := m.Encode(nil)
				if err != nil || !bytes.Equal(b, dgrams[i].msg) {
					t.Errorf("message %d: re-encoding differs (%v)", i+1, err)
				}
			}
		})
	}
}

func checkCaptureSA(t *testing.T, n int, sa *SA, keyLen uint16) {
	t.Helper()
	if len(sa.Proposals) != 1 || sa.Proposals[0].Protocol != ProtoIKE || len(sa.Proposals[0].SPI) != 0 {
		t.Fatalf("message %d: SA %+v", n, sa)
	}
	for _, tr := range sa.Proposals[0].Transforms {
		switch tr.Type {
		case TransformENCR:
			if tr.KeyLength != keyLen {
				t.Errorf("message %d: %v key length, want %d", n, tr.Transform, keyLen)
			}
		case TransformKE:
			if KEID(tr.ID) != KEECP256 {
				t.Errorf("message %d: %v", n, tr.Transform)
			}
		}
	}
}

func equalNotifies(a, b []NotifyType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMalformedCapture: both messages are broken copies of the RFC 7634
// example, which tshark marks [Malformed Packet]: frame 1 has an SK payload
// length of 80 in a 69-octet message, frame 2 an IKE header Length of 255.
func TestMalformedCapture(t *testing.T) {
	dgrams := readIKE(t, filepath.Join("testdata", "captures", "malformed-ikev2.pcap"))
	if len(dgrams) != 2 {
		t.Fatalf("%d datagrams", len(dgrams))
	}
	for i, want := range []string{"length 80 out of range", "IKE header length 255, datagram 69"} {
		_, err := Parse(dgrams[i].msg)
		var we *Error
		if !errors.As(err, &we) || we.Notify != INVALID_SYNTAX || !strings.Contains(err.Error(), want) {
			t.Errorf("frame %d: %v, want INVALID_SYNTAX %q", i+1, err, want)
		}
	}
}
