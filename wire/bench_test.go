package wire

import "testing"

func BenchmarkParseSAInit(b *testing.B) {
	msg := saInitRequest(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSAInit(b *testing.B) {
	m := saInitRequestMessage()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Encode(nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseOpenAuth parses an IKE_AUTH request and its inner payloads
// (the copying protector costs nothing, so this is the codec alone).
func BenchmarkParseOpenAuth(b *testing.B) {
	var p nullProtector
	msg, err := authRequest().Encode(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(msg)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Open(p); err != nil {
			b.Fatal(err)
		}
		if err := CheckRules(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeFragments(b *testing.B) {
	var p nullProtector
	m := bigAuthRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.EncodeFragments(p, 1252); err != nil {
			b.Fatal(err)
		}
	}
}
