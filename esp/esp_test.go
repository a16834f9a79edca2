package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/petrel-vpn/petrel/wire"
)

// suites lists every transform combination Seal and Open support.
var suites = []struct {
	name     string
	encr     wire.EncrID
	keyLen   int
	integ    wire.IntegID
	integLen int
}{
	{"aes128gcm16", wire.EncrAES_GCM_16, 20, wire.IntegNONE, 0},
	{"aes256gcm16", wire.EncrAES_GCM_16, 36, wire.IntegNONE, 0},
	{"chacha20poly1305", wire.EncrCHACHA20_POLY1305, 36, wire.IntegNONE, 0},
	{"aes128-sha256", wire.EncrAES_CBC, 16, wire.IntegHMAC_SHA2_256_128, 32},
	{"aes256-sha384", wire.EncrAES_CBC, 32, wire.IntegHMAC_SHA2_384_192, 48},
	{"aes256-sha512", wire.EncrAES_CBC, 32, wire.IntegHMAC_SHA2_512_256, 64},
	{"aes128-sha1", wire.EncrAES_CBC, 16, wire.IntegHMAC_SHA1_96, 20},
}

func testKey(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	return k
}

func pair(t testing.TB, i int, esn bool, mode Mode) (*Outbound, *Inbound) {
	t.Helper()
	s := suites[i]
	c := Config{SPI: 0xc0ffee01, Encr: s.encr, EncrKey: testKey(s.keyLen, 1),
		Integ: s.integ, IntegKey: testKey(s.integLen, 9), ESN: esn, Mode: mode}
	out, err := NewOutbound(c)
	if err != nil {
		t.Fatal(err)
	}
	in, err := NewInbound(c)
	if err != nil {
		t.Fatal(err)
	}
	return out, in
}

func seal(t testing.TB, out *Outbound, payload []byte, nh byte) []byte {
	t.Helper()
	buf := make([]byte, out.HeaderLen(), out.HeaderLen()+len(payload)+out.MaxTrailerLen())
	buf = append(buf, payload...)
	pkt, err := out.Seal(buf, len(payload), nh)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

func TestRoundTripAllSuites(t *testing.T) {
	for i, s := range suites {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/esn=%v", s.name, esn), func(t *testing.T) {
				out, in := pair(t, i, esn, Tunnel)
				for n := 0; n < 70; n++ {
					payload := testKey(n, byte(n))
					pkt := seal(t, out, payload, 4)
					if len(pkt) != out.SealedLen(n) {
						t.Fatalf("len %d, SealedLen %d", len(pkt), out.SealedLen(n))
					}
					if (len(pkt)-out.HeaderLen()-out.icvLen)%out.align != 0 {
						t.Fatalf("ciphertext not aligned to %d", out.align)
					}
					got, nh, seq, err := in.Open(pkt)
					if err != nil || nh != 4 || seq != uint64(n+1) || !bytes.Equal(got, payload) {
						t.Fatalf("n=%d: Open = %x %d %d %v", n, got, nh, seq, err)
					}
				}
				oc, ic := out.Counters(), in.Counters()
				if oc.Packets != 70 || ic.Packets != 70 || oc.Bytes != ic.Bytes || oc.Bytes != 69*70/2 {
					t.Fatalf("counters out %+v in %+v", oc, ic)
				}
				if ic.LastUsed.IsZero() {
					t.Fatal("LastUsed not set")
				}
			})
		}
	}
}

// TestTamperedPacketsChangeNothing flips each octet of a sealed packet: every
// copy must fail (SPI, ICV or replay) and leave the window and the
// success counters as they were.
func TestTamperedPacketsChangeNothing(t *testing.T) {
	for i, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			out, in := pair(t, i, true, Tunnel)
			pkt := seal(t, out, testKey(100, 3), 41)
			for j := range pkt {
				bad := append([]byte(nil), pkt...)
				bad[j] ^= 0x80
				before := in.Counters()
				_, _, _, err := in.Open(bad)
				if err == nil {
					t.Fatalf("octet %d: tampered packet opened", j)
				}
				after := in.Counters()
				if in.HighestSeq() != 0 || after.Packets != 0 || after.Bytes != 0 {
					t.Fatalf("octet %d: state changed: top %d %+v", j, in.HighestSeq(), after)
				}
				if errors.Is(err, ErrAuth) && after.AuthFailures != before.AuthFailures+1 {
					t.Fatalf("octet %d: auth failure not counted", j)
				}
			}
			if _, _, _, err := in.Open(pkt); err != nil {
				t.Fatalf("genuine packet after tampering: %v", err)
			}
		})
	}
}

