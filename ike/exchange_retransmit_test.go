package ike

import (
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

// TestRetransmitBackoff: on a fake clock, an unanswered request is sent
// again after 4 s × 1.8^n, five times, and the SA gives up after the last
// wait (RFC 7296 §2.1, strongSwan's defaults).
//
//	A: IKE_SA_INIT        t=0      -->  (lost)
//	A: IKE_SA_INIT        t=4      -->  (lost)
//	A: IKE_SA_INIT        t=11.2   -->  (lost)
//	...                   5 retransmissions
//	A gives up            t=4·Σ1.8^0..5   IKE down "timeout"
func TestRetransmitBackoff(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, nil)
	spi, first := p.initiate("gw")
	var at time.Duration
	for n := 0; n <= 5; n++ {
		want := 4 * time.Second
		for i := 0; i < n; i++ {
			want = want * 18 / 10
		}
		at += want
		d, ok := p.a.ep.NextDeadline()
		if !ok || d.Sub(t0).Round(time.Millisecond) != at.Round(time.Millisecond) {
			t.Fatalf("step %d: deadline %v, want t0+%v", n, d.Sub(t0), at)
		}
		// Just before the deadline nothing happens.
		p.a.out.Reset()
		p.a.ep.Tick(d.Add(-time.Millisecond), &p.a.out)
		if len(p.a.out.Datagrams) != 0 {
			t.Fatalf("step %d: sent early", n)
		}
		p.a.ep.Tick(d, &p.a.out)
		if n < 5 {
			if len(p.a.out.Datagrams) != 1 || string(p.a.out.Datagrams[0].Data) != string(first.Data) {
				t.Fatalf("step %d: want the same request again", n)
			}
			continue
		}
		if len(p.a.out.Datagrams) != 0 || p.a.ep.SA(spi) != nil {
			t.Fatal("did not give up after 5 retransmissions")
		}
		ev := events(&p.a.out, EventIKEDown)
		if len(ev) != 1 || ev[0].Reason != "timeout" {
			t.Fatalf("events %+v", p.a.out.Events)
		}
	}
	if st := p.a.ep.Stats(); st.Retransmitted != 5 {
		t.Errorf("Retransmitted = %d", st.Retransmitted)
	}
	if _, ok := p.a.ep.NextDeadline(); ok {
		t.Error("timer left armed after give-up")
	}
}

// TestRetransmitConfigured: a custom schedule (1 s × 2^n, 2 tries).
func TestRetransmitConfigured(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	ca.Retransmit = Retransmit{Timeout: time.Second, Base: 2, Tries: 2}
	p := newPair(t, []*Connection{ca}, nil)
	spi, _ := p.initiate("gw")
	for _, at := range []time.Duration{time.Second, 3 * time.Second} {
		p.a.ep.Tick(t0.Add(at), &p.a.out)
	}
	if p.a.ep.SA(spi) == nil {
		t.Fatal("gave up too early")
	}
	p.a.ep.Tick(t0.Add(7*time.Second), &p.a.out)
	if p.a.ep.SA(spi) != nil {
		t.Fatal("did not give up at 1+2+4 s")
	}
}

// TestRetransmittedRequestAnsweredFromCache: the responder answers a
// retransmitted request with its cached response, byte for byte, without
// processing it again (no second Child SA, no second event).
//
//	A: IKE_AUTH (MID 1)   -->
//	                      <--  IKE_AUTH response (lost)
//	A: IKE_AUTH (MID 1)   -->  (retransmission after 4 s)
//	                      <--  same response octets
func TestRetransmittedRequestAnsweredFromCache(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	_, req := p.initiate("gw")
	// IKE_SA_INIT retransmission too.
	resp := p.exchange(p.b, req)
	if again := p.exchange(p.b, req); string(again.Data) != string(resp.Data) {
		t.Fatal("IKE_SA_INIT retransmission not answered from cache")
	}
	auth := p.exchange(p.a, resp)
	first := p.deliver(p.b, auth)
	firstResp := string(first.Datagrams[0].Data)
	p.now = p.now.Add(4 * time.Second)
	p.a.out.Reset()
	p.a.ep.Tick(p.now, &p.a.out)
	re := p.one(&p.a.out)
	if string(re.Data) != string(auth.Data) {
		t.Fatal("retransmission differs from the original request")
	}
	out := p.deliver(p.b, re)
	if len(out.Datagrams) != 1 || string(out.Datagrams[0].Data) != firstResp {
		t.Fatal("retransmitted request not answered with the cached response")
	}
	if len(out.Events) != 0 || len(out.Ops) != 0 {
		t.Fatalf("retransmission was processed again: %+v %+v", out.Events, out.Ops)
	}
	if st := p.b.ep.Stats(); st.Retransmits != 2 {
		t.Errorf("Retransmits = %d, want 2", st.Retransmits)
	}
	aout := p.deliver(p.a, out.Datagrams[0])
	if len(events(aout, EventIKEUp)) != 1 {
		t.Fatal("not established")
	}
}

