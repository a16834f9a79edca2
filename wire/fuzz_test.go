package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Fuzz targets: parse -> encode -> parse for every payload type and for
// whole messages. Seeds come from the hand-written payload bodies, the
// captures and messages built here; corpora live in testdata/fuzz/<Target>/.

// roundTripChain parses body as one payload of type typ, re-encodes it and
// parses again; both parses must agree, and so must both encodings.
func roundTripChain(t *testing.T, typ PayloadType, body []byte) {
	if len(body) > maxPayloadLen-genericHeaderLen {
		return
	}
	chain := binary.BigEndian.AppendUint16([]byte{0, 0}, uint16(genericHeaderLen+len(body)))
	chain = append(chain, body...)
	p1, err := ParsePayloads(typ, chain)
	if err != nil {
		var we *Error
		if !errors.As(err, &we) {
			t.Fatalf("error is not *Error: %v", err)
		}
		return
	}
	enc1, err := AppendPayloads(nil, p1, PayloadNone)
	if err != nil {
		t.Fatalf("parsed payload does not encode: %v", err)
	}
	if len(enc1) != len(chain) {
		t.Fatalf("re-encoded length %d, parsed %d", len(enc1), len(chain))
	}
	p2, err := ParsePayloads(typ, enc1)
	if err != nil {
		t.Fatalf("re-encoded payload does not parse: %v\n%x", err, enc1)
	}
	if !reflect.DeepEqual(p1, p2) {
		t.Fatalf("round trip changed the payload:\n%#v\n%#v", p1[0], p2[0])
	}
	enc2, _ := AppendPayloads(nil, p2, PayloadNone)
	if !bytes.Equal(enc1, enc2) {
		t.Fatalf("encodings differ:\n%x\n%x", enc1, enc2)
	}
}

// payloadSeeds returns the bodies of every payload of type typ found in the
// hand-written cases and the capture messages.
func payloadSeeds(f testing.TB, typ PayloadType) [][]byte {
	var seeds [][]byte
	for _, tc := range payloadCases {
		if tc.p.Type() == typ {
			seeds = append(seeds, tc.p.AppendBody(nil))
		}
	}
	for _, p := range append(append(authRequest().Inner, bigAuthRequest().Inner[1]), capturedInner(f)...) {
		if p.Type() == typ {
			seeds = append(seeds, p.AppendBody(nil))
		}
	}
	for _, m := range seedMessages(f) {
		mm, err := Parse(m)
		if err != nil {
			continue
		}
		for _, p := range mm.Payloads {
			if p.Type() == typ {
				seeds = append(seeds, p.AppendBody(nil))
			}
		}
	}
	return seeds
}

// payloadTargets maps each per-payload fuzz target to its payload type
// and any extra seeds.
var payloadTargets = map[string]struct {
	typ   PayloadType
	extra func(testing.TB) [][]byte
}{
	"FuzzPayloadSA":      {PayloadSA, func(tb testing.TB) [][]byte { return [][]byte{saInitRequest(tb)[HeaderLen+4 : HeaderLen+48]} }},
	"FuzzPayloadKE":      {PayloadKE, nil},
	"FuzzPayloadIDi":     {PayloadIDi, nil},
	"FuzzPayloadIDr":     {PayloadIDr, nil},
	"FuzzPayloadCERT":    {PayloadCERT, nil},
	"FuzzPayloadCERTREQ": {PayloadCERTREQ, nil},
	"FuzzPayloadAUTH":    {PayloadAUTH, nil},
	"FuzzPayloadNonce":   {PayloadNonce, nil},
	"FuzzPayloadN":       {PayloadN, nil},
	"FuzzPayloadD":       {PayloadD, nil},
	"FuzzPayloadV":       {PayloadV, nil},
	"FuzzPayloadTSi":     {PayloadTSi, nil},
	"FuzzPayloadTSr":     {PayloadTSr, nil},
	"FuzzPayloadSK":      {PayloadSK, func(testing.TB) [][]byte { return [][]byte{{1, 2, 3}} }},
	"FuzzPayloadCP":      {PayloadCP, nil},
	"FuzzPayloadEAP":     {PayloadEAP, nil},
	"FuzzPayloadSKF":     {PayloadSKF, func(testing.TB) [][]byte { return [][]byte{{0, 2, 0, 3, 9, 9}} }},
	"FuzzPayloadUnknown": {PayloadType(77), func(testing.TB) [][]byte { return [][]byte{{1}} }},
}

