package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// rfc7634Vector is RFC 7634 Appendix B (see testdata/rfc7634_ikev2_example.json).
type rfc7634Vector struct {
	AAD, IV, Plaintext, CiphertextAndTag, IKEMessage []byte
}

func loadRFC7634(t *testing.T) rfc7634Vector {
	t.Helper()
	raw, err := os.ReadFile("testdata/rfc7634_ikev2_example.json")
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		AAD        string `json:"aad"`
		IV         string `json:"iv"`
		Plaintext  string `json:"plaintext"`
		CT         string `json:"ciphertext_and_tag"`
		IKEMessage string `json:"ike_message"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	dec := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return rfc7634Vector{dec(j.AAD), dec(j.IV), dec(j.Plaintext), dec(j.CT), dec(j.IKEMessage)}
}

// recordedAEAD replays one recorded AEAD operation: it is no cipher, but it
// checks that wire hands it exactly the associated data, IV position and
// plaintext the published example used (RFC 7634 §3 / RFC 5282 §5.1:
// AAD = IKE header + SK payload header; body = IV | ciphertext | 16-octet ICV;
// plaintext = inner payloads | padding | Pad Length).
type recordedAEAD struct {
	v rfc7634Vector
}

func (r recordedAEAD) SealedLen(n int) int { return len(r.v.IV) + n + 1 + 16 }

func (r recordedAEAD) Seal(msg []byte, off int, plain []byte) error {
	if !bytes.Equal(msg[:off], r.v.AAD) {
		return errors.New("AAD differs")
	}
	if !bytes.Equal(append(bytes.Clone(plain), 0), r.v.Plaintext) {
		return errors.New("plaintext differs")
	}
	copy(msg[off:], r.v.IV)
	copy(msg[off+len(r.v.IV):], r.v.CiphertextAndTag)
	return nil
}

func (r recordedAEAD) Open(msg []byte, off int) ([]byte, error) {
	body := msg[off:]
	if !bytes.Equal(msg[:off], r.v.AAD) || !bytes.Equal(body[:8], r.v.IV) || !bytes.Equal(body[8:], r.v.CiphertextAndTag) {
		return nil, errors.New("not the recorded message")
	}
	pad := int(r.v.Plaintext[len(r.v.Plaintext)-1])
	return r.v.Plaintext[:len(r.v.Plaintext)-1-pad], nil
}

func TestRFC7634Example(t *testing.T) {
	v := loadRFC7634(t)
	p := recordedAEAD{v}

	// Opening: the published message, inner N(SET_WINDOW_SIZE) = 10.
	m, err := Parse(v.IKEMessage)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(p); err != nil {
		t.Fatal(err)
	}
	if len(m.Inner) != 1 {
		t.Fatalf("inner %v", m)
	}
	n, ok := m.Inner[0].(*Notify)
	if !ok || n.NotifyType != SET_WINDOW_SIZE || !bytes.Equal(n.Data, []byte{0, 0, 0, 10}) {
		t.Fatalf("inner payload %#v", m.Inner[0])
	}
	if err := CheckRules(m); err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "INFORMATIONAL request 9 [ SK { N(SET_WINDOW_SIZE) } ]" {
		t.Errorf("summary %q", got)
	}

	// Sealing: building the same message gives the published octets.
	out := &Message{
		Header: Header{SPIi: 0xc0c1c2c3c4c5c6c7, SPIr: 0xd0d1d2d3d4d5d6d7, Exchange: INFORMATIONAL, MessageID: 9},
		Inner:  []Payload{&Notify{NotifyType: SET_WINDOW_SIZE, Data: []byte{0, 0, 0, 10}}},
	}
	b, err := out.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, v.IKEMessage) {
		t.Fatalf("sealed\n got %x\nwant %x", b, v.IKEMessage)
	}
}