// TestMessageIDValidation: duplicate and replayed responses, requests
// outside the window, and wrongly flagged messages are dropped and counted
// (RFC 7296 §2.2, §2.3).
func TestMessageIDValidation(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, req := p.initiate("gw")
	resp := p.exchange(p.b, req)
	auth := p.exchange(p.a, resp)
	authResp := p.exchange(p.b, auth)
	p.deliver(p.a, authResp)
	asa := p.a.ep.SA(spi)
	if !asa.Established() {
		t.Fatal("setup failed")
	}

	// A duplicate IKE_AUTH response: nothing in flight any more.
	if out := p.deliver(p.a, authResp); len(out.Datagrams)+len(out.Events)+len(out.Ops) != 0 {
		t.Fatal("duplicate response processed")
	}
	if p.a.ep.Stats().DroppedWindow != 1 {
		t.Errorf("DroppedWindow = %d", p.a.ep.Stats().DroppedWindow)
	}
	// A replayed IKE_SA_INIT response to the established SA.
	p.deliver(p.a, resp)
	if p.a.ep.Stats().DroppedWindow != 2 {
		t.Errorf("replayed IKE_SA_INIT response: DroppedWindow = %d", p.a.ep.Stats().DroppedWindow)
	}

	// Requests from A to B: the next one must be MID 2. Build one with
	// MID 5 (out of window) and one with the I flag cleared (wrong
	// flags), both correctly encrypted.
	mk := func(mid uint32, flags wire.Flags) Datagram {
		m := wire.Message{Header: wire.Header{SPIi: asa.spiI, SPIr: asa.spiR, Exchange: wire.INFORMATIONAL, MessageID: mid, Flags: flags}}
		b, err := m.Encode(asa.prot)
		if err != nil {
			t.Fatal(err)
		}
		return Datagram{Src: addrA, Dst: addrB, Data: b}
	}
	if out := p.deliver(p.b, mk(5, wire.FlagInitiator)); len(out.Datagrams) != 0 {
		t.Fatal("out-of-window request answered")
	}
	if out := p.deliver(p.b, mk(1, wire.FlagInitiator)); len(out.Datagrams) != 1 || string(out.Datagrams[0].Data) != string(authResp.Data) {
		t.Fatal("old request (MID 1) must get the cached IKE_AUTH response")
	}
	if out := p.deliver(p.b, mk(0, wire.FlagInitiator)); len(out.Datagrams) != 0 {
		t.Fatal("request older than the window answered")
	}
	before := p.b.ep.Stats().DroppedFlags
	if out := p.deliver(p.b, mk(2, 0)); len(out.Datagrams) != 0 || p.b.ep.Stats().DroppedFlags != before+1 {
		t.Fatal("request without the I flag from the initiator not dropped")
	}
	// A tampered request fails its ICV and is dropped silently.
	d := mk(2, wire.FlagInitiator)
	d.Data[len(d.Data)-1] ^= 1
	if out := p.deliver(p.b, d); len(out.Datagrams) != 0 || p.b.ep.Stats().DroppedICV != 1 {
		t.Fatal("tampered request not dropped")
	}
	// The well-formed MID 2 request (an empty INFORMATIONAL, liveness)
	// gets an empty response.
	out := p.deliver(p.b, mk(2, wire.FlagInitiator))
	if len(out.Datagrams) != 1 || len(innerOf(t, asa, out.Datagrams[0])) != 0 {
		t.Fatal("liveness check not answered")
	}
}

