package cert

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/netip"
	"testing"
	"time"

	"github.com/petrel-vpn/petrel/wire"
)

func TestValidateChain(t *testing.T) {
	for _, kt := range []KeyType{KeyECDSAP256, KeyRSA2048} {
		p := newTestPKI(t, kt)
		cred := p.leaf(t, gatewayTemplate(), kt)
		v := &Validator{Store: NewStore(nil, []*x509.Certificate{p.root.Cert}), Now: fixedClock(t0)}
		chain, err := v.Validate(context.Background(), cred.Cert, cred.Chain)
		if err != nil {
			t.Fatalf("key type %d: %v", kt, err)
		}
		if len(chain) != 3 || chain[2] != p.root.Cert {
			t.Errorf("chain of %d, anchor %v", len(chain), chain[len(chain)-1].Subject)
		}
		// Without the intermediate from the CERT payloads there is no path.
		if _, err := v.Validate(context.Background(), cred.Cert, nil); ReasonOf(err) != ReasonUntrustedCA {
			t.Errorf("missing intermediate: %v", err)
		}
	}
}

func TestValidateRefusals(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	other := newTestPKI(t, KeyECDSAP256)
	store := NewStore(nil, []*x509.Certificate{p.root.Cert})
	ctx := context.Background()
	good := p.leaf(t, gatewayTemplate(), KeyECDSAP256)

	for _, c := range []struct {
		name   string
		cred   *Credential
		now    time.Time
		ekus   []EKU
		reason Reason
	}{
		{"untrusted CA", other.leaf(t, gatewayTemplate(), KeyECDSAP256), t0, nil, ReasonUntrustedCA},
		{"expired", good, good.Cert.NotAfter.Add(time.Second), nil, ReasonExpired},
		{"not yet valid", good, good.Cert.NotBefore.Add(-time.Second), nil, ReasonExpired},
		// The intermediate expires before the leaf: x509 reports it.
		{"expired intermediate", func() *Credential {
			tm := gatewayTemplate()
			tm.Validity = 20 * 365 * 24 * time.Hour
			return p.leaf(t, tm, KeyECDSAP256)
		}(), p.inter.Cert.NotAfter.Add(time.Hour), nil, ReasonExpired},
		{"keyUsage without digitalSignature", func() *Credential {
			tm := gatewayTemplate()
			tm.KeyUsage = x509.KeyUsageKeyEncipherment
			return p.leaf(t, tm, KeyECDSAP256)
		}(), t0, nil, ReasonKeyUsage},
		{"client certificate where ipsecIKE/serverAuth required", p.leaf(t, Template{CN: "alice", Client: true}, KeyECDSAP256),
			t0, []EKU{EKUServerAuth, EKUIPsecIKE}, ReasonKeyUsage},
		{"gateway certificate passes the ipsecIKE EKU policy", good, t0, []EKU{EKUIPsecIKE}, 0},
		{"client certificate passes clientAuth", p.leaf(t, Template{CN: "bob", Client: true}, KeyECDSAP256), t0, []EKU{EKUClientAuth}, 0},
		{"no EKU extension passes any policy", func() *Credential {
			tm := Template{CN: "plain", ExtKeyUsage: []x509.ExtKeyUsage{}}
			return p.leaf(t, tm, KeyECDSAP256)
		}(), t0, []EKU{EKUClientAuth}, 0},
	} {
		v := &Validator{Store: store, Now: fixedClock(c.now), EKUs: c.ekus}
		_, err := v.Validate(ctx, c.cred.Cert, c.cred.Chain)
		if ReasonOf(err) != c.reason {
			t.Errorf("%s: %v, want reason %v", c.name, err, c.reason)
		}
		if err != nil && c.reason != 0 {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

func TestMatchIdentity(t *testing.T) {
	p := newTestPKI(t, KeyECDSAP256)
	c := p.leaf(t, gatewayTemplate(), KeyECDSAP256).Cert
	v6 := p.leaf(t, Template{CN: "v6", IPs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}, KeyECDSAP256).Cert
	ip4 := netip.MustParseAddr("192.0.2.1").As4()
	ip6 := netip.MustParseAddr("2001:db8::1").As16()
	otherDN := SubjectID(p.inter.Cert)
	for _, m := range []struct {
		c  *x509.Certificate
		id ID
		ok bool
	}{
		{c, SubjectID(c), true},
		{c, otherDN, false},
		{c, ID{wire.ID_FQDN, []byte("GW.example.net")}, true},
		{c, ID{wire.ID_FQDN, []byte("gw.example.net.")}, true},
		{c, ID{wire.ID_FQDN, []byte("other.example.net")}, false},
		// RFC 4945 §3.1.2: the CN is not a dNSName.
		{p.leaf(t, Template{CN: "cn-only.example.net"}, KeyECDSAP256).Cert, ID{wire.ID_FQDN, []byte("cn-only.example.net")}, false},
		{c, ID{wire.ID_RFC822_ADDR, []byte("ops@example.net")}, true},
		{c, ID{wire.ID_RFC822_ADDR, []byte("root@example.net")}, false},
		{c, ID{wire.ID_IPV4_ADDR, ip4[:]}, true},
		{c, ID{wire.ID_IPV4_ADDR, []byte{192, 0, 2, 2}}, false},
		{v6, ID{wire.ID_IPV6_ADDR, ip6[:]}, true},
		{c, ID{wire.ID_KEY_ID, []byte("gw")}, false},
	} {
		err := MatchIdentity(m.c, m.id)
		if (err == nil) != m.ok {
			t.Errorf("MatchIdentity(%s, %v) = %v, want ok=%v", m.c.Subject, m.id, err, m.ok)
		}
		if err != nil && ReasonOf(err) != ReasonIdentityMismatch {
			t.Errorf("MatchIdentity reason %v", ReasonOf(err))
		}
	}
	// A DN re-encoded with other string types still matches (RFC 4945
	// §3.1.5 compares names, not octets).
	dn, err := asn1MarshalName(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dn, c.RawSubject) {
		t.Fatal("re-encoded DN has the certificate's own octets")
	}
	if err := MatchIdentity(c, ID{wire.ID_DER_ASN1_DN, dn}); err != nil {
		t.Errorf("re-encoded DN: %v", err)
	}
}
