package cert

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// t0 is the fake "now" of these tests.
var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// testPKI is a root CA, an intermediate and helpers to issue leaves under
// the intermediate.
type testPKI struct {
	root, inter *CA
}

func newTestPKI(t *testing.T, kt KeyType) *testPKI {
	t.Helper()
	root, err := NewCA(Template{CN: "petrel test root", Org: "petrel"}, kt, t0)
	if err != nil {
		t.Fatal(err)
	}
	ic, ik, err := root.Issue(Template{CN: "petrel test intermediate", Org: "petrel", IsCA: true}, kt, t0)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{root: root, inter: &CA{Cert: ic, Key: ik}}
}

// leaf issues a credential under the intermediate, chain attached.
func (p *testPKI) leaf(t *testing.T, tmpl Template, kt KeyType) *Credential {
	t.Helper()
	c, k, err := p.inter.Issue(tmpl, kt, t0)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := NewCredential(c, []*x509.Certificate{p.inter.Cert}, k)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func gatewayTemplate() Template {
	return Template{CN: "gw.example.net", DNS: []string{"gw.example.net"},
		IPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Emails: []string{"ops@example.net"}}
}

// fakeFetcher serves fixed bodies by URL and counts fetches.
type fakeFetcher struct {
	mu     sync.Mutex
	bodies map[string][]byte
	calls  map[string]int
	fail   error
}

func (f *fakeFetcher) Fetch(_ context.Context, req Request) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[req.URL]++
	if f.fail != nil {
		return nil, f.fail
	}
	b, ok := f.bodies[req.URL]
	if !ok {
		return nil, fmt.Errorf("fake: no %s", req.URL)
	}
	if req.MaxSize > 0 && int64(len(b)) > req.MaxSize {
		return nil, fmt.Errorf("fake: %s over %d octets", req.URL, req.MaxSize)
	}
	return b, nil
}

// asn1MarshalName re-encodes a certificate's subject with every string
// as UTF8String, where Go writes PrintableString: same name, other octets.
func asn1MarshalName(c *x509.Certificate) ([]byte, error) {
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value string `asn1:"utf8"`
	}
	type rdn []atv // SET OF
	var seq []asn1.RawValue
	for _, set := range c.Subject.ToRDNSequence() {
		var r []atv
		for _, a := range set {
			r = append(r, atv{a.Type, a.Value.(string)})
		}
		der, err := asn1.MarshalWithParams(r, "set")
		if err != nil {
			return nil, err
		}
		seq = append(seq, asn1.RawValue{FullBytes: der})
	}
	return asn1.Marshal(seq)
}