func TestReplayAndOrder(t *testing.T) {
	out, in := pair(t, 0, false, Tunnel)
	var pkts [][]byte
	for range 3000 {
		pkts = append(pkts, seal(t, out, []byte{0x45, 1, 2, 3}, 4))
	}
	open := func(k int) error {
		_, _, _, err := in.Open(append([]byte(nil), pkts[k]...))
		return err
	}
	// Out of order inside the window is fine; a second copy is a replay.
	for _, k := range []int{4, 2, 3, 0, 1} {
		if err := open(k); err != nil {
			t.Fatalf("seq %d: %v", k+1, err)
		}
	}
	if err := open(2); !errors.Is(err, ErrReplay) {
		t.Fatalf("duplicate: %v", err)
	}
	// Jump ahead by more than the window: old packets are too old.
	if err := open(2999); err != nil {
		t.Fatal(err)
	}
	if err := open(5); !errors.Is(err, ErrTooOld) {
		t.Fatalf("seq 6 after 3000: %v", err)
	}
	if err := open(2999 - 1023); err != nil { // seq 1977 = top-1023, last inside
		t.Fatalf("edge of window: %v", err)
	}
	if err := open(2999 - 1024); !errors.Is(err, ErrTooOld) {
		t.Fatalf("just outside window: %v", err)
	}
	if c := in.Counters(); c.ReplayDrops != 3 || c.Packets != 7 {
		t.Fatalf("counters %+v", c)
	}
}

func TestSeqNeverWraps(t *testing.T) {
	for _, esn := range []bool{false, true} {
		out, in := pair(t, 0, esn, Tunnel)
		last := uint64(1<<32 - 1)
		if esn {
			last = 1<<64 - 1
		}
		out.SetLastSeq(last - 1)
		in.window.top = last - 2
		pkt := seal(t, out, []byte{1}, 4)
		if _, _, seq, err := in.Open(pkt); err != nil || seq != last {
			t.Fatalf("esn=%v: last packet seq %#x err %v", esn, seq, err)
		}
		buf := make([]byte, 64)
		for range 3 {
			if _, err := out.Seal(buf[:out.HeaderLen()+1], 1, 4); !errors.Is(err, ErrSeqExhausted) {
				t.Fatalf("esn=%v: after last seq: %v", esn, err)
			}
		}
		if out.LastSeq() != last {
			t.Fatalf("counter moved to %#x", out.LastSeq())
		}
	}
}

// TestESNAcrossSubspace sends packets across a 2^32 boundary of the
// extended sequence number, in and slightly out of order (RFC 4303 A2.2).
func TestESNAcrossSubspace(t *testing.T) {
	out, in := pair(t, 2, true, Tunnel)
	start := uint64(5<<32 - 600)
	out.SetLastSeq(start)
	in.window.top = start
	var pkts [][]byte
	for range 1200 {
		pkts = append(pkts, seal(t, out, []byte{0x60, 0, 0, 0}, 41))
	}
	order := []int{0, 2, 1, 598, 600, 599, 601, 1199, 700, 603}
	for _, k := range order {
		_, _, seq, err := in.Open(pkts[k])
		if err != nil || seq != start+1+uint64(k) {
			t.Fatalf("packet %d: seq %#x err %v", k, seq, err)
		}
	}
}

// TestTrailerChecks builds packets with an independent AES-GCM so that the
// ICV is good but the trailer is not (RFC 4303 §2.4, §2.6).
func TestTrailerChecks(t *testing.T) {
	key := testKey(20, 5)
	build := func(seq uint32, pt []byte) []byte {
		blk, _ := aes.NewCipher(key[:16])
		g, _ := cipher.NewGCM(blk)
		pkt := binary.BigEndian.AppendUint32(nil, 0x4242)
		pkt = binary.BigEndian.AppendUint32(pkt, seq)
		pkt = binary.BigEndian.AppendUint64(pkt, uint64(seq)*3)
		nonce := append(append([]byte(nil), key[16:]...), pkt[8:16]...)
		return g.Seal(pkt, nonce, pt, pkt[:8])
	}
	c := Config{SPI: 0x4242, Encr: wire.EncrAES_GCM_16, EncrKey: key}
	in, _ := NewInbound(c)
	cases := []struct {
		pt   []byte
		want error
	}{
		{[]byte{0x45, 0, 1, 2, 1, 2, 2, 4}, nil},
		{[]byte{0x45, 0, 1, 2, 1, 3, 2, 4}, ErrPadding},    // padding not 1,2
		{[]byte{0x45, 0, 9, 4}, ErrPadding},                // pad length past start
		{[]byte{0x45, 0, 0, 0, 0, 0, 0, 6}, ErrNextHeader}, // TCP in tunnel mode
		{[]byte{0, 0, 0, 59}, ErrDummy},
		{[]byte{0x60, 0, 0, 41}, nil},
	}
	for i, tc := range cases {
		_, _, _, err := in.Open(build(uint32(i+1), tc.pt))
		if !errors.Is(err, tc.want) {
			t.Errorf("case %d: %v, want %v", i, err, tc.want)
		}
	}
	if c := in.Counters(); c.InvalidDrops != 3 || c.Packets != 2 || in.HighestSeq() != 6 {
		t.Fatalf("counters %+v top %d", c, in.HighestSeq())
	}
	c.Mode = Transport
	tr, _ := NewInbound(c)
	if _, nh, _, err := tr.Open(build(1, []byte{0, 0, 0, 6})); err != nil || nh != 6 {
		t.Fatalf("transport mode TCP: nh %d err %v", nh, err)
	}
}

