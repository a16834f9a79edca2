package wire

import (
	"bytes"
	"encoding/json"
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

// recordedSK replays a decryption tshark performed: it checks that the SK
// body wire hands over starts with the recorded IV and ends with the
// recorded ICV, and returns the recorded plaintext without its padding.
type recordedSK struct {
	iv, icv, plain []byte
}

func (r recordedSK) SealedLen(n int) int { return 0 }
func (r recordedSK) Seal([]byte, int, []byte) error {
	return errors.New("recordedSK: cannot seal")
}

func (r recordedSK) Open(msg []byte, off int) ([]byte, error) {
	body := msg[off:]
	if len(body) != len(r.iv)+len(r.plain)+len(r.icv) ||
		!bytes.Equal(body[:len(r.iv)], r.iv) || !bytes.Equal(body[len(body)-len(r.icv):], r.icv) {
		return nil, errors.New("recordedSK: body does not match the recording")
	}
	pad := int(r.plain[len(r.plain)-1])
	return r.plain[:len(r.plain)-1-pad], nil
}

// TestCaptureInnerPayloads opens the IKE_AUTH messages of the Wireshark
// captures with what tshark decrypted (testdata/captures/decrypted.json)
// and compares the inner payload sequence with tshark's.
func TestCaptureInnerPayloads(t *testing.T) {
	rec := loadDecrypted(t)
	want := map[int]string{
		3: "IKE_AUTH request 1 [ SK { IDi N(INITIAL_CONTACT) IDr AUTH SA TSi TSr N(MULTIPLE_AUTH_SUPPORTED) N(EAP_ONLY_AUTHENTICATION) } ]",
		4: "IKE_AUTH response 1 [ SK { IDr AUTH SA TSi TSr N(AUTH_LIFETIME) } ]",
	}
	if len(rec.Messages) != 4 {
		t.Fatalf("%d recorded messages", len(rec.Messages))
	}
	for _, r := range rec.Messages {
		dgrams := readIKE(t, filepath.Join("testdata", "captures", r.File))
		m, err := Parse(dgrams[r.Frame-1].msg)
		if err != nil {
			t.Fatal(err)
		}
		p := r.protector(t)
		if int(p.plain[len(p.plain)-1]) != r.PadLength {
			t.Fatalf("%s %d: pad length", r.File, r.Frame)
		}
		if err := m.Open(p); err != nil {
			t.Fatalf("%s frame %d: %v", r.File, r.Frame, err)
		}
		if got := m.String(); got != want[r.Frame] {
			t.Errorf("%s frame %d:\n got %s\nwant %s", r.File, r.Frame, got, want[r.Frame])
		}
		if err := CheckRules(m); err != nil {
			t.Errorf("%s frame %d: %v", r.File, r.Frame, err)
		}
		// tshark: ID type 1 (ID_IPV4_ADDR), TS type 7 on both sides.
		id := Find(m.Inner, PayloadIDr).(*ID)
		tsi := Find(m.Inner, PayloadTSi).(*TS)
		if id.IDType != ID_IPV4_ADDR || len(tsi.Selectors) != 1 || tsi.Selectors[0].TSType() != TS_IPV4_ADDR_RANGE {
			t.Errorf("%s frame %d: IDr %v, TSi %+v", r.File, r.Frame, id.IDType, tsi.Selectors)
		}
		// Re-encoding the inner payloads gives the recorded plaintext.
		enc, err := AppendPayloads(nil, m.Inner, PayloadNone)
		if err != nil || !bytes.Equal(enc, p.plain[:len(p.plain)-1-r.PadLength]) {
			t.Errorf("%s frame %d: inner payloads re-encode differently (%v)", r.File, r.Frame, err)
		}
	}
}

type decryptedMsg struct {
	File      string `json:"file"`
	Frame     int    `json:"frame"`
	IV        string `json:"iv"`
	ICV       string `json:"icv"`
	PadLength int    `json:"pad_length"`
	Plaintext string `json:"plaintext"`
}

func (r decryptedMsg) protector(tb testing.TB) recordedSK {
	return recordedSK{unhex(tb, r.IV), unhex(tb, r.ICV), unhex(tb, r.Plaintext)}
}

// loadDecrypted reads testdata/captures/decrypted.json.
func loadDecrypted(tb testing.TB) (rec struct{ Messages []decryptedMsg }) {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "captures", "decrypted.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		tb.Fatal(err)
	}
	return rec
}

// capturedInner returns the inner payloads of the recorded IKE_AUTH
// messages, for fuzz seeds.
func capturedInner(tb testing.TB) []Payload {
	var out []Payload
	for _, r := range loadDecrypted(tb).Messages {
		dgrams := readIKE(tb, filepath.Join("testdata", "captures", r.File))
		m, err := Parse(dgrams[r.Frame-1].msg)
		if err != nil {
			tb.Fatal(err)
		}
		if err := m.Open(r.protector(tb)); err != nil {
			tb.Fatal(err)
		}
		out = append(out, m.Inner...)
	}
	return out
}