// TestInvalidSPI: protected requests for an unknown IKE SA get
// INVALID_IKE_SPI (RFC 7296 §2.21.4), at most InvalidSPIRate per second.
func TestInvalidSPI(t *testing.T) {
	cfg := DefaultEndpointConfig()
	cfg.InvalidSPIRate = 3
	b := newEndpoint(t, 3, cfg)
	m := wire.Message{Header: wire.Header{SPIi: 1, SPIr: 2, Exchange: wire.INFORMATIONAL, MessageID: 7, Flags: wire.FlagInitiator}}
	m.Payloads = []wire.Payload{&wire.Encrypted{NextPayload: wire.PayloadNone, Body: make([]byte, 40)}}
	data, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	send := func(at time.Time, k int) (answered int) {
		for i := 0; i < k; i++ {
			var out Output
			b.HandleDatagram(at, addrA, addrB, data, &out)
			for _, d := range out.Datagrams {
				rm, ps := outerPayloads(t, d)
				if !hasNotify(ps, wire.INVALID_IKE_SPI) || rm.Header.MessageID != 7 || !rm.Header.IsResponse() || rm.Header.Flags.Initiator() {
					t.Fatalf("bad INVALID_IKE_SPI answer %+v %v", rm.Header, ps)
				}
				answered++
			}
		}
		return answered
	}
	// A burst of 3 (the bucket starts full), then 3 per second.
	if got := send(t0, 10); got != 3 {
		t.Fatalf("answered %d of 10 at t0, want 3", got)
	}
	if got := send(t0.Add(500*time.Millisecond), 10); got != 1 {
		t.Fatalf("answered %d after 0.5 s, want 1", got)
	}
	if got := send(t0.Add(10*time.Second), 10); got != 3 {
		t.Fatalf("answered %d after 10 s, want 3 (bucket capped)", got)
	}
	if st := b.Stats(); st.InvalidSPISent != 7 || st.InvalidSPILimited != 23 {
		t.Fatalf("stats %+v", st)
	}
	if b.Len() != 0 {
		t.Fatal("state kept")
	}
}

// TestPayloadRules: an authenticated request that breaks its exchange's
// payload rules is answered with INVALID_SYNTAX, one with an unknown
// critical payload with UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §2.5,
// §2.21.1); no task sees them and the SA stays up.
//
//	A: HDR(INFORMATIONAL), SK{SA}       -->
//	                                    <--  HDR, SK{N(INVALID_SYNTAX)}
//	A: HDR(INFORMATIONAL), SK{C:PAYLOAD(200)}  -->
//	                                    <--  HDR, SK{N(UNSUPPORTED_CRITICAL_PAYLOAD, 200)}
func TestPayloadRules(t *testing.T) {
	ca := pskConn("gw", addrA, addrB, "k")
	p := newPair(t, []*Connection{ca}, []*Connection{mirror(ca)})
	spi, _, _ := p.establish("gw")
	asa := p.a.ep.SA(spi)
	mk := func(mid uint32, inner wire.Payload) Datagram {
		m := wire.Message{Header: wire.Header{SPIi: asa.spiI, SPIr: asa.spiR, Exchange: wire.INFORMATIONAL, MessageID: mid, Flags: wire.FlagInitiator}}
		m.Inner = []wire.Payload{inner}
		b, err := m.Encode(asa.prot)
		if err != nil {
			t.Fatal(err)
		}
		return Datagram{Src: addrA, Dst: addrB, Data: b}
	}
	sa := toWireSA([][]wire.Transform{{gcm256}}, wire.ProtoESP, []byte{1, 2, 3, 4})
	out := p.deliver(p.b, mk(2, sa))
	if len(out.Datagrams) != 1 || !hasNotify(innerOf(t, asa, out.Datagrams[0]), wire.INVALID_SYNTAX) {
		t.Fatal("rule violation not answered with INVALID_SYNTAX")
	}
	out = p.deliver(p.b, mk(3, &wire.RawPayload{PType: 200, Critical: true, Body: []byte{1}}))
	if len(out.Datagrams) != 1 {
		t.Fatal("critical payload not answered")
	}
	n := wire.FindNotify(innerOf(t, asa, out.Datagrams[0]), wire.UNSUPPORTED_CRITICAL_PAYLOAD)
	if n == nil || len(n.Data) != 1 || n.Data[0] != 200 {
		t.Fatalf("want UNSUPPORTED_CRITICAL_PAYLOAD(200), got %v", n)
	}
	if p.b.ep.Len() != 1 {
		t.Fatal("SA lost")
	}
}

func TestStatsAdd(t *testing.T) {
	var a, b Stats
	a.Received, a.KERetries, b.Received, b.InvalidSPILimited = 1, 2, 3, 4
	a.Add(b)
	if a.Received != 4 || a.KERetries != 2 || a.InvalidSPILimited != 4 {
		t.Fatalf("%+v", a)
	}
}
