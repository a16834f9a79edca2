package esp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// espVector is one complete ESP packet from testdata/esp_vectors.json, copied
// from shared/vectors: RFC 3602 §4 cases 5-8, draft-mcgrew-gcm-test-01
// cases 1-5 and RFC 7634 Appendix A. Each entry keeps its "source".
type espVector struct {
	ID         string `json:"id"`
	File       string `json:"file"`
	Key        string `json:"key"`
	Salt       string `json:"salt"`
	SPI        string `json:"spi"`
	Seq        uint64 `json:"seq"`
	IV         string `json:"iv"`
	AAD        string `json:"aad"`
	Payload    string `json:"payload"`
	Plaintext  string `json:"plaintext"`
	NextHeader int    `json:"next_header"`
	ESPPacket  string `json:"esp_packet"`
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadVectors(t testing.TB) []espVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/esp_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Vectors []espVector }
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != 10 {
		t.Fatalf("want 10 ESP vectors, got %d", len(f.Vectors))
	}
	return f.Vectors
}

// vectorCase turns a vector into an SA config, the full sequence number, the
// payload and Next Header it must decrypt to.
func vectorCase(t *testing.T, v espVector) (c Config, seq uint64, payload []byte, nh byte) {
	pkt := unhex(t, v.ESPPacket)
	c = Config{SPI: binary.BigEndian.Uint32(pkt), Mode: Transport}
	seq = uint64(binary.BigEndian.Uint32(pkt[4:]))
	switch v.File {
	case "aes_cbc_esp.json":
		// RFC 3602 §4: encryption only, no ICV.
		c.Encr, c.EncrKey = wire.EncrAES_CBC, unhex(t, v.Key)
		return c, v.Seq, unhex(t, v.Payload), byte(v.NextHeader)
	case "aes_gcm.json":
		c.Encr = wire.EncrAES_GCM_16
	case "chacha20poly1305.json":
		c.Encr = wire.EncrCHACHA20_POLY1305
	default:
		t.Fatalf("unknown vector file %q", v.File)
	}
	c.EncrKey = append(unhex(t, v.Key), unhex(t, v.Salt)...)
	if aad := unhex(t, v.AAD); len(aad) == 12 { // SPI | ESN high | ESN low
		c.ESN = true
		seq = binary.BigEndian.Uint64(aad[4:])
	}
	pt := unhex(t, v.Plaintext)
	pad := int(pt[len(pt)-2])
	return c, seq, pt[:len(pt)-2-pad], pt[len(pt)-1]
}

// TestKnownAnswers opens each published ESP packet and seals its payload
// again with the same SPI, sequence number and IV: the bytes must match.
func TestKnownAnswers(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.ID, func(t *testing.T) {
			c, seq, payload, nh := vectorCase(t, v)
			want := unhex(t, v.ESPPacket)

			in, err := NewInbound(c)
			if err != nil {
				t.Fatal(err)
			}
			if c.ESN {
				// Put the window just below the vector's ESN so that
				// RFC 4303 Appendix A2.2 infers its high 32 bits.
				in.window.top = seq - 1
			}
			pkt := append([]byte(nil), want...)
			got, gotNH, gotSeq, err := in.Open(pkt)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got, payload) || gotNH != nh || gotSeq != seq {
				t.Fatalf("Open = %x nh %d seq %#x, want %x nh %d seq %#x", got, gotNH, gotSeq, payload, nh, seq)
			}
			if cn := in.Counters(); cn.Packets != 1 || cn.Bytes != uint64(len(payload)) {
				t.Errorf("inbound counters %+v", cn)
			}

			out, err := NewOutbound(c)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, out.HeaderLen(), out.HeaderLen()+len(payload)+out.MaxTrailerLen())
			buf = append(buf, payload...)
			iv := want[8:out.HeaderLen()]
			sealed, err := out.seal(buf, len(payload), nh, seq, iv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sealed, want) {
				t.Fatalf("re-encrypted packet differs:\n got %x\nwant %x", sealed, want)
			}
			if out.SealedLen(len(payload)) != len(want) {
				t.Errorf("SealedLen = %d, want %d", out.SealedLen(len(payload)), len(want))
			}
		})
	}
}

// TestSealDerivesAEADIV checks that for AEAD the IV Seal writes is the
// 64-bit sequence number (RFC 4106 §3.1) and the Seq field its low half.
func TestSealDerivesAEADIV(t *testing.T) {
	c := Config{SPI: 0x1000, Encr: wire.EncrAES_GCM_16, EncrKey: make([]byte, 20), ESN: true}
	out, _ := NewOutbound(c)
	out.SetLastSeq(0x1122334455 - 1)
	buf := make([]byte, out.HeaderLen()+4, 128)
	pkt, err := out.Seal(buf, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(pkt[8:16]); got != 0x1122334455 {
		t.Fatalf("IV = %#x, want the sequence number", got)
	}
	if got := binary.BigEndian.Uint32(pkt[4:8]); got != 0x22334455 {
		t.Fatalf("Seq field = %#x, want low 32 bits", got)
	}
}