// targetSeeds returns the seeds of a fuzz target.
func targetSeeds(tb testing.TB, target string) [][]byte {
	if target == "FuzzMessage" {
		return seedMessages(tb)
	}
	pt, ok := payloadTargets[target]
	if !ok {
		tb.Fatalf("unknown fuzz target %s", target)
	}
	seeds := payloadSeeds(tb, pt.typ)
	if pt.extra != nil {
		seeds = append(seeds, pt.extra(tb)...)
	}
	return seeds
}

func fuzzPayload(f *testing.F, target string) {
	for _, s := range targetSeeds(f, target) {
		f.Add(s)
	}
	typ := payloadTargets[target].typ
	f.Fuzz(func(t *testing.T, body []byte) { roundTripChain(t, typ, body) })
}

func FuzzPayloadSA(f *testing.F)      { fuzzPayload(f, "FuzzPayloadSA") }
func FuzzPayloadKE(f *testing.F)      { fuzzPayload(f, "FuzzPayloadKE") }
func FuzzPayloadIDi(f *testing.F)     { fuzzPayload(f, "FuzzPayloadIDi") }
func FuzzPayloadIDr(f *testing.F)     { fuzzPayload(f, "FuzzPayloadIDr") }
func FuzzPayloadCERT(f *testing.F)    { fuzzPayload(f, "FuzzPayloadCERT") }
func FuzzPayloadCERTREQ(f *testing.F) { fuzzPayload(f, "FuzzPayloadCERTREQ") }
func FuzzPayloadAUTH(f *testing.F)    { fuzzPayload(f, "FuzzPayloadAUTH") }
func FuzzPayloadNonce(f *testing.F)   { fuzzPayload(f, "FuzzPayloadNonce") }
func FuzzPayloadN(f *testing.F)       { fuzzPayload(f, "FuzzPayloadN") }
func FuzzPayloadD(f *testing.F)       { fuzzPayload(f, "FuzzPayloadD") }
func FuzzPayloadV(f *testing.F)       { fuzzPayload(f, "FuzzPayloadV") }
func FuzzPayloadTSi(f *testing.F)     { fuzzPayload(f, "FuzzPayloadTSi") }
func FuzzPayloadTSr(f *testing.F)     { fuzzPayload(f, "FuzzPayloadTSr") }
func FuzzPayloadSK(f *testing.F)      { fuzzPayload(f, "FuzzPayloadSK") }
func FuzzPayloadCP(f *testing.F)      { fuzzPayload(f, "FuzzPayloadCP") }
func FuzzPayloadEAP(f *testing.F)     { fuzzPayload(f, "FuzzPayloadEAP") }
func FuzzPayloadSKF(f *testing.F)     { fuzzPayload(f, "FuzzPayloadSKF") }
func FuzzPayloadUnknown(f *testing.F) { fuzzPayload(f, "FuzzPayloadUnknown") }

