package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestNotifyDataHelpers(t *testing.T) {
	n := NewInvalidKE(KECurve25519)
	if !bytes.Equal(n.Data, []byte{0, 31}) {
		t.Fatalf("INVALID_KE_PAYLOAD data %x", n.Data)
	}
	if g, ok := n.InvalidKEGroup(); !ok || g != KECurve25519 {
		t.Fatal("InvalidKEGroup")
	}
	if _, ok := (&Notify{NotifyType: INVALID_KE_PAYLOAD, Data: []byte{1}}).InvalidKEGroup(); ok {
		t.Fatal("1-octet group accepted")
	}
	s := NewSignatureHashAlgorithms(HashSHA2_256, HashSHA2_384, HashIdentity)
	if !bytes.Equal(s.Data, []byte{0, 2, 0, 3, 0, 5}) {
		t.Fatalf("hash list %x", s.Data)
	}
	if a, ok := s.SignatureHashAlgorithms(); !ok || len(a) != 3 || a[2] != HashIdentity {
		t.Fatalf("%v %v", a, ok)
	}
	if _, ok := (&Notify{NotifyType: SIGNATURE_HASH_ALGORITHMS, Data: []byte{0, 2, 0}}).SignatureHashAlgorithms(); ok {
		t.Fatal("odd-length hash list accepted")
	}
	r := NewRekeySA(ProtoESP, 0xc0ffee01)
	if spi, ok := r.SPI32(); !ok || spi != 0xc0ffee01 || r.Protocol != ProtoESP {
		t.Fatal("REKEY_SA SPI")
	}
	// A parse error answers with the notification it carries.
	_, err := ParsePayloads(PayloadType(99), []byte{0, 0x80, 0, 4})
	if err != nil {
		t.Fatal(err) // ParsePayloads keeps critical unknown payloads
	}
	m := saInitRequestMessage()
	m.Payloads = append(m.Payloads, &RawPayload{PType: 99, Critical: true})
	b, _ := m.Encode(nil)
	_, err = Parse(b)
	var we *Error
	if !errors.As(err, &we) {
		t.Fatal(err)
	}
	if pt, ok := we.Notification().UnsupportedCriticalType(); !ok || pt != 99 {
		t.Fatalf("notification %+v", we.Notification())
	}
}