func TestConcurrentSealOpen(t *testing.T) {
	out, _ := pair(t, 3, false, Tunnel)
	// Four sealers interleave freely, so arrival order can stray further
	// than the default window; a 4096-packet window holds all 1200.
	s := suites[3]
	in, err := NewInbound(Config{SPI: 0xc0ffee01, Encr: s.encr, EncrKey: testKey(s.keyLen, 1),
		Integ: s.integ, IntegKey: testKey(s.integLen, 9), ReplayWindow: 4096})
	if err != nil || in.ReplayWindowSize() != 4096 {
		t.Fatal(err)
	}
	const workers, each = 4, 300
	ch := make(chan []byte, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ch <- seal(t, out, testKey(200, byte(w)), 4)
			}
		}()
	}
	wg.Wait()
	close(ch)
	var pkts [][]byte
	for p := range ch {
		pkts = append(pkts, p, append([]byte(nil), p...)) // each twice
	}
	var ok sync.WaitGroup
	for w := range workers {
		ok.Add(1)
		go func() {
			defer ok.Done()
			for k := w; k < len(pkts); k += workers {
				in.Open(pkts[k])
			}
		}()
	}
	ok.Wait()
	c := in.Counters()
	if c.Packets != workers*each || c.ReplayDrops != workers*each || c.AuthFailures != 0 {
		t.Fatalf("counters %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	bad := []Config{
		{SPI: 0x1000, Encr: wire.EncrAES_GCM_16, EncrKey: make([]byte, 16)},
		{SPI: 0x1000, Encr: wire.EncrCHACHA20_POLY1305, EncrKey: make([]byte, 32)},
		{SPI: 0x1000, Encr: wire.EncrAES_CBC, EncrKey: make([]byte, 16), Integ: wire.IntegHMAC_SHA2_256_128, IntegKey: make([]byte, 16)},
		{SPI: 0x1000, Encr: wire.EncrAES_GCM_16, EncrKey: make([]byte, 20), Integ: wire.IntegHMAC_SHA2_256_128, IntegKey: make([]byte, 32)},
		{SPI: 0x1000, Encr: wire.Encr3DES, EncrKey: make([]byte, 24)},
		{SPI: 0x1000, Encr: wire.EncrAES_CBC, EncrKey: make([]byte, 16), Integ: wire.IntegAES_XCBC_96, IntegKey: make([]byte, 16)},
	}
	for i, c := range bad {
		if _, err := NewOutbound(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
}

func TestCloseZeroesKeys(t *testing.T) {
	out, _ := pair(t, 3, false, Tunnel)
	k := out.Keys()
	if len(k.EncrKey) != 16 || len(k.IntegKey) != 32 || k.SPI != 0xc0ffee01 {
		t.Fatalf("keys %+v", k)
	}
	out.Close()
	for _, b := range append(out.encrKey, out.integKy...) {
		if b != 0 {
			t.Fatal("key copy not zeroed")
		}
	}
}

func TestClassifyUDP(t *testing.T) {
	cases := []struct {
		b    []byte
		want UDPKind
	}{
		{[]byte{0xff}, UDPKeepalive},
		{[]byte{0, 0, 0, 0, 1, 2, 3}, UDPIKE},
		{[]byte{0, 0, 1, 0, 0, 0, 0, 1}, UDPESP},
		{[]byte{0, 0, 1, 0, 0}, UDPInvalid},
		{[]byte{1, 2}, UDPInvalid},
		{nil, UDPInvalid},
	}
	for _, c := range cases {
		if got := ClassifyUDP(c.b); got != c.want {
			t.Errorf("%x: %v, want %v", c.b, got, c.want)
		}
	}
}