// TestWriteFuzzSeeds writes every target's seeds into
// testdata/fuzz/<Target>/ in the go fuzz corpus format. Run with
// WIRE_WRITE_SEEDS=1 after changing the seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WIRE_WRITE_SEEDS") == "" {
		t.Skip("set WIRE_WRITE_SEEDS=1 to rewrite testdata/fuzz seeds")
	}
	targets := []string{"FuzzMessage"}
	for name := range payloadTargets {
		targets = append(targets, name)
	}
	for _, target := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, s := range targetSeeds(t, target) {
			sum := seedName(s)
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+sum), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// seedName names a seed file by its content without importing crypto: an
// FNV-64a hash is enough to tell seeds apart.
func seedName(b []byte) string {
	h := fnv.New64a()
	h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

// seedMessages returns whole messages: the hand-checked IKE_SA_INIT, the
// captures, and protected/fragmented messages built with the test protector.
func seedMessages(tb testing.TB) [][]byte {
	out := [][]byte{saInitRequest(tb)}
	for _, file := range []string{"ikev2-decrypt-aes256cbc.pcapng", "ikev2-decrypt-aes256ccm16.pcapng",
		"rfc7634-ikev2-example.pcap", "malformed-ikev2.pcap"} {
		for _, d := range readIKE(tb, filepath.Join("testdata", "captures", file)) {
			out = append(out, d.msg)
		}
	}
	p := nullProtector{}
	if b, err := authRequest().Encode(p); err == nil {
		out = append(out, b)
	}
	// The captured IKE_AUTH contents, re-sealed with the copying protector.
	inner := capturedInner(tb)
	for _, cut := range []int{9, len(inner)} { // request (9 payloads), then all
		m := &Message{Header: Header{SPIi: 1, SPIr: 2, Exchange: IKE_AUTH, MessageID: 1}, Inner: inner[:cut]}
		if b, err := m.Encode(p); err == nil {
			out = append(out, b)
		}
	}
	if frags, err := bigAuthRequest().EncodeFragments(p, 1000); err == nil {
		out = append(out, frags[0], frags[len(frags)-1])
	}
	return out
}

// nullProtector "encrypts" by copying: its body is the plaintext itself, so
// the fuzzer reaches the inner payload parser through Open.
type nullProtector struct{}

func (nullProtector) SealedLen(n int) int { return n }
func (nullProtector) Seal(msg []byte, off int, plain []byte) error {
	copy(msg[off:], plain)
	return nil
}
func (nullProtector) Open(msg []byte, off int) ([]byte, error) { return msg[off:], nil }

func FuzzMessage(f *testing.F) {
	for _, m := range seedMessages(f) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error is not *Error: %v", err)
			}
			return
		}
		_ = CheckRules(m) // must not panic
		for _, p := range m.Payloads {
			_ = Describe(p)
		}
		_ = m.String()
		enc1, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("parsed message does not encode: %v", err)
		}
		m2, err := Parse(enc1)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if m.Header != m2.Header || !reflect.DeepEqual(m.Payloads, m2.Payloads) {
			t.Fatalf("round trip changed the message")
		}
		// Inner payloads: open with the copying protector, then seal them
		// again and compare.
		var p nullProtector
		if m.Encrypted() != nil {
			if err := m.Open(p); err != nil {
				return
			}
			m.Payloads = m.Payloads[:len(m.Payloads)-1]
			sealed, err := m.Encode(p)
			if err != nil {
				t.Fatalf("opened message does not seal: %v", err)
			}
			m3, err := Parse(sealed)
			if err != nil {
				t.Fatalf("sealed message does not parse: %v", err)
			}
			if err := m3.Open(p); err != nil {
				t.Fatalf("sealed message does not open: %v", err)
			}
			if !reflect.DeepEqual(m.Inner, m3.Inner) {
				t.Fatal("inner payloads changed")
			}
			for _, p := range m.Inner {
				_ = Describe(p)
			}
		}
		if m.Fragment() != nil {
			plain, err := m.OpenFragment(p)
			if err != nil {
				t.Fatal(err)
			}
			r := NewReassembler(16, 1<<16)
			_, _ = r.Add(m, plain)
			if r.Buffered() > 1<<16 || r.Pending() > 1 {
				t.Fatal("reassembler over its bounds")
			}
		}
	})
}

// FuzzReassembler feeds the Reassembler a sequence of fragments described by
// the input: per fragment one octet of flags (message ID, direction, next
// payload), Number, Total and a length-prefixed plaintext. It checks the
// bounds and that whatever completes is the concatenation of the parts.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{0, 1, 1, 4, 0, 0, 0, 8})
	f.Add([]byte{0x10, 1, 2, 3, 'a', 'b', 'c', 0, 2, 2, 1, 'd'})
	inner, _ := AppendPayloads(nil, authRequest().Inner, PayloadNone)
	f.Add(append([]byte{0x23, 1, 1, byte(len(inner))}, inner[:min(255, len(inner))]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxFrags, maxBytes = 8, 512
		r := NewReassembler(maxFrags, maxBytes)
		for len(b) >= 4 {
			flags, num, total, n := b[0], uint16(b[1]), uint16(b[2]), int(b[3])
			b = b[4:]
			n = min(n, len(b))
			plain := b[:n]
			b = b[n:]
			next := PayloadNone
			if flags&0x20 != 0 {
				next = PayloadIDi
			}
			h := Header{MessageID: uint32(flags & 3), Exchange: IKE_AUTH}
			if flags&0x10 != 0 {
				h.Flags = FlagResponse
			}
			m := &Message{Header: h, Payloads: []Payload{&Fragment{NextPayload: next, Number: num, Total: total}}}
			_, _ = r.Add(m, plain)
			if r.Buffered() > maxBytes || r.Buffered() < 0 || r.Pending() > 8 {
				t.Fatalf("buffered %d, pending %d", r.Buffered(), r.Pending())
			}
		}
	})
}
