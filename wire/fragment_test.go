package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// bigAuthRequest is an IKE_AUTH request too large for one 576-octet datagram.
func bigAuthRequest() *Message {
	m := authRequest()
	cert := make([]byte, 3000)
	for i := range cert {
		cert[i] = byte(i * 7)
	}
	m.Inner = append(m.Inner[:1], append([]Payload{&Cert{Encoding: CertX509Signature, Data: cert}}, m.Inner[1:]...)...)
	return m
}

func TestFragmentRoundTrip(t *testing.T) {
	const maxSize = 548 // 576 - IPv4 (20) - UDP (8)
	p := &xorProtector{key: 0x33}
	m := bigAuthRequest()
	frags, err := m.EncodeFragments(p, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	plainLen := PayloadsLen(m.Inner)
	if len(frags) < plainLen/maxSize+1 || len(frags) > 2*plainLen/maxSize+2 {
		t.Fatalf("%d fragments for %d octets", len(frags), plainLen)
	}
	if p.seals != len(frags) {
		t.Fatalf("%d seals for %d fragments: each fragment must be protected separately", p.seals, len(frags))
	}
	parsed := make([]*Message, len(frags))
	for i, b := range frags {
		if len(b) > maxSize {
			t.Fatalf("fragment %d is %d octets", i+1, len(b))
		}
		if i < len(frags)-1 && len(b) < maxSize-xorBlockLen {
			t.Errorf("fragment %d is only %d octets", i+1, len(b))
		}
		fm, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		f := fm.Fragment()
		if f == nil || int(f.Number) != i+1 || int(f.Total) != len(frags) {
			t.Fatalf("fragment %d: %+v", i+1, f)
		}
		wantNext := PayloadNone
		if i == 0 {
			wantNext = PayloadIDi
		}
		if f.NextPayload != wantNext || fm.Header.NextPayload != PayloadSKF || fm.Header.MessageID != 1 {
			t.Fatalf("fragment %d: next %v, header %+v", i+1, f.NextPayload, fm.Header)
		}
		if err := CheckRules(fm); err != nil {
			t.Fatalf("fragment %d: %v", i+1, err)
		}
		parsed[i] = fm
	}
	// Deliver in a shuffled order with a duplicate; the AAD each Open saw is
	// the fragment's header plus the SKF header with Number and Total.
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(frags))
	order = append(order[:1], order...)
	r := NewReassembler(64, 1<<16)
	var done *Message
	for k, i := range order {
		plain, err := parsed[i].OpenFragment(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.lastAD, frags[i][:HeaderLen+8]) {
			t.Fatalf("fragment %d: AAD %x", i+1, p.lastAD)
		}
		got, err := r.Add(parsed[i], plain)
		if err != nil {
			t.Fatal(err)
		}
		if got != nil {
			if k != len(order)-1 {
				t.Fatalf("complete after %d of %d deliveries", k+1, len(order))
			}
			done = got
		}
	}
	if done == nil {
		t.Fatal("never completed")
	}
	if !reflect.DeepEqual(done.Inner, m.Inner) {
		t.Fatal("reassembled inner payloads differ")
	}
	if done.Encrypted() == nil || done.Header.Exchange != IKE_AUTH {
		t.Fatalf("reassembled message %+v", done)
	}
	if err := CheckRules(done); err != nil {
		t.Fatal(err)
	}
	if r.Pending() != 0 || r.Buffered() != 0 {
		t.Fatalf("pending %d, buffered %d after completion", r.Pending(), r.Buffered())
	}
}

func TestFragmentSmallMessage(t *testing.T) {
	p := &xorProtector{key: 1}
	frags, err := authRequest().EncodeFragments(p, 1280)
	if err != nil || len(frags) != 1 {
		t.Fatalf("%d fragments, %v", len(frags), err)
	}
	if _, err := authRequest().EncodeFragments(p, HeaderLen+8+xorIVLen+xorICVLen); err == nil {
		t.Fatal("no room for data accepted")
	}
}

func TestReassemblerRules(t *testing.T) {
	p := &xorProtector{key: 9}
	m := bigAuthRequest()
	small, _ := m.EncodeFragments(p, 400)
	large, _ := m.EncodeFragments(p, 1000)
	if len(small) <= len(large) {
		t.Fatalf("%d vs %d fragments", len(small), len(large))
	}
	open := func(b []byte) (*Message, []byte) {
		fm, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := fm.OpenFragment(p)
		if err != nil {
			t.Fatal(err)
		}
		return fm, plain
	}
	r := NewReassembler(64, 1<<16)
	// Some large fragments, then the sender re-fragments smaller (RFC 7383
	// §2.5.2): the larger Total Fragments replaces what was held, and a
	// late large fragment (smaller Total) is ignored.
	r.Add(open(large[0]))
	r.Add(open(large[1]))
	held := r.Buffered()
	var done *Message
	for i, b := range small {
		got, err := r.Add(open(b))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && r.Buffered() >= held {
			t.Fatalf("old fragments kept: %d >= %d", r.Buffered(), held)
		}
		if i == 1 {
			if got, _ := r.Add(open(large[2])); got != nil {
				t.Fatal("stale fragment completed a message")
			}
		}
		if got != nil {
			done = got
		}
	}
	if done == nil || !reflect.DeepEqual(done.Inner, m.Inner) {
		t.Fatal("reassembly after re-fragmentation failed")
	}

	// Limits: too many fragments, too many octets.
	r = NewReassembler(len(small)-1, 1<<16)
	if _, err := r.Add(open(small[0])); !errors.Is(err, ErrFragmentLimit) {
		t.Fatalf("fragment count limit: %v", err)
	}
	r = NewReassembler(64, 500)
	var err error
	for _, b := range small {
		if _, err = r.Add(open(b)); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFragmentLimit) || r.Buffered() > 500 {
		t.Fatalf("byte limit: %v, %d buffered", err, r.Buffered())
	}
	r.Forget(1, false)
	if r.Pending() != 0 || r.Buffered() != 0 {
		t.Fatal("Forget left state behind")
	}
	// A message that is not a fragment.
	whole, _ := authRequest().Encode(p)
	wm, _ := Parse(whole)
	if _, err := r.Add(wm, nil); !errors.Is(err, ErrNotFragment) {
		t.Fatalf("non-fragment: %v", err)
	}
}

func TestFragmentOuterPayloadsInFirstOnly(t *testing.T) {
	p := &xorProtector{key: 5}
	m := bigAuthRequest()
	m.Payloads = []Payload{&VendorID{Data: []byte("outer")}}
	frags, err := m.EncodeFragments(p, 600)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReassembler(32, 1<<16)
	var done *Message
	for i, b := range frags {
		fm, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		wantOuter := 1
		if i == 0 {
			wantOuter = 2
		}
		if len(fm.Payloads) != wantOuter || len(b) > 600 {
			t.Fatalf("fragment %d: %s, %d octets", i+1, fm, len(b))
		}
		plain, err := fm.OpenFragment(p)
		if err != nil {
			t.Fatal(err)
		}
		if done, err = r.Add(fm, plain); err != nil {
			t.Fatal(err)
		}
	}
	if done == nil || len(done.Payloads) != 2 || done.Payloads[0].Type() != PayloadV || done.Encrypted() == nil {
		t.Fatalf("reassembled %v", done)
	}
}
