package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// FuzzEstablishedRequest feeds authenticated CREATE_CHILD_SA and
// INFORMATIONAL requests with arbitrary inner payloads to an established
// responder (child create and rekey, IKE rekey, deletes, INVALID_SPI): the
// paths this file's issue added must never panic on what a peer with valid
// keys sends, and the SA keeps answering.
func FuzzEstablishedRequest(f *testing.F) {
	ts := []wire.Payload{toWireTS([]TrafficSelector{pfx("10.1.0.0/16")}, false), toWireTS([]TrafficSelector{pfx("10.2.0.0/16")}, true)}
	esp := toWireSA([][]wire.Transform{{gcm256, ecp256, tr(wire.TransformESN, 0, 0)}}, wire.ProtoESP, []byte{1, 2, 3, 4})
	ikeSA := toWireSA(defaultIKEProposals, wire.ProtoIKE, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	nonce := &wire.Nonce{Data: make([]byte, 32)}
	ke := &wire.KE{Group: wire.KEECP256, Data: make([]byte, 64)}
	seeds := [][]wire.Payload{
		append([]wire.Payload{esp, nonce, ke}, ts...),
		append([]wire.Payload{wire.NewRekeySA(wire.ProtoESP, 0x1234), esp, nonce}, ts...),
		{ikeSA, nonce, ke},
		{&wire.Delete{Protocol: wire.ProtoESP, SPIs: []uint32{1, 2}}},
		{&wire.Notify{NotifyType: wire.INVALID_SPI, Protocol: wire.ProtoESP, Data: []byte{0, 0, 1, 0}}},
	}
	for i, s := range seeds {
		b, err := wire.AppendPayloads(nil, s, wire.PayloadNone)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(s[0].Type()), b, i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, first uint8, body []byte, ccsa bool) {
		inner, err := wire.ParsePayloads(wire.PayloadType(first), body)
		if err != nil {
			return
		}
		ca := pskConn("gw", addrA, addrB, "k")
		p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
		spi, _, _ := p.establish("gw")
		asa := p.a.ep.SA(spi)
		exch := wire.INFORMATIONAL
		if ccsa {
			exch = wire.CREATE_CHILD_SA
		}
		m := wire.Message{Header: wire.Header{SPIi: asa.spiI, SPIr: asa.spiR, Exchange: exch, MessageID: 2, Flags: wire.FlagInitiator}}
		m.Inner = inner
		b, err := m.Encode(asa.prot)
		if err != nil {
			return
		}
		p.deliver(p.b, Datagram{Src: addrA, Dst: addrB, Data: b})
		for i := 0; i < 50; i++ {
			d, ok := p.b.ep.NextDeadline()
			if !ok {
				break
			}
			p.now = d.Add(time.Millisecond)
			p.tick(p.b)
		}
	})
}
