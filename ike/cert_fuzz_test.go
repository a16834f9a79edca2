package ike

import (
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// FuzzDescribePeerAuth: describeLocal also reads the peer's AUTH and CERT
// payloads (for the session listing of a PSK-verified peer), so arbitrary
// octets there must not panic.
func FuzzDescribePeerAuth(f *testing.F) {
	f.Add(uint8(14), []byte{0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, []byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add(uint8(14), []byte{0xff}, []byte{})
	f.Add(uint8(2), []byte{}, []byte{0x30})
	f.Fuzz(func(t *testing.T, method uint8, auth, certDER []byte) {
		s := describeLocal([]wire.Payload{&wire.Cert{Encoding: wire.CertX509Signature, Data: certDER},
			&wire.Auth{Method: wire.AuthMethod(method), Data: auth}})
		if s.Method != wire.AuthMethod(method) {
			t.Fatalf("method %v, want %v", s.Method, method)
		}
		_ = s.String()
	})
}
